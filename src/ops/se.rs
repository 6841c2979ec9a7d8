//! Stage-causal squeeze-excite (DESIGN §1–2): global average pool → masked 1×1 reduce with
//! bias (relu) → masked 1×1 expand with bias (hard-sigmoid) → channel scale
//! (`shaders/pool.wgsl`, `shaders/gemm.wgsl`, `shaders/se_scale.wgsl`).
//!
//! A reduced channel of stage s reads the middle channels of stages ≤ s, and a gate of stage s
//! reads the reduced channels of stages ≤ s, so the stage-s output never sees a later stage.

use bytemuck::{Pod, Zeroable};

use super::gemm::{encode_gemm, gemm_reference, GemmSpec};
use super::pool::{encode_pool, pool_reference};
use super::{check_buffer, check_len, to_u32, Activation, Planes};
use crate::error::{Error, Result};
use crate::gpu::{GpuContext, Kernel};
use crate::space::StageCuts;

/// Shapes of one squeeze-excite.
#[derive(Clone, Debug)]
pub struct SeSpec {
    /// Batch size.
    pub batch: usize,
    /// Channels C (the block's middle channels).
    pub channels: usize,
    /// Reduced channels R.
    pub reduced: usize,
    /// Pixels per channel (H · W).
    pub size: usize,
    /// Stage cuts of the channel axis.
    pub cuts: StageCuts,
    /// Stage cuts of the reduced axis.
    pub reduced_cuts: StageCuts,
    /// Per stage: does it run? Inactive stages get gate 0.
    pub active: Vec<bool>,
}

/// Squeeze-excite weights: host vectors (`Vec<f32>`) or GPU buffers.
#[derive(Clone, Debug)]
pub struct SeWeights<T> {
    /// Reduce weight `[R, C]`.
    pub reduce_w: T,
    /// Reduce affine `[scale(R), bias(R)]`.
    pub reduce_affine: T,
    /// Expand weight `[C, R]`.
    pub expand_w: T,
    /// Expand affine `[scale(C), bias(C)]`.
    pub expand_affine: T,
}

impl SeWeights<Vec<f32>> {
    /// Copies the weights to the GPU.
    pub fn upload(&self, ctx: &GpuContext) -> SeWeights<wgpu::Buffer> {
        SeWeights {
            reduce_w: ctx.upload_f32("se reduce", &self.reduce_w),
            reduce_affine: ctx.upload_f32("se reduce affine", &self.reduce_affine),
            expand_w: ctx.upload_f32("se expand", &self.expand_w),
            expand_affine: ctx.upload_f32("se expand affine", &self.expand_affine),
        }
    }
}

impl SeSpec {
    pub(crate) fn reduce(&self) -> GemmSpec {
        GemmSpec {
            batch: self.batch,
            rows: self.reduced,
            depth: self.channels,
            in_width: self.channels,
            out_width: self.reduced,
            out_offset: 0,
            cols: 1,
            out_cuts: self.reduced_cuts.clone(),
            in_cuts: self.cuts.clone(),
            act: Activation::Relu,
            residual: false,
            active: self.active.clone(),
            pass_through: false,
        }
    }

