//! GPU plumbing shared by every kernel: device selection, the pipeline cache and buffer helpers.
//!
//! Works natively (Vulkan, Metal, DX12, lavapipe) and in the browser (WebGPU); readback is
//! asynchronous everywhere, so nothing blocks the browser's event loop.

mod buffers;
mod context;
mod pipelines;

#[cfg(feature = "train")]
pub(crate) use buffers::linear_groups_within;
pub use buffers::LINEAR_WORKGROUP;
pub use context::{AdapterSummary, GpuContext, GpuOptions};
pub use pipelines::Kernel;
