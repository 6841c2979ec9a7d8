//! Adapter selection, device creation and limit checks.

use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::pipelines::PipelineCache;
use crate::error::{Error, Result};

/// How to pick the adapter.
#[derive(Clone, Debug, Default)]
pub struct GpuOptions {
    /// Backends to consider, as wgpu's comma list (`vulkan,metal,dx12,gl,webgpu`); `None` reads
    /// the `WGPU_BACKEND` environment variable, else Vulkan, Metal, DX12 and WebGPU (GL only when
    /// asked: it lacks compute shaders on many drivers).
    pub backends: Option<String>,
    /// Case-insensitive substring of the adapter name to force (e.g. `llvmpipe`); `None` reads
    /// `ENAS4D_ADAPTER`, else the best adapter: discrete > integrated > virtual > CPU.
    pub adapter: Option<String>,
    /// Only adapters of this type (e.g. `Cpu` for lavapipe); `None` allows every type.
    pub device_type: Option<wgpu::DeviceType>,
}

/// What a user wants to know about the chosen adapter.
#[derive(Clone, Debug, Serialize)]
pub struct AdapterSummary {
    /// Adapter name, e.g. `llvmpipe (LLVM 15.0.6, 256 bits)`.
    pub name: String,
    /// Backend, e.g. `Vulkan` or `BrowserWebGpu`.
    pub backend: String,
    /// `DiscreteGpu`, `IntegratedGpu`, `VirtualGpu`, `Cpu` or `Other`.
    pub device_type: String,
    /// Driver name and version.
    pub driver: String,
    /// The limits the kernels depend on.
    pub limits: KeyLimits,
}

/// The device limits that matter to the kernels.
#[derive(Clone, Debug, Serialize)]
pub struct KeyLimits {
    /// Largest storage buffer binding, bytes.
    pub max_storage_buffer_binding_size: u64,
    /// Storage buffers one compute stage may bind.
    pub max_storage_buffers_per_shader_stage: u32,
    /// Workgroup shared memory, bytes.
    pub max_compute_workgroup_storage_size: u32,
    /// Threads per workgroup.
    pub max_compute_invocations_per_workgroup: u32,
    /// Workgroups per dispatch dimension.
    pub max_compute_workgroups_per_dimension: u32,
}

/// What the kernels need of a device (WebGPU's defaults, which every adapter offers).
const NEEDED_STORAGE_BUFFERS: u32 = 5;
const NEEDED_INVOCATIONS: u32 = 256;
const NEEDED_SHARED_BYTES: u32 = 8192;

/// A device, its queue and the compiled kernels.
pub struct GpuContext {
    /// The wgpu device.
    pub device: wgpu::Device,
    /// Its queue.
    pub queue: wgpu::Queue,
    summary: AdapterSummary,
    pub(super) pipelines: PipelineCache,
    dummy: wgpu::Buffer,
    errors: Arc<Mutex<Option<String>>>,
}

impl GpuContext {
    /// Picks an adapter as `options` say and opens a device on it.
    pub async fn new(options: &GpuOptions) -> Result<Self> {
        let backends = match &options.backends {
            Some(list) => wgpu::Backends::from_comma_list(list),
            None => wgpu::Backends::from_env().unwrap_or(wgpu::Backends::PRIMARY),
        };
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = backends;
        let instance = wgpu::Instance::new(desc);
        let wanted = options
            .adapter
            .clone()
            .or_else(|| std::env::var("ENAS4D_ADAPTER").ok())
            .filter(|s| !s.is_empty());
        let adapter =
            pick_adapter(&instance, backends, wanted.as_deref(), options.device_type).await?;
        Self::from_adapter(adapter).await
    }