    pub(crate) fn expand(&self) -> GemmSpec {
        GemmSpec {
            batch: self.batch,
            rows: self.channels,
            depth: self.reduced,
            in_width: self.reduced,
            out_width: self.channels,
            out_offset: 0,
            cols: 1,
            out_cuts: self.cuts.clone(),
            in_cuts: self.reduced_cuts.clone(),
            act: Activation::Hsigmoid,
            residual: false,
            active: self.active.clone(),
            pass_through: false,
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.size == 0 {
            return Err(Error::config("se.size", "empty plane"));
        }
        self.reduce().validate()?;
        self.expand().validate()
    }

    /// Multiply-accumulates performed (the two masked 1×1 layers).
    pub fn macs(&self) -> usize {
        self.reduce().macs() + self.expand().macs()
    }

    /// Elements of x (and y).
    pub fn len(&self) -> usize {
        self.batch * self.channels * self.size
    }

    /// Whether the input is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The reference channel scale: `y = x · gate[plane]`.
pub fn se_scale_reference(size: usize, x: &[f32], gate: &[f32]) -> Result<Vec<f32>> {
    if size == 0 {
        return Err(Error::config("se_scale.size", "empty plane"));
    }
    check_len("se_scale", "gate", gate.len(), x.len() / size)?;
    check_len("se_scale", "x", x.len(), gate.len() * size)?;
    Ok(x.iter()
        .enumerate()
        .map(|(i, &v)| v * gate[i / size])
        .collect())
}

/// The reference squeeze-excite, composed of the references of its steps.
pub fn se_reference(spec: &SeSpec, x: &[f32], w: &SeWeights<Vec<f32>>) -> Result<Vec<f32>> {
    spec.validate()?;
    check_len("se", "x", x.len(), spec.len())?;
    let pooled = pool_reference(spec.batch * spec.channels, spec.size, x)?;
    let reduced = gemm_reference(&spec.reduce(), &pooled, &w.reduce_w, &w.reduce_affine, None)?;
    let gate = gemm_reference(
        &spec.expand(),
        &reduced,
        &w.expand_w,
        &w.expand_affine,
        None,
    )?;
    se_scale_reference(spec.size, x, &gate)
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct ScaleParams {
    count: u32,
    size: u32,
    offset: u32,
    total: u32,
    len: u32,
    pad: [u32; 3],
}

/// Records the channel scale `y = x · gate[plane]` of `planes` of x and y
/// (`[batch, total, size]`), gate being `[batch, total]`.
#[allow(clippy::too_many_arguments)]
pub fn encode_se_scale(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    planes: Planes,
    size: usize,
    x: &wgpu::Buffer,
    gate: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Result<()> {
    if size == 0 {
        return Err(Error::config("se_scale.size", "empty plane"));
    }
    let end = planes.check("se_scale.planes")?;
    check_buffer("se_scale", "x", x, end * size)?;
    check_buffer("se_scale", "gate", gate, end)?;
    check_buffer("se_scale", "y", y, end * size)?;
    let count = planes.count() * size;
    if count == 0 {
        return Ok(());
    }
    let params = ScaleParams {
        count: to_u32("count", count)?,
        size: to_u32("size", size)?,
        offset: to_u32("offset", planes.offset)?,
        total: to_u32("total", planes.total)?,
        len: to_u32("len", planes.len)?,
        pad: [0; 3],
    };
    let uniform = ctx.uniform("se_scale params", &params);
    ctx.dispatch(
        encoder,
        Kernel::SeScale,
        &[x, gate, y, &uniform],
        ctx.linear_groups(count),
    );
    Ok(())
}

/// Records the whole squeeze-excite from `x` into `y`.
pub fn encode_se(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    spec: &SeSpec,
    x: &wgpu::Buffer,
    w: &SeWeights<wgpu::Buffer>,
    y: &wgpu::Buffer,
) -> Result<()> {
    spec.validate()?;
    let rows = spec.batch * spec.channels;
    let pooled = ctx.storage("se pooled", rows);
    let reduced = ctx.storage("se reduced", spec.batch * spec.reduced);
    let gate = ctx.storage("se gate", rows);
    encode_pool(ctx, encoder, Planes::all(rows), spec.size, x, &pooled)?;
    encode_gemm(
        ctx,
        encoder,
        &spec.reduce(),
        &pooled,
        &w.reduce_w,
        &w.reduce_affine,
        None,
        &reduced,
    )?;
    encode_gemm(
        ctx,
        encoder,
        &spec.expand(),
        &reduced,
        &w.expand_w,
        &w.expand_affine,
        None,
        &gate,
    )?;
    encode_se_scale(ctx, encoder, Planes::all(rows), spec.size, x, &gate, y)
}

crate::ops::wgsl_mirror_tests! {
    params_mirror_the_wgsl: ScaleParams = crate::gpu::Kernel::SeScale.source(),
        [count, size, offset, total, len, pad];
}
