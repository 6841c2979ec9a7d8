//! Dense k×k conv over few input channels: the stem (`shaders/stem_conv.wgsl`).
//!
//! `y[b, o] = act(scale[o] · Σ_{ci, ky, kx} w[o, ci, ky, kx] · x[b, ci, ·] + shift[o])`, padding
//! k / 2. The image's channels belong to every stage, so no stage mask is needed.

use bytemuck::{Pod, Zeroable};

use super::{check_buffer, check_len, to_u32, Activation};
use crate::error::{Error, Result};
use crate::gpu::{GpuContext, Kernel};

/// Shapes and options of the stem conv.
#[derive(Clone, Debug)]
pub struct ConvSpec {
    /// Batch size.
    pub batch: usize,
    /// Input channels (3 for an image).
    pub in_channels: usize,
    /// Input height.
    pub height: usize,
    /// Input width.
    pub width: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Odd kernel size.
    pub kernel: usize,
    /// Stride, 1 or 2.
    pub stride: usize,
    /// Activation after the affine.
    pub act: Activation,
    /// GPU launcher: outputs are channels `out_offset .. + out_channels` of a tensor with
    /// `out_total` channels (the reference needs offset 0 and total = out_channels).
    pub out_offset: usize,
    /// Channels of the output tensor.
    pub out_total: usize,
}

impl ConvSpec {
    /// Output height ⌈H / stride⌉.
    pub fn out_height(&self) -> usize {
        self.height.div_ceil(self.stride)
    }

    /// Output width ⌈W / stride⌉.
    pub fn out_width(&self) -> usize {
        self.width.div_ceil(self.stride)
    }

    /// Checks the spec.
    pub fn validate(&self) -> Result<()> {
        if self.kernel.is_multiple_of(2) || self.kernel > 7 {
            return Err(Error::config(
                "conv.kernel",
                format!("{} is not odd and ≤ 7", self.kernel),
            ));
        }
        if ![1, 2].contains(&self.stride) {
            return Err(Error::config(
                "conv.stride",
                format!("{} is not 1 or 2", self.stride),
            ));
        }
        if self.out_offset + self.out_channels > self.out_total {
            return Err(Error::config(
                "conv.out_total",
                "output slice exceeds the tensor",
            ));
        }
        if self.batch * self.in_channels * self.height * self.width * self.out_channels == 0 {
            return Err(Error::config("conv", "empty shape"));
        }
        Ok(())
    }

    /// Multiply-accumulates performed.
    pub fn macs(&self) -> usize {
        self.batch
            * self.out_channels
            * self.out_height()
            * self.out_width()
            * self.in_channels
            * self.kernel
            * self.kernel
    }

    /// Elements of x, w, affine and y.
    pub fn lens(&self) -> (usize, usize, usize, usize) {
        (
            self.batch * self.in_channels * self.height * self.width,
            self.out_channels * self.in_channels * self.kernel * self.kernel,
            2 * self.out_channels,
            self.batch * self.out_total * self.out_height() * self.out_width(),
        )
    }
}

/// The reference conv (f64 accumulation).
pub fn conv_reference(spec: &ConvSpec, x: &[f32], w: &[f32], affine: &[f32]) -> Result<Vec<f32>> {
    spec.validate()?;
    if spec.out_offset != 0 || spec.out_total != spec.out_channels {
        return Err(Error::config(
            "conv.out_total",
            "the reference works on whole tensors",
        ));
    }
    let (nx, nw, na, ny) = spec.lens();
    check_len("conv", "x", x.len(), nx)?;
    check_len("conv", "w", w.len(), nw)?;
    check_len("conv", "affine", affine.len(), na)?;
    let (ci_n, h, wd, k, st) = (
        spec.in_channels,
        spec.height,
        spec.width,
        spec.kernel,
        spec.stride,
    );
    let (co_n, ho, wo) = (spec.out_channels, spec.out_height(), spec.out_width());
    let pad = (k / 2) as isize;
    let mut y = vec![0f32; ny];
    for b in 0..spec.batch {
        for o in 0..co_n {
            for oy in 0..ho {
                for ox in 0..wo {
                    let mut acc = 0f64;
                    for ci in 0..ci_n {
                        for ky in 0..k {
                            let iy = (oy * st + ky) as isize - pad;
                            if iy < 0 || iy >= h as isize {
                                continue;
                            }
                            for kx in 0..k {
                                let ix = (ox * st + kx) as isize - pad;
                                if ix < 0 || ix >= wd as isize {
                                    continue;
                                }
                                let wv = w[((o * ci_n + ci) * k + ky) * k + kx];
                                let xv = x[((b * ci_n + ci) * h + iy as usize) * wd + ix as usize];
                                acc += f64::from(wv) * f64::from(xv);
                            }
                        }
                    }
                    let v = spec
                        .act
                        .apply(acc * f64::from(affine[o]) + f64::from(affine[co_n + o]));
                    y[((b * co_n + o) * ho + oy) * wo + ox] = v as f32;
                }
            }
        }
    }
    Ok(y)
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    batch: u32,
    in_channels: u32,
    height: u32,
    width: u32,
    out_channels: u32,
    out_height: u32,
    out_width: u32,
    kernel: u32,
    stride: u32,
    act: u32,
    o_offset: u32,
    o_total: u32,
}

/// Records the stem conv.
pub fn encode_conv(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    spec: &ConvSpec,
    x: &wgpu::Buffer,
    w: &wgpu::Buffer,
    affine: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Result<()> {
    spec.validate()?;
    let (nx, nw, na, ny) = spec.lens();
    check_buffer("conv", "x", x, nx)?;
    check_buffer("conv", "w", w, nw)?;
    check_buffer("conv", "affine", affine, na)?;
    check_buffer("conv", "y", y, ny)?;
    to_u32("x", nx)?;
    to_u32("y", ny)?;
    let params = Params {
        batch: to_u32("batch", spec.batch)?,
        in_channels: to_u32("in_channels", spec.in_channels)?,
        height: to_u32("height", spec.height)?,
        width: to_u32("width", spec.width)?,
        out_channels: to_u32("out_channels", spec.out_channels)?,
        out_height: spec.out_height() as u32,
        out_width: spec.out_width() as u32,
        kernel: spec.kernel as u32,
        stride: spec.stride as u32,
        act: spec.act.code(),
        o_offset: to_u32("out_offset", spec.out_offset)?,
        o_total: to_u32("out_total", spec.out_total)?,
    };
    let uniform = ctx.uniform("conv params", &params);
    ctx.dispatch(
        encoder,
        Kernel::StemConv,
        &[x, w, affine, y, &uniform],
        ctx.linear_groups(spec.batch * spec.out_channels * spec.out_height() * spec.out_width()),
    );
    Ok(())
}

crate::ops::wgsl_mirror_tests! {
    params_mirror_the_wgsl: Params = crate::gpu::Kernel::StemConv.source(),
        [batch, in_channels, height, width, out_channels, out_height, out_width, kernel, stride,
         act, o_offset, o_total];
}
