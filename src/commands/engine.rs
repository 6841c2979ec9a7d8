//! Where `infer` and `bench` run an exported net: the CPU runtime on some threads, or the GPU
//! runtime on a wgpu adapter.

use std::error::Error;

use enas4d::format::ExportedNet;
use enas4d::gpu::GpuContext;
use enas4d::runtime::{Decision, StageWiseCpu, StageWiseGpu, GPU_MAX_BATCH};

use super::{AdapterArgs, DeviceChoice};

/// An exported net ready to classify on the chosen device.
pub enum Engine {
    /// The CPU runtime; a batch spreads over `threads` threads.
    Cpu(Box<StageWiseCpu>, usize),
    /// The GPU runtime and its device.
    Gpu(Box<(GpuContext, StageWiseGpu)>),
}

impl Engine {
    /// Opens `net` on `device` (an adapter chosen by `adapter` for the GPU choices); CPU
    /// batches use up to `threads` threads.
    pub fn open(
        net: &ExportedNet,
        device: DeviceChoice,
        adapter: &AdapterArgs,
        threads: usize,
    ) -> Result<Self, Box<dyn Error>> {
        Ok(match device {
            DeviceChoice::Cpu => Engine::Cpu(
                Box::new(StageWiseCpu::new(
                    &net.preset,
                    &net.config,
                    net.weights.clone(),
                )?),
                threads,
            ),
            gpu => {
                let ctx =
                    pollster::block_on(GpuContext::new(&adapter.options(gpu.adapter_type())))?;
                let rt = StageWiseGpu::new(&ctx, &net.preset, &net.config, &net.weights)?;
                Engine::Gpu(Box::new((ctx, rt)))
            }
        })
    }

    /// `cpu` or `gpu (adapter name)`.
    pub fn name(&self) -> String {
        match self {
            Engine::Cpu(..) => "cpu".into(),
            Engine::Gpu(g) => format!("gpu ({})", g.0.adapter().name),
        }
    }

    /// Threads a CPU batch spreads over (1 on the GPU).
    pub fn threads(&self) -> usize {
        match self {
            Engine::Cpu(_, threads) => *threads,
            Engine::Gpu(_) => 1,
        }
    }

    /// Classifies a batch, each image leaving at its own exit: on the CPU the images spread
    /// over the threads; on the GPU, in parts of [`GPU_MAX_BATCH`], each stage runs only on the
    /// images still inside.
    pub fn classify(
        &self,
        batch: &[Vec<f32>],
        thresholds: &[f32],
    ) -> enas4d::Result<Vec<Decision>> {
        match self {
            Engine::Cpu(rt, threads) => rt.classify_batch_on(batch, thresholds, *threads),
            Engine::Gpu(g) => {
                let mut out = Vec::with_capacity(batch.len());
                for part in batch.chunks(GPU_MAX_BATCH) {
                    out.extend(pollster::block_on(
                        g.1.classify_batch(&g.0, part, thresholds),
                    )?);
                }
                Ok(out)
            }
        }
    }
}
