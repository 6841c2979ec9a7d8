//! Stage-masked GEMM for 1×1 convs and linear layers (`shaders/gemm.wgsl`, DESIGN §2).
//!
//! `y[b, o, p] = act(scale[o] · Σ_{k < c_s(in)} w[o, k] · x[b, k, p] + shift[o]) (+ res[b, o, p])`
//! for output row o of stage s: block-lower-triangular in stage blocks, never reading the
//! input channels of later stages. Rows of an inactive stage copy the residual
//! (`pass_through`) or are 0.

use bytemuck::{Pod, Zeroable};

use super::{active_mask, check_buffer, check_len, to_u32, Activation};
use crate::error::{Error, Result};
use crate::gpu::{GpuContext, Kernel};
use crate::space::StageCuts;

/// Up to this many output columns (samples of a linear layer, pixels of a 1×1 conv) the GEMM
/// runs as one workgroup per output (`gemv`) instead of 64 × 64 tiles.
pub const GEMV_MAX_COLS: u32 = 64;

/// Shapes and options of one masked GEMM.
#[derive(Clone, Debug)]
pub struct GemmSpec {
    /// Batch size B.
    pub batch: usize,
    /// Output channels O (rows of `w`).
    pub rows: usize,
    /// Input channels I (columns of `w`): the reduction reads channels `0..depth` of x.
    pub depth: usize,
    /// Channels per sample stored in x (≥ depth; more when reading a prefix of a wider tensor,
    /// as the exits do with the feature-mix vector).
    pub in_width: usize,
    /// Channels per sample of the output (and residual) tensor, ≥ rows: the GPU launcher writes
    /// rows `out_offset .. out_offset + rows` of a wider tensor (the stage-wise runtime's
    /// slices). The reference writes compact outputs and needs `out_width = rows`.
    pub out_width: usize,
    /// First output channel written (GPU launcher).
    pub out_offset: usize,
    /// Pixels per channel P = H·W (1 for a linear layer).
    pub cols: usize,
    /// Stage cuts of the output axis (width O).
    pub out_cuts: StageCuts,
    /// Stage cuts of the input axis (width I), same number of stages.
    pub in_cuts: StageCuts,
    /// Activation after the affine.
    pub act: Activation,
    /// Whether a residual `[B, O, P]` is added after the activation.
    pub residual: bool,
    /// Per stage: does it run? Inactive rows do no work.
    pub active: Vec<bool>,
    /// Inactive rows copy the residual (true) or are 0 (false).
    pub pass_through: bool,
}

impl GemmSpec {
    /// A dense, unmasked GEMM (S = 1, no residual).
    pub fn dense(
        batch: usize,
        rows: usize,
        depth: usize,
        cols: usize,
        act: Activation,
    ) -> Result<Self> {
        Ok(GemmSpec {
            batch,
            rows,
            depth,
            in_width: depth,
            out_width: rows,
            out_offset: 0,
            cols,
            out_cuts: StageCuts::single(to_u32("rows", rows)?)?,
            in_cuts: StageCuts::single(to_u32("depth", depth)?)?,
            act,
            residual: false,
            active: vec![true],
            pass_through: false,
        })
    }

    /// Checks the spec's internal consistency.
    pub fn validate(&self) -> Result<()> {
        let s = self.out_cuts.stages();
        if self.batch == 0 || self.cols == 0 {
            return Err(Error::config("gemm", "batch and cols must be positive"));
        }
        if self.out_cuts.width() as usize != self.rows {
            return Err(Error::config(
                "gemm.out_cuts",
                format!("width {} ≠ rows {}", self.out_cuts.width(), self.rows),
            ));
        }
        if self.in_cuts.width() as usize != self.depth {
            return Err(Error::config(
                "gemm.in_cuts",
                format!("width {} ≠ depth {}", self.in_cuts.width(), self.depth),
            ));
        }
        if self.in_cuts.stages() != s || self.active.len() != s {
            return Err(Error::config(
                "gemm.stages",
                format!(
                    "out {s}, in {}, active {} stages differ",
                    self.in_cuts.stages(),
                    self.active.len()
                ),
            ));
        }
        if self.in_width < self.depth {
            return Err(Error::config(
                "gemm.in_width",
                format!("{} < depth {}", self.in_width, self.depth),
            ));
        }
        if self.out_offset + self.rows > self.out_width {
            return Err(Error::config(
                "gemm.out_width",
                format!(
                    "rows {}..{} exceed {} channels",
                    self.out_offset,
                    self.out_offset + self.rows,
                    self.out_width
                ),
            ));
        }
        if self.pass_through && !self.residual {
            return Err(Error::config("gemm.pass_through", "needs a residual"));
        }
        Ok(())
    }

