//! One MBConv block with S stages and per-stage depth gating, composed of the kernels
//! (DESIGN §1–2): 1×1 expand (BN, act) → per-stage-kernel depthwise (stride, BN, act) → SE
//! (optional) → 1×1 project (BN) → residual add when stride 1 and width unchanged.
//!
//! A stage inactive in this block has zero middle (and SE-reduced) channels and its output
//! slice is the block's input slice, selected, not computed; later stages read those zeros.

use super::dwconv::{dwconv_reference, encode_dwconv, DwConvSpec};
use super::gemm::{encode_gemm, gemm_reference, GemmSpec};
use super::se::{encode_se, se_reference, SeSpec, SeWeights};
use super::{check_len, Activation};
use crate::error::{Error, Result};
use crate::gpu::GpuContext;
use crate::space::{BlockPlan, StageCuts};

pub use crate::space::DW_STRIDE;

/// Shapes and choices of one block.
#[derive(Clone, Debug)]
pub struct MbConvSpec {
    /// Batch size.
    pub batch: usize,
    /// Input height.
    pub height: usize,
    /// Input width.
    pub width: usize,
    /// Depthwise stride, 1 or 2.
    pub stride: usize,
    /// Input channel cuts (block input width).
    pub in_cuts: StageCuts,
    /// Middle channel cuts (expanded width).
    pub mid_cuts: StageCuts,
    /// Output channel cuts.
    pub out_cuts: StageCuts,
    /// SE reduced-channel cuts, when the block has SE.
    pub se_cuts: Option<StageCuts>,
    /// Whether there is a 1×1 expand (false for expand ratio 1: middle = input).
    pub expand: bool,
    /// Depthwise kernel per stage.
    pub kernels: Vec<usize>,
    /// Activation of expand and depthwise.
    pub act: Activation,
    /// Per stage: is the block within that stage's depth?
    pub active: Vec<bool>,
}

/// Block weights: host vectors (`Vec<f32>`) or GPU buffers. Affines are `[scale(C), shift(C)]`.
#[derive(Clone, Debug)]
pub struct MbConvWeights<T> {
    /// Expand `[mid, in]` and its affine, when the block expands.
    pub expand: Option<(T, T)>,
    /// Depthwise kernels `[mid, 49]` (k_s² used per channel) and affine.
    pub dw: (T, T),
    /// Squeeze-excite, when the block has one.
    pub se: Option<SeWeights<T>>,
    /// Project `[out, mid]` and its affine.
    pub project: (T, T),
}

impl MbConvWeights<Vec<f32>> {
    /// Copies the weights to the GPU.
    pub fn upload(&self, ctx: &GpuContext) -> MbConvWeights<wgpu::Buffer> {
        let pair = |(w, a): &(Vec<f32>, Vec<f32>), name: &str| {
            (ctx.upload_f32(name, w), ctx.upload_f32(name, a))
        };
        MbConvWeights {
            expand: self.expand.as_ref().map(|e| pair(e, "expand")),
            dw: pair(&self.dw, "dw"),
            se: self.se.as_ref().map(|se| se.upload(ctx)),
            project: pair(&self.project, "project"),
        }
    }
}

impl MbConvSpec {
    /// Middle width.
    pub fn mid(&self) -> usize {
        self.mid_cuts.width() as usize
    }

    /// Whether the block adds its input (stride 1 and unchanged width).
    pub fn residual(&self) -> bool {
        self.stride == 1 && self.in_cuts == self.out_cuts
    }

    /// Output height.
    pub fn out_height(&self) -> usize {
        self.height.div_ceil(self.stride)
    }

    /// Output width.
    pub fn out_width(&self) -> usize {
        self.width.div_ceil(self.stride)
    }

    /// The block of a subnet's layer plan, for `batch` images.
    pub fn from_plan(block: &BlockPlan, batch: usize) -> Self {
        MbConvSpec {
            batch,
            height: block.size,
            width: block.size,
            stride: block.stride,
            in_cuts: block.in_cuts.clone(),
            mid_cuts: block.mid_cuts.clone(),
            out_cuts: block.out_cuts.clone(),
            se_cuts: block.se_cuts.clone(),
            expand: block.expand,
            kernels: block.kernels.clone(),
            act: block.act,
            active: block.active.clone(),
        }
    }

    /// Multiply-accumulates performed.
    pub fn macs(&self) -> usize {
        let expand = if self.expand {
            self.expand_spec().macs()
        } else {
            0
        };
        let se = self.se_spec().map_or(0, |se| se.macs());
        expand + self.dw_spec().macs() + se + self.project_spec().macs()
    }

    /// Elements of the input and of the output.
    pub fn lens(&self) -> (usize, usize) {
        (
            self.batch * self.in_cuts.width() as usize * self.height * self.width,
            self.batch * self.out_cuts.width() as usize * self.out_height() * self.out_width(),
        )
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if !self.residual() && self.active.iter().any(|a| !a) {
            return Err(Error::config(
                "mbconv.active",
                "only residual blocks can be inactive for a stage",
            ));
        }
        if !self.expand && self.mid_cuts != self.in_cuts {
            return Err(Error::config(
                "mbconv.mid_cuts",
                "without expand the middle axis is the input axis",
            ));
        }
        Ok(())
    }