    /// Opens a device on a given adapter and checks its limits.
    pub async fn from_adapter(adapter: wgpu::Adapter) -> Result<Self> {
        let info = adapter.get_info();
        let limits = adapter.limits();
        let check = |ok: bool, what: String| {
            if ok {
                Ok(())
            } else {
                Err(Error::Unsuitable {
                    adapter: info.name.clone(),
                    reason: what,
                })
            }
        };
        check(
            limits.max_storage_buffers_per_shader_stage >= NEEDED_STORAGE_BUFFERS,
            format!(
                "{} storage buffers per stage, need {NEEDED_STORAGE_BUFFERS}",
                limits.max_storage_buffers_per_shader_stage
            ),
        )?;
        check(
            limits.max_compute_invocations_per_workgroup >= NEEDED_INVOCATIONS,
            format!(
                "{} invocations per workgroup, need {NEEDED_INVOCATIONS}",
                limits.max_compute_invocations_per_workgroup
            ),
        )?;
        check(
            limits.max_compute_workgroup_storage_size >= NEEDED_SHARED_BYTES,
            format!(
                "{} bytes of workgroup memory, need {NEEDED_SHARED_BYTES}",
                limits.max_compute_workgroup_storage_size
            ),
        )?;
        // Ask for the adapter's own limits: bigger buffers than WebGPU's defaults are useful.
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("enas4d"),
                required_limits: limits.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| Error::Device(e.to_string()))?;
        let errors = Arc::new(Mutex::new(None::<String>));
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut slot) = sink.lock() {
                slot.get_or_insert_with(|| e.to_string());
            }
        }));
        let summary = AdapterSummary {
            name: info.name.clone(),
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
            driver: format!("{} {}", info.driver, info.driver_info)
                .trim()
                .to_string(),
            limits: KeyLimits {
                max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size,
                max_storage_buffers_per_shader_stage: limits.max_storage_buffers_per_shader_stage,
                max_compute_workgroup_storage_size: limits.max_compute_workgroup_storage_size,
                max_compute_invocations_per_workgroup: limits.max_compute_invocations_per_workgroup,
                max_compute_workgroups_per_dimension: limits.max_compute_workgroups_per_dimension,
            },
        };
        let dummy = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("unused binding"),
            size: 4,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        Ok(GpuContext {
            dummy,
            device,
            queue,
            summary,
            pipelines: PipelineCache::default(),
            errors,
        })
    }

    /// The chosen adapter.
    pub fn adapter(&self) -> &AdapterSummary {
        &self.summary
    }

    /// A 4-byte storage buffer for bindings a dispatch does not use.
    pub fn unused_binding(&self) -> &wgpu::Buffer {
        &self.dummy
    }

    /// Number of kernels compiled so far on this device.
    pub fn compiled_kernels(&self) -> usize {
        self.pipelines.len()
    }

    /// Returns (and clears) the first device error reported since the last call.
    pub fn take_error(&self) -> Result<()> {
        match self.errors.lock().ok().and_then(|mut slot| slot.take()) {
            Some(msg) => Err(Error::Device(msg)),
            None => Ok(()),
        }
    }
}

/// Rank of a device type: lower is preferred.
#[cfg(not(target_arch = "wasm32"))]
fn rank(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    }
}

#[cfg(not(target_arch = "wasm32"))]
async fn pick_adapter(
    instance: &wgpu::Instance,
    backends: wgpu::Backends,
    wanted: Option<&str>,
    device_type: Option<wgpu::DeviceType>,
) -> Result<wgpu::Adapter> {
    let mut adapters = instance.enumerate_adapters(backends).await;
    if adapters.is_empty() {
        return Err(Error::NoAdapter(format!(
            "no adapter for backends {backends:?}; install a GPU driver or Mesa's lavapipe \
             (Debian: mesa-vulkan-drivers)"
        )));
    }
    let names: Vec<String> = adapters
        .iter()
        .map(|a| {
            let i = a.get_info();
            format!("{} ({:?})", i.name, i.backend)
        })
        .collect();
    if let Some(wanted) = wanted {
        let w = wanted.to_lowercase();
        adapters.retain(|a| a.get_info().name.to_lowercase().contains(&w));
        if adapters.is_empty() {
            return Err(Error::NoAdapter(format!(
                "none matches {wanted:?}; found: {}",
                names.join(", ")
            )));
        }
    }
    if let Some(t) = device_type {
        adapters.retain(|a| a.get_info().device_type == t);
        if adapters.is_empty() {
            return Err(Error::NoAdapter(format!(
                "no {t:?} adapter; found: {}",
                names.join(", ")
            )));
        }
    }
    // Compute-capable backends first (GL lacks compute on many drivers), then device type.
    adapters.sort_by_key(|a| {
        let i = a.get_info();
        (i.backend == wgpu::Backend::Gl, rank(i.device_type))
    });
    Ok(adapters.swap_remove(0))
}

#[cfg(target_arch = "wasm32")]
async fn pick_adapter(
    instance: &wgpu::Instance,
    _backends: wgpu::Backends,
    _wanted: Option<&str>,
    _device_type: Option<wgpu::DeviceType>,
) -> Result<wgpu::Adapter> {
    instance
        .request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            ..Default::default()
        })
        .await
        .map_err(|e| Error::NoAdapter(format!("WebGPU: {e}")))
}
