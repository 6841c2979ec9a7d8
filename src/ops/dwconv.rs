//! Depthwise conv with a kernel size per stage (`shaders/dwconv.wgsl`, DESIGN §1–2).
//!
//! Channel c of stage s is convolved with its own k_s × k_s kernel (k_s ∈ {3, 5, 7}), stride 1
//! or 2, padding k_s / 2 (so every k gives ⌈H / stride⌉ rows), then folded BN and activation.
//! Channels of an inactive stage are 0.

use bytemuck::{Pod, Zeroable};

use super::{active_mask, check_buffer, check_len, to_u32, Activation};
use crate::error::{Error, Result};
use crate::gpu::{GpuContext, Kernel};
use crate::space::StageCuts;

/// Shapes and options of one depthwise conv.
#[derive(Clone, Debug)]
pub struct DwConvSpec {
    /// Batch size.
    pub batch: usize,
    /// Channels C.
    pub channels: usize,
    /// Input height.
    pub height: usize,
    /// Input width.
    pub width: usize,
    /// Stride, 1 or 2.
    pub stride: usize,
    /// Stage cuts of the channel axis (width C).
    pub cuts: StageCuts,
    /// Kernel size per stage, each 3, 5 or 7.
    pub kernels: Vec<usize>,
    /// Elements between consecutive channels' kernels in `w` (≥ the largest k²).
    pub w_stride: usize,
    /// Activation after the affine.
    pub act: Activation,
    /// Per stage: does it run?
    pub active: Vec<bool>,
    /// GPU launcher: the channels are the slice `channel_offset .. + channels` of tensors with
    /// `channel_total` channels (the reference needs offset 0 and total = channels).
    pub channel_offset: usize,
    /// Channels of the input and output tensors (≥ offset + channels).
    pub channel_total: usize,
}

impl DwConvSpec {
    /// Output height ⌈H / stride⌉.
    pub fn out_height(&self) -> usize {
        self.height.div_ceil(self.stride)
    }

    /// Output width ⌈W / stride⌉.
    pub fn out_width(&self) -> usize {
        self.width.div_ceil(self.stride)
    }

    /// Checks the spec's internal consistency.
    pub fn validate(&self) -> Result<()> {
        let s = self.cuts.stages();
        if self.cuts.width() as usize != self.channels {
            return Err(Error::config(
                "dwconv.cuts",
                format!("width {} ≠ channels {}", self.cuts.width(), self.channels),
            ));
        }
        if self.kernels.len() != s || self.active.len() != s {
            return Err(Error::config(
                "dwconv.kernels",
                format!(
                    "{} kernels / {} flags for {s} stages",
                    self.kernels.len(),
                    self.active.len()
                ),
            ));
        }
        for (i, &k) in self.kernels.iter().enumerate() {
            if ![3, 5, 7].contains(&k) {
                return Err(Error::config(
                    format!("dwconv.kernels[{i}]"),
                    format!("{k} is not 3, 5 or 7"),
                ));
            }
            if k * k > self.w_stride {
                return Err(Error::config(
                    "dwconv.w_stride",
                    format!("{} < {k}²", self.w_stride),
                ));
            }
        }
        if ![1, 2].contains(&self.stride) {
            return Err(Error::config(
                "dwconv.stride",
                format!("{} is not 1 or 2", self.stride),
            ));
        }
        if self.channel_offset + self.channels > self.channel_total {
            return Err(Error::config(
                "dwconv.channel_total",
                format!(
                    "slice {}..{} exceeds {}",
                    self.channel_offset,
                    self.channel_offset + self.channels,
                    self.channel_total
                ),
            ));
        }
        if self.batch == 0 || self.height == 0 || self.width == 0 {
            return Err(Error::config("dwconv", "empty input"));
        }
        Ok(())
    }

    /// Multiply-accumulates performed (active stages only).
    pub fn macs(&self) -> usize {
        (0..self.cuts.stages())
            .filter(|&s| self.active[s])
            .map(|s| self.cuts.range(s).len() * self.kernels[s] * self.kernels[s])
            .sum::<usize>()
            * self.batch
            * self.out_height()
            * self.out_width()
    }

    /// Elements of x, w, affine and y.
    pub fn lens(&self) -> (usize, usize, usize, usize) {
        (
            self.batch * self.channel_total * self.height * self.width,
            self.channels * self.w_stride,
            2 * self.channels,
            self.batch * self.channel_total * self.out_height() * self.out_width(),
        )
    }
}

