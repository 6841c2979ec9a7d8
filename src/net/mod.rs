//! A whole subnet composed of the kernels: its weights (BN folded, kernels at their size), and
//! the all-exits pass, one walk of the layer list run by the plain-Rust references or by the
//! GPU kernels (DESIGN §2).
//!
//! The all-exits pass runs the whole masked network once and gives every exit's logits; the
//! supernet's training pass and the runtime's stage-wise pass must both agree with it.

#[cfg(any(test, feature = "testing"))]
mod gpu;
#[cfg(any(test, feature = "testing"))]
mod pass;
#[cfg(any(test, feature = "testing"))]
mod reference;
mod weights;

/// Test oracles: the all-exits pass the runtimes and the training pass are checked against
/// (feature `testing`, which the crate's own tests turn on).
#[cfg(any(test, feature = "testing"))]
pub use gpu::forward_gpu;
#[cfg(any(test, feature = "testing"))]
pub use reference::{forward_reference, AllExits};
pub use weights::NetWeights;
