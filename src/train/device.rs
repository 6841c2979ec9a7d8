//! The burn device a command trains or evaluates on, chosen by name.

use burn::tensor::{Device, DeviceKind};

use crate::error::{Error, Result};

/// `cpu` (burn's pure-Rust CPU backend), `gpu` (wgpu's default adapter: Vulkan, Metal or
/// DX12), `discrete` / `integrated` (the first such GPU) or `lavapipe` (wgpu's CPU adapter,
/// Mesa lavapipe on Linux). Returns the device and a name for logs.
pub fn parse_device(name: &str) -> Result<(Device, String)> {
    let (device, label) = match name {
        "cpu" => (Device::flex(), "cpu (burn flex)"),
        "gpu" | "wgpu" => (
            Device::wgpu(DeviceKind::DefaultDevice),
            "wgpu (default adapter)",
        ),
        "discrete" => (
            Device::wgpu(DeviceKind::DiscreteGpu(0)),
            "wgpu (discrete GPU 0)",
        ),
        "integrated" => (
            Device::wgpu(DeviceKind::IntegratedGpu(0)),
            "wgpu (integrated GPU 0)",
        ),
        "lavapipe" => (
            Device::wgpu(DeviceKind::Cpu),
            "wgpu (CPU adapter: lavapipe)",
        ),
        _ => {
            return Err(Error::config(
                "device",
                format!("'{name}': expected cpu, gpu, discrete, integrated or lavapipe"),
            ))
        }
    };
    Ok((device, label.to_string()))
}