    /// Elements of x, w, affine and y.
    pub fn lens(&self) -> (usize, usize, usize, usize) {
        (
            self.batch * self.in_width * self.cols,
            self.rows * self.depth,
            2 * self.rows,
            self.batch * self.out_width * self.cols,
        )
    }

    /// Multiply-accumulates the masked GEMM performs (active stages only).
    pub fn macs(&self) -> usize {
        (0..self.out_cuts.stages())
            .filter(|&s| self.active[s])
            .map(|s| self.out_cuts.range(s).len() * self.in_cuts.end(s) as usize)
            .sum::<usize>()
            * self.batch
            * self.cols
    }
}

/// The reference: f64 accumulation, bounded reduction per stage, selection for gating.
pub fn gemm_reference(
    spec: &GemmSpec,
    x: &[f32],
    w: &[f32],
    affine: &[f32],
    res: Option<&[f32]>,
) -> Result<Vec<f32>> {
    spec.validate()?;
    if spec.out_width != spec.rows {
        return Err(Error::config(
            "gemm.out_width",
            "the reference writes compact outputs (out_width = rows)",
        ));
    }
    let (nx, nw, na, ny) = spec.lens();
    check_len("gemm", "x", x.len(), nx)?;
    check_len("gemm", "w", w.len(), nw)?;
    check_len("gemm", "affine", affine.len(), na)?;
    let res = match (spec.residual, res) {
        (true, Some(r)) => {
            check_len("gemm", "residual", r.len(), ny)?;
            Some(r)
        }
        (true, None) => {
            return Err(Error::config(
                "gemm.residual",
                "spec wants a residual, none given",
            ))
        }
        (false, _) => None,
    };
    let (o_n, i_n, x_n, p_n) = (spec.rows, spec.depth, spec.in_width, spec.cols);
    let mut y = vec![0f32; ny];
    for b in 0..spec.batch {
        for o in 0..o_n {
            let s = spec.out_cuts.stage_of(o);
            let lim = spec.in_cuts.end(s) as usize;
            for p in 0..p_n {
                let at = (b * o_n + o) * p_n + p;
                y[at] = if spec.active[s] {
                    let acc: f64 = (0..lim)
                        .map(|k| f64::from(w[o * i_n + k]) * f64::from(x[(b * x_n + k) * p_n + p]))
                        .sum();
                    let v = spec
                        .act
                        .apply(acc * f64::from(affine[o]) + f64::from(affine[o_n + o]));
                    (v + res.map_or(0.0, |r| f64::from(r[at]))) as f32
                } else if spec.pass_through {
                    res.map_or(0.0, |r| r[at])
                } else {
                    0.0
                };
            }
        }
    }
    Ok(y)
}

/// The parameter block of `gemm.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub(crate) struct Params {
    rows: u32,
    depth: u32,
    cols: u32,
    stages: u32,
    act: u32,
    has_res: u32,
    active_mask: u32,
    pass_through: u32,
    x_sk: u32,
    x_sp: u32,
    x_sb: u32,
    y_so: u32,
    y_sp: u32,
    y_sb: u32,
    y_off: u32,
    pad: u32,
    out_cuts: [[u32; 4]; 2],
    in_cuts: [[u32; 4]; 2],
}

