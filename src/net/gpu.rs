//! The all-exits pass on the GPU: the same walk as the reference, recorded into one command
//! buffer.

use super::pass::{all_exits, Ops};
use super::NetWeights;
use crate::error::{Error, Result};
use crate::gpu::GpuContext;
use crate::ops::conv::{encode_conv, ConvSpec};
use crate::ops::dwconv::{encode_dwconv, DwConvSpec};
use crate::ops::gemm::{encode_gemm, GemmSpec};
use crate::ops::pool::encode_pool;
use crate::ops::se::encode_se_scale;
use crate::ops::Planes;
use crate::space::Plan;

/// The kernels, recorded into one encoder; each op writes a new buffer.
struct Recorder<'a> {
    ctx: &'a GpuContext,
    enc: wgpu::CommandEncoder,
}

impl Ops for Recorder<'_> {
    type Buf = wgpu::Buffer;

    fn conv(
        &mut self,
        spec: &ConvSpec,
        x: &wgpu::Buffer,
        w: &wgpu::Buffer,
        a: &wgpu::Buffer,
    ) -> Result<wgpu::Buffer> {
        let y = self.ctx.storage("conv", spec.lens().3);
        encode_conv(self.ctx, &mut self.enc, spec, x, w, a, &y)?;
        Ok(y)
    }

    fn gemm(
        &mut self,
        spec: &GemmSpec,
        x: &wgpu::Buffer,
        w: &wgpu::Buffer,
        a: &wgpu::Buffer,
        res: Option<&wgpu::Buffer>,
    ) -> Result<wgpu::Buffer> {
        let y = self.ctx.storage("gemm", spec.lens().3);
        encode_gemm(self.ctx, &mut self.enc, spec, x, w, a, res, &y)?;
        Ok(y)
    }

    fn dwconv(
        &mut self,
        spec: &DwConvSpec,
        x: &wgpu::Buffer,
        w: &wgpu::Buffer,
        a: &wgpu::Buffer,
    ) -> Result<wgpu::Buffer> {
        let y = self.ctx.storage("depthwise", spec.lens().3);
        encode_dwconv(self.ctx, &mut self.enc, spec, x, w, a, &y)?;
        Ok(y)
    }

    fn pool(&mut self, planes: usize, size: usize, x: &wgpu::Buffer) -> Result<wgpu::Buffer> {
        let y = self.ctx.storage("pooled", planes);
        encode_pool(self.ctx, &mut self.enc, Planes::all(planes), size, x, &y)?;
        Ok(y)
    }

    fn scale(
        &mut self,
        size: usize,
        x: &wgpu::Buffer,
        gate: &wgpu::Buffer,
    ) -> Result<wgpu::Buffer> {
        // x holds whole planes of `size` values.
        let planes = Planes::all(x.size() as usize / 4 / size.max(1));
        let y = self.ctx.storage("se scaled", planes.count() * size);
        encode_se_scale(self.ctx, &mut self.enc, planes, size, x, gate, &y)?;
        Ok(y)
    }
}

/// Runs the whole masked network once on the GPU and returns every exit's logits
/// (`[batch, classes]` each). `images` is `[batch, 3, R, R]` at the plan's resolution.
pub async fn forward_gpu(
    ctx: &GpuContext,
    plan: &Plan,
    w: &NetWeights<wgpu::Buffer>,
    images: &wgpu::Buffer,
    batch: usize,
) -> Result<Vec<Vec<f32>>> {
    if w.layers.len() != plan.layers().len() {
        return Err(Error::config("net weights", "do not match the plan"));
    }
    let mut rec = Recorder {
        ctx,
        enc: ctx.encoder(),
    };
    let (outs, _) = all_exits(&mut rec, plan, w, images, batch)?;
    ctx.submit(rec.enc);
    let mut logits = Vec::with_capacity(outs.len());
    for buffer in &outs {
        logits.push(ctx.read_f32(buffer).await?);
    }
    Ok(logits)
}
