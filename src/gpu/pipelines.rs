//! The kernels in `shaders/` and a cache that compiles each of them once per device.

use std::collections::HashMap;
use std::sync::Mutex;

/// Activation functions shared by the kernels, prepended to the shaders that use them.
const ACTIVATION_WGSL: &str = include_str!("../../shaders/activation.wgsl");

/// Every compute entry point in `shaders/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// Stage-masked tiled GEMM for 1×1 convs and linear layers (`gemm.wgsl`, `main`).
    Gemm,
    /// The same GEMM as one workgroup per output, for linear layers with few samples
    /// (`gemm.wgsl`, `gemv`).
    Gemv,
    /// Depthwise conv, kernel size per stage (`dwconv.wgsl`).
    DwConv,
    /// 7→5 or 5→3 elastic-kernel transform (`kernel_transform.wgsl`).
    KernelTransform,
    /// Dense k×k conv with few input channels: the stem (`stem_conv.wgsl`).
    StemConv,
    /// Global average pool (`pool.wgsl`).
    Pool,
    /// Per-channel scale, the last step of squeeze-excite (`se_scale.wgsl`).
    SeScale,
    /// Softmax with max-probability confidence and arg-max (`softmax.wgsl`).
    Softmax,
    /// Bilinear resize (`resize.wgsl`).
    Resize,
}

impl Kernel {
    /// All kernels.
    pub const ALL: [Kernel; 9] = [
        Kernel::Gemm,
        Kernel::Gemv,
        Kernel::DwConv,
        Kernel::KernelTransform,
        Kernel::StemConv,
        Kernel::Pool,
        Kernel::SeScale,
        Kernel::Softmax,
        Kernel::Resize,
    ];

    /// The shader file, as named in `shaders/`.
    pub fn file(self) -> &'static str {
        match self {
            Kernel::Gemm | Kernel::Gemv => "gemm.wgsl",
            Kernel::DwConv => "dwconv.wgsl",
            Kernel::KernelTransform => "kernel_transform.wgsl",
            Kernel::StemConv => "stem_conv.wgsl",
            Kernel::Pool => "pool.wgsl",
            Kernel::SeScale => "se_scale.wgsl",
            Kernel::Softmax => "softmax.wgsl",
            Kernel::Resize => "resize.wgsl",
        }
    }

    /// The entry point in the file.
    pub fn entry_point(self) -> &'static str {
        match self {
            Kernel::Gemv => "gemv",
            _ => "main",
        }
    }

    /// The WGSL source: the file, with the shared activation functions where it needs them.
    pub fn source(self) -> String {
        let body = match self {
            Kernel::Gemm | Kernel::Gemv => include_str!("../../shaders/gemm.wgsl"),
            Kernel::DwConv => include_str!("../../shaders/dwconv.wgsl"),
            Kernel::KernelTransform => include_str!("../../shaders/kernel_transform.wgsl"),
            Kernel::StemConv => include_str!("../../shaders/stem_conv.wgsl"),
            Kernel::Pool => include_str!("../../shaders/pool.wgsl"),
            Kernel::SeScale => include_str!("../../shaders/se_scale.wgsl"),
            Kernel::Softmax => include_str!("../../shaders/softmax.wgsl"),
            Kernel::Resize => include_str!("../../shaders/resize.wgsl"),
        };
        if body.contains("activate(") {
            format!("{ACTIVATION_WGSL}\n{body}")
        } else {
            body.to_string()
        }
    }
}

impl Kernel {
    /// The source as burn's wgpu backend runs it (the training ops): every binding
    /// `read_write` and the parameter block a storage buffer, since burn pools its buffers (one
    /// dispatch's tensors may share a buffer, and pooled buffers have no uniform usage); the
    /// entry point is renamed `main`.
    pub fn training_source(self) -> String {
        let src = self
            .source()
            .replace("var<storage, read>", "var<storage, read_write>")
            .replace("var<uniform>", "var<storage, read_write>");
        match self.entry_point() {
            "main" => src,
            entry => src
                .replace("fn main(", "fn unused_main(")
                .replace(&format!("fn {entry}("), "fn main("),
        }
    }
}

/// Compiled pipelines, one per kernel, built on first use.
#[derive(Default)]
pub(crate) struct PipelineCache {
    compiled: Mutex<HashMap<Kernel, wgpu::ComputePipeline>>,
}

impl PipelineCache {
    /// The pipeline of `kernel`, compiling it on first use.
    pub(crate) fn get(&self, device: &wgpu::Device, kernel: Kernel) -> wgpu::ComputePipeline {
        let mut compiled = self
            .compiled
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        compiled
            .entry(kernel)
            .or_insert_with(|| {
                let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(kernel.file()),
                    source: wgpu::ShaderSource::Wgsl(kernel.source().into()),
                });
                device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(kernel.file()),
                    layout: None,
                    module: &module,
                    entry_point: Some(kernel.entry_point()),
                    compilation_options: Default::default(),
                    cache: None,
                })
            })
            .clone()
    }

    /// How many pipelines have been compiled so far.
    pub(crate) fn len(&self) -> usize {
        self.compiled.lock().map(|c| c.len()).unwrap_or(0)
    }
}
