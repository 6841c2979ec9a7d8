//! # enas4d
//!
//! Once-for-all **multi-stage** CNN supernets (ENAS4D-style) with early exit, natively and in
//! the browser. Every channel axis is cut into S stages by *multi-stage convolution*: a stage's
//! outputs read only its own and earlier stages' inputs, and each stage has its own exit.
//!
//! The kernels (WGSL in `shaders/`, each with a plain-Rust reference in [`ops`]):
//! - [`ops::gemm`]: stage-masked GEMM for 1×1 convs and linear layers, fused affine,
//!   activation and residual;
//! - [`ops::dwconv`]: depthwise conv with a kernel size per stage, stride 1 / 2;
//! - [`ops::kernel_transform`]: the elastic 7→5→3 kernel transform;
//! - [`ops::conv`]: the stem conv; [`ops::pool`]: global average pool;
//! - [`ops::se`]: stage-causal squeeze-excite; [`ops::softmax`]: softmax, confidence, arg-max;
//! - [`ops::resize`]: bilinear input resize;
//! - [`ops::mbconv`]: the kernels composed into one gated multi-stage MBConv block;
//! - [`net`]: a whole subnet's all-exits pass, on the CPU reference and on the GPU;
//! - [`runtime`]: the stage-wise pass with early exit.
//!
//! Training (feature `train`): [`supernet`] is the once-for-all supernet as a burn module, whose
//! elastic convolutions are the custom ops of [`elastic`] (own CPU kernels on burn's CPU
//! backend, the WGSL kernels on wgpu); [`train`] and [`search`] train and search it.
//!
//! [`space`] holds presets, subnet configs and the MACs counter; [`data`] (feature `data`) the
//! data-set loaders. [`gpu`] picks the adapter and runs them; [`selftest`] checks every kernel against its
//! reference on the current device.
#![warn(missing_docs)]

pub mod atomic;
pub mod camel;
pub mod cpu;
#[cfg(feature = "data")]
pub mod data;
#[cfg(feature = "train")]
pub mod elastic;
pub mod error;
pub mod format;
pub mod gpu;
pub mod net;
pub mod ops;
pub mod runtime;
#[cfg(feature = "train")]
pub mod search;
pub mod selftest;
pub mod space;
#[cfg(feature = "train")]
pub mod supernet;
#[cfg(any(test, feature = "testing"))]
pub mod test_seed;
#[cfg(feature = "train")]
pub mod train;
#[cfg(feature = "wasm")]
pub mod wasm;

pub use error::{Error, Result};