    pub(crate) fn expand_spec(&self) -> GemmSpec {
        GemmSpec {
            batch: self.batch,
            rows: self.mid(),
            depth: self.in_cuts.width() as usize,
            in_width: self.in_cuts.width() as usize,
            out_width: self.mid(),
            out_offset: 0,
            cols: self.height * self.width,
            out_cuts: self.mid_cuts.clone(),
            in_cuts: self.in_cuts.clone(),
            act: self.act,
            residual: false,
            active: self.active.clone(),
            pass_through: false,
        }
    }

    pub(crate) fn dw_spec(&self) -> DwConvSpec {
        DwConvSpec {
            batch: self.batch,
            channels: self.mid(),
            height: self.height,
            width: self.width,
            stride: self.stride,
            cuts: self.mid_cuts.clone(),
            kernels: self.kernels.clone(),
            w_stride: DW_STRIDE,
            act: self.act,
            active: self.active.clone(),
            channel_offset: 0,
            channel_total: self.mid(),
        }
    }

    pub(crate) fn se_spec(&self) -> Option<SeSpec> {
        self.se_cuts.as_ref().map(|cuts| SeSpec {
            batch: self.batch,
            channels: self.mid(),
            reduced: cuts.width() as usize,
            size: self.out_height() * self.out_width(),
            cuts: self.mid_cuts.clone(),
            reduced_cuts: cuts.clone(),
            active: self.active.clone(),
        })
    }

    pub(crate) fn project_spec(&self) -> GemmSpec {
        let residual = self.residual();
        GemmSpec {
            batch: self.batch,
            rows: self.out_cuts.width() as usize,
            depth: self.mid(),
            in_width: self.mid(),
            out_width: self.out_cuts.width() as usize,
            out_offset: 0,
            cols: self.out_height() * self.out_width(),
            out_cuts: self.out_cuts.clone(),
            in_cuts: self.mid_cuts.clone(),
            act: Activation::None,
            residual,
            active: self.active.clone(),
            pass_through: residual,
        }
    }
}

/// The reference block, composed of the ops' references.
pub fn mbconv_reference(
    spec: &MbConvSpec,
    x: &[f32],
    w: &MbConvWeights<Vec<f32>>,
) -> Result<Vec<f32>> {
    spec.validate()?;
    check_len("mbconv", "x", x.len(), spec.lens().0)?;
    let expanded = match (&w.expand, spec.expand) {
        (Some((ew, ea)), true) => gemm_reference(&spec.expand_spec(), x, ew, ea, None)?,
        (None, false) => x.to_vec(),
        _ => {
            return Err(Error::config(
                "mbconv.expand",
                "weights and spec disagree on expand",
            ))
        }
    };
    let mut mid = dwconv_reference(&spec.dw_spec(), &expanded, &w.dw.0, &w.dw.1)?;
    match (spec.se_spec(), &w.se) {
        (Some(se), Some(sw)) => mid = se_reference(&se, &mid, sw)?,
        (None, None) => {}
        _ => {
            return Err(Error::config(
                "mbconv.se",
                "weights and spec disagree on SE",
            ))
        }
    }
    let res = spec.residual().then_some(x);
    gemm_reference(&spec.project_spec(), &mid, &w.project.0, &w.project.1, res)
}

/// Records the block from `x` into a new output buffer.
pub fn encode_mbconv(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    spec: &MbConvSpec,
    x: &wgpu::Buffer,
    w: &MbConvWeights<wgpu::Buffer>,
) -> Result<wgpu::Buffer> {
    spec.validate()?;
    let dw_spec = spec.dw_spec();
    let expanded = match (&w.expand, spec.expand) {
        (Some((ew, ea)), true) => {
            let e = ctx.storage("expanded", dw_spec.lens().0);
            encode_gemm(ctx, encoder, &spec.expand_spec(), x, ew, ea, None, &e)?;
            Some(e)
        }
        (None, false) => None,
        _ => {
            return Err(Error::config(
                "mbconv.expand",
                "weights and spec disagree on expand",
            ))
        }
    };
    let mid = ctx.storage("depthwise", dw_spec.lens().3);
    encode_dwconv(
        ctx,
        encoder,
        &dw_spec,
        expanded.as_ref().unwrap_or(x),
        &w.dw.0,
        &w.dw.1,
        &mid,
    )?;
    let mid = match (spec.se_spec(), &w.se) {
        (Some(se), Some(sw)) => {
            let scaled = ctx.storage("se", se.len());
            encode_se(ctx, encoder, &se, &mid, sw, &scaled)?;
            scaled
        }
        (None, None) => mid,
        _ => {
            return Err(Error::config(
                "mbconv.se",
                "weights and spec disagree on SE",
            ))
        }
    };
    let y = ctx.storage("block output", spec.lens().1);
    let res = spec.residual().then_some(x);
    encode_gemm(
        ctx,
        encoder,
        &spec.project_spec(),
        &mid,
        &w.project.0,
        &w.project.1,
        res,
        &y,
    )?;
    Ok(y)
}
