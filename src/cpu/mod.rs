//! The CPU kernels, shared by the stage-wise runtime and training's CPU ops (DESIGN §8): dense
//! matrix products on the `gemm` crate, the SIMD inner loops, the channel-last depthwise conv
//! and the row kernels (epilogue, pool) of channel-last activations.

pub mod depthwise;
#[cfg(not(target_arch = "wasm32"))]
pub(crate) mod matmul;
pub(crate) mod pointwise;
pub(crate) mod rows;
pub(crate) mod simd;
pub(crate) mod window;
