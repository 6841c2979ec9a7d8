//! The subcommands of the `enas4d` binary.

pub mod bench;
#[cfg(feature = "train")]
pub mod curve;
mod engine;
#[cfg(feature = "train")]
pub mod eval;
#[cfg(feature = "train")]
pub mod export;
pub mod gallery;
pub mod infer;
pub mod inspect;
#[cfg(feature = "train")]
pub mod search;
#[cfg(feature = "train")]
pub mod train;

/// The shipped multi-stage supernet (S = 2, the one the shipped nets were searched on),
/// relative to the repository root.
#[cfg(feature = "train")]
pub const DEFAULT_SUPERNET: &str = "models/tiny-s2/ab22-first-stage/supernet.bin";

/// The shipped static (S = 1) supernet, trained on as many images as [`DEFAULT_SUPERNET`].
#[cfg(feature = "train")]
pub const DEFAULT_STATIC: &str = "models/tiny-s1/ab23-longer/supernet.bin";

/// The shipped exported multi-stage net.
pub const DEFAULT_MODEL: &str = "models/tiny-s3/net.safetensors";

/// The default supernet path (see [`shipped`]).
#[cfg(feature = "train")]
pub fn default_supernet() -> Result<std::path::PathBuf, String> {
    shipped(DEFAULT_SUPERNET)
}

/// A shipped model file, `relative` to the repository root: looked for under the current
/// folder, then under `$ENAS4D_HOME`, then in the source tree this binary was built from; the
/// error says where to get one.
pub fn shipped(relative: &str) -> Result<std::path::PathBuf, String> {
    let mut tried = vec![std::path::PathBuf::from(relative)];
    if let Some(home) = std::env::var_os("ENAS4D_HOME") {
        tried.push(std::path::Path::new(&home).join(relative));
    }
    tried.push(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(relative));
    match tried.iter().find(|p| p.is_file()) {
        Some(p) => Ok(p.clone()),
        None => Err(format!(
            "no --model given and the shipped {relative} is not found (looked in the current \
             folder, $ENAS4D_HOME and the source tree); pass --model FILE, run from a clone of \
             the repository, or set ENAS4D_HOME to one"
        )),
    }
}

/// A MACs budget flag such as `3M` or `900k`.
pub fn parse_budget(s: &str) -> Result<f64, String> {
    enas4d::space::parse_macs(s).map_err(|e| e.to_string())
}

/// Where a command runs: one set of values for every command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DeviceChoice {
    /// The CPU: burn's CPU backend for training, plain Rust for inference.
    Cpu,
    /// The best wgpu adapter (Vulkan, Metal or DX12): discrete > integrated > virtual > CPU.
    Gpu,
    /// The first discrete GPU.
    Discrete,
    /// The first integrated GPU.
    Integrated,
    /// wgpu's CPU adapter (Mesa's lavapipe on Linux).
    Lavapipe,
}

impl DeviceChoice {
    /// The value as typed on the command line.
    pub fn name(self) -> &'static str {
        match self {
            DeviceChoice::Cpu => "cpu",
            DeviceChoice::Gpu => "gpu",
            DeviceChoice::Discrete => "discrete",
            DeviceChoice::Integrated => "integrated",
            DeviceChoice::Lavapipe => "lavapipe",
        }
    }

    /// The burn device for training, evaluation and search, and its name for logs.
    #[cfg(feature = "train")]
    pub fn burn(self) -> enas4d::Result<(burn::tensor::Device, String)> {
        enas4d::train::parse_device(self.name())
    }

    /// The adapter type a GPU choice asks for (`None` for any; not used for `cpu`).
    pub fn adapter_type(self) -> Option<wgpu::DeviceType> {
        match self {
            DeviceChoice::Cpu | DeviceChoice::Gpu => None,
            DeviceChoice::Discrete => Some(wgpu::DeviceType::DiscreteGpu),
            DeviceChoice::Integrated => Some(wgpu::DeviceType::IntegratedGpu),
            DeviceChoice::Lavapipe => Some(wgpu::DeviceType::Cpu),
        }
    }
}

/// Adapter choice for the commands that run the WGSL kernels themselves.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct AdapterArgs {
    /// Backends to consider: vulkan, metal, dx12, gl (comma list). Default: $WGPU_BACKEND or all.
    #[arg(long)]
    pub backend: Option<String>,
    /// Force the adapter whose name contains this (e.g. llvmpipe). Default: $ENAS4D_ADAPTER or
    /// the best one (discrete > integrated > virtual > CPU).
    #[arg(long)]
    pub adapter: Option<String>,
}

impl AdapterArgs {
    /// The GPU options of these flags, restricted to adapters of `device_type`.
    pub fn options(&self, device_type: Option<wgpu::DeviceType>) -> enas4d::gpu::GpuOptions {
        enas4d::gpu::GpuOptions {
            backends: self.backend.clone(),
            adapter: self.adapter.clone(),
            device_type,
        }
    }
}

/// The text of a file the user named; the error names the path.
pub fn read_text(path: &std::path::Path) -> enas4d::Result<String> {
    std::fs::read_to_string(path).map_err(|e| enas4d::Error::io(path, e))
}