/// The reference depthwise conv (f64 accumulation).
pub fn dwconv_reference(
    spec: &DwConvSpec,
    x: &[f32],
    w: &[f32],
    affine: &[f32],
) -> Result<Vec<f32>> {
    spec.validate()?;
    if spec.channel_offset != 0 || spec.channel_total != spec.channels {
        return Err(Error::config(
            "dwconv.channel_total",
            "the reference works on whole tensors",
        ));
    }
    let (nx, nw, na, ny) = spec.lens();
    check_len("dwconv", "x", x.len(), nx)?;
    check_len("dwconv", "w", w.len(), nw)?;
    check_len("dwconv", "affine", affine.len(), na)?;
    let (c_n, h, wd, st) = (spec.channels, spec.height, spec.width, spec.stride);
    let (ho, wo) = (spec.out_height(), spec.out_width());
    let mut y = vec![0f32; ny];
    for b in 0..spec.batch {
        for c in 0..c_n {
            let s = spec.cuts.stage_of(c);
            if !spec.active[s] {
                continue;
            }
            let k = spec.kernels[s];
            let pad = (k / 2) as isize;
            let plane = &x[(b * c_n + c) * h * wd..][..h * wd];
            let kern = &w[c * spec.w_stride..][..k * k];
            for oy in 0..ho {
                for ox in 0..wo {
                    let mut acc = 0f64;
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
                            acc += f64::from(kern[ky * k + kx])
                                * f64::from(plane[iy as usize * wd + ix as usize]);
                        }
                    }
                    let v = spec
                        .act
                        .apply(acc * f64::from(affine[c]) + f64::from(affine[c_n + c]));
                    y[((b * c_n + c) * ho + oy) * wo + ox] = v as f32;
                }
            }
        }
    }
    Ok(y)
}

/// The parameter block of `dwconv.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub(crate) struct Params {
    batch: u32,
    channels: u32,
    height: u32,
    width: u32,
    out_height: u32,
    out_width: u32,
    stride: u32,
    stages: u32,
    act: u32,
    w_stride: u32,
    active_mask: u32,
    c_offset: u32,
    c_total: u32,
    pad: [u32; 3],
    cuts: [[u32; 4]; 2],
    kernels: [u32; 4],
}

/// Records the depthwise conv.
pub fn encode_dwconv(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    spec: &DwConvSpec,
    x: &wgpu::Buffer,
    w: &wgpu::Buffer,
    affine: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Result<()> {
    spec.validate()?;
    let (nx, nw, na, ny) = spec.lens();
    check_buffer("dwconv", "x", x, nx)?;
    check_buffer("dwconv", "w", w, nw)?;
    check_buffer("dwconv", "affine", affine, na)?;
    check_buffer("dwconv", "y", y, ny)?;
    let params = dwconv_params(spec)?;
    let uniform = ctx.uniform("dwconv params", &params);
    ctx.dispatch(
        encoder,
        Kernel::DwConv,
        &[x, w, affine, y, &uniform],
        ctx.linear_groups(spec.batch * spec.channels * spec.out_height() * spec.out_width()),
    );
    Ok(())
}

/// The parameter block of one depthwise conv.
pub(crate) fn dwconv_params(spec: &DwConvSpec) -> Result<Params> {
    spec.validate()?;
    let (nx, _, _, ny) = spec.lens();
    to_u32("x", nx)?;
    to_u32("y", ny)?;
    let mut kernels = [0u32; 4];
    for (slot, &k) in kernels.iter_mut().zip(&spec.kernels) {
        *slot = k as u32;
    }
    Ok(Params {
        batch: to_u32("batch", spec.batch)?,
        channels: to_u32("channels", spec.channels)?,
        height: to_u32("height", spec.height)?,
        width: to_u32("width", spec.width)?,
        out_height: spec.out_height() as u32,
        out_width: spec.out_width() as u32,
        stride: spec.stride as u32,
        stages: spec.cuts.stages() as u32,
        act: spec.act.code(),
        w_stride: to_u32("w_stride", spec.w_stride)?,
        active_mask: active_mask(&spec.active),
        c_offset: to_u32("channel_offset", spec.channel_offset)?,
        c_total: to_u32("channel_total", spec.channel_total)?,
        pad: [0; 3],
        cuts: spec.cuts.padded(),
        kernels,
    })
}

crate::ops::wgsl_mirror_tests! {
    params_mirror_the_wgsl: Params = crate::gpu::Kernel::DwConv.source(),
        [batch, channels, height, width, out_height, out_width, stride, stages, act, w_stride,
         active_mask, c_offset, c_total, pad, cuts, kernels];
}
