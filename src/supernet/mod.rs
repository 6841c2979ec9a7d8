//! The once-for-all multi-stage supernet as a burn `Module` (DESIGN §1–2): maximal weights,
//! 7→5→3 kernel transforms, stage masks, per-stage depth gating, SE and one exit per stage.
//!
//! [`forward`] runs any subnet's all-exits pass, differentiably, on any burn device;
//! [`extract`] takes a subnet's weights out (BN folded, kernels transformed) for the
//! reference network, the runtime and the exporter.

mod bn;
mod extract;
mod forward;
mod masks;
mod params;
mod sort;

pub use bn::{batch_norm, BnMode, BnRecorder, BnStats, BN_EPS};
pub use extract::extract;
pub use forward::{forward, PassOptions};
pub use masks::{causal_mask, channel_mask, MaskCache};
pub use params::{BlockParams, Bn, Classifier, ConvBn, SeParams, Supernet};
pub use sort::sort_channels;