/// Records the GEMM. `res` is required iff `spec.residual`. A linear layer (P = 1) runs with
/// the batch as the column axis.
#[allow(clippy::too_many_arguments)]
pub fn encode_gemm(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    spec: &GemmSpec,
    x: &wgpu::Buffer,
    w: &wgpu::Buffer,
    affine: &wgpu::Buffer,
    res: Option<&wgpu::Buffer>,
    y: &wgpu::Buffer,
) -> Result<()> {
    spec.validate()?;
    let (nx, nw, na, ny) = spec.lens();
    check_buffer("gemm", "x", x, nx)?;
    check_buffer("gemm", "w", w, nw)?;
    check_buffer("gemm", "affine", affine, na)?;
    check_buffer("gemm", "y", y, ny)?;
    let res = match (spec.residual, res) {
        (true, Some(r)) => {
            check_buffer("gemm", "residual", r, ny)?;
            r
        }
        (true, None) => {
            return Err(Error::config(
                "gemm.residual",
                "spec wants a residual, none given",
            ))
        }
        (false, _) => ctx.unused_binding(),
    };
    let max = ctx.adapter().limits.max_compute_workgroups_per_dimension;
    let (kernel, groups, params) = gemm_launch(spec, max, true)?;
    let uniform = ctx.uniform("gemm params", &params);
    ctx.dispatch(encoder, kernel, &[x, w, affine, res, y, &uniform], groups);
    Ok(())
}

/// The entry point, workgroup counts and parameter block of one GEMM, for at most
/// `max_groups` workgroups per dimension; `allow_gemv` lets few columns use `gemv`.
pub(crate) fn gemm_launch(
    spec: &GemmSpec,
    max_groups: u32,
    allow_gemv: bool,
) -> Result<(Kernel, [u32; 3], Params)> {
    spec.validate()?;
    let (nx, _, _, ny) = spec.lens();
    let (rows, depth, cols) = (
        to_u32("rows", spec.rows)?,
        to_u32("depth", spec.depth)?,
        to_u32("cols", spec.cols)?,
    );
    to_u32("x", nx)?;
    to_u32("y", ny)?;
    let batch = to_u32("batch", spec.batch)?;
    // Linear layers: columns are the samples; 1×1 convs: columns are pixels, batch on z.
    let width = to_u32("in_width", spec.in_width)?;
    let out_width = to_u32("out_width", spec.out_width)?;
    let offset = to_u32("out_offset", spec.out_offset)?;
    let (cols_eff, z, x_sk, x_sp, x_sb, y_so, y_sp, y_sb, y_off) = if spec.cols == 1 {
        (batch, 1, 1, width, 0, 1, out_width, 0, offset)
    } else {
        (
            cols,
            batch,
            cols,
            1,
            width * cols,
            cols,
            1,
            out_width * cols,
            offset * cols,
        )
    };
    let params = Params {
        rows,
        depth,
        cols: cols_eff,
        stages: spec.out_cuts.stages() as u32,
        act: spec.act.code(),
        has_res: u32::from(spec.residual),
        active_mask: active_mask(&spec.active),
        pass_through: u32::from(spec.pass_through),
        x_sk,
        x_sp,
        x_sb,
        y_so,
        y_sp,
        y_sb,
        y_off,
        pad: 0,
        out_cuts: spec.out_cuts.padded(),
        in_cuts: spec.in_cuts.padded(),
    };
    // Few columns: one workgroup per output beats a 64 × 64 tile that is mostly idle.
    let (kernel, groups) = if allow_gemv && cols_eff <= GEMV_MAX_COLS {
        (Kernel::Gemv, [rows, cols_eff, z])
    } else {
        (Kernel::Gemm, [cols_eff.div_ceil(64), rows.div_ceil(64), z])
    };
    if groups.iter().any(|&g| g > max_groups) {
        return Err(Error::config(
            "gemm",
            format!("dispatch {groups:?} exceeds {max_groups} workgroups per dimension"),
        ));
    }
    Ok((kernel, groups, params))
}

crate::ops::wgsl_mirror_tests! {
    params_mirror_the_wgsl: Params = crate::gpu::Kernel::Gemm.source(),
        [rows, depth, cols, stages, act, has_res, active_mask, pass_through, x_sk, x_sp, x_sb,
         y_so, y_sp, y_sb, y_off, pad, out_cuts, in_cuts];
}
