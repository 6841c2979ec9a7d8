//! The all-exits pass as one walk of the layer list (DESIGN §2), over a backend that runs
//! whole-width ops: the f64-accumulating references on the host, or the kernels on the GPU.

use super::NetWeights;
use crate::error::{Error, Result};
use crate::ops::conv::ConvSpec;
use crate::ops::dwconv::DwConvSpec;
use crate::ops::gemm::GemmSpec;
use crate::ops::mbconv::MbConvSpec;
use crate::ops::Activation;
use crate::space::{LayerKind, Plan, StageCuts};

/// The whole-width ops the all-exits pass is composed of.
pub(crate) trait Ops {
    /// A weight or an activation.
    type Buf;
    /// The stem conv.
    fn conv(
        &mut self,
        spec: &ConvSpec,
        x: &Self::Buf,
        w: &Self::Buf,
        a: &Self::Buf,
    ) -> Result<Self::Buf>;
    /// A masked 1×1 conv or linear layer, plus `res` when given.
    fn gemm(
        &mut self,
        spec: &GemmSpec,
        x: &Self::Buf,
        w: &Self::Buf,
        a: &Self::Buf,
        res: Option<&Self::Buf>,
    ) -> Result<Self::Buf>;
    /// A depthwise conv.
    fn dwconv(
        &mut self,
        spec: &DwConvSpec,
        x: &Self::Buf,
        w: &Self::Buf,
        a: &Self::Buf,
    ) -> Result<Self::Buf>;
    /// The mean of each of `planes` planes of `size` values.
    fn pool(&mut self, planes: usize, size: usize, x: &Self::Buf) -> Result<Self::Buf>;
    /// Each plane of `size` values of x times its gate.
    fn scale(&mut self, size: usize, x: &Self::Buf, gate: &Self::Buf) -> Result<Self::Buf>;
}

/// The stem conv of `plan` for `batch` images.
fn stem_spec(plan: &Plan, batch: usize) -> ConvSpec {
    let width = plan.stem_cuts.width() as usize;
    ConvSpec {
        batch,
        in_channels: 3,
        height: plan.resolution,
        width: plan.resolution,
        out_channels: width,
        kernel: 3,
        stride: 2,
        act: Activation::Hswish,
        out_offset: 0,
        out_total: width,
    }
}

/// A stage-causal layer over whole tensors (the final expand, the feature mix).
fn masked(
    batch: usize,
    out: &StageCuts,
    inp: &StageCuts,
    cols: usize,
    act: Activation,
) -> GemmSpec {
    GemmSpec {
        batch,
        rows: out.width() as usize,
        depth: inp.width() as usize,
        in_width: inp.width() as usize,
        out_width: out.width() as usize,
        out_offset: 0,
        cols,
        out_cuts: out.clone(),
        in_cuts: inp.clone(),
        act,
        residual: false,
        active: vec![true; out.stages()],
        pass_through: false,
    }
}

/// Runs the whole masked network once on `images` (`[batch, 3, R, R]`) with `ops`: every exit's
/// logits (`[batch, classes]` each) and the multiply-accumulates performed per image.
pub(crate) fn all_exits<O: Ops>(
    ops: &mut O,
    plan: &Plan,
    w: &NetWeights<O::Buf>,
    images: &O::Buf,
    batch: usize,
) -> Result<(Vec<O::Buf>, u64)> {
    let broken = || Error::config("network", "the layer list is out of order");
    let mut macs = 0usize;
    // The current block's input (the stem's output before the first block), its middle
    // activation, and the SE's reduced channels.
    let (mut x, mut mid, mut reduced) = (None, None, None);
    let mut features = None;
    let mut logits = Vec::with_capacity(plan.stages);
    for (layer, (wt, af)) in plan.layers().iter().zip(w.params()) {
        let block = layer
            .block
            .map(|i| MbConvSpec::from_plan(&plan.blocks[i], batch));
        match (&layer.kind, &block) {
            (LayerKind::Stem, _) => {
                let spec = stem_spec(plan, batch);
                macs += spec.macs();
                x = Some(ops.conv(&spec, images, wt, af)?);
            }
            (LayerKind::Expand, Some(m)) => {
                let spec = m.expand_spec();
                macs += spec.macs();
                mid = Some(ops.gemm(&spec, x.as_ref().ok_or_else(broken)?, wt, af, None)?);
            }
            (LayerKind::Depthwise { .. }, Some(m)) => {
                m.validate()?;
                let spec = m.dw_spec();
                macs += spec.macs();
                let from = if m.expand { mid.as_ref() } else { x.as_ref() };
                mid = Some(ops.dwconv(&spec, from.ok_or_else(broken)?, wt, af)?);
            }
            (LayerKind::SeReduce, Some(m)) => {
                let se = m.se_spec().ok_or_else(broken)?;
                se.validate()?;
                let spec = se.reduce();
                macs += spec.macs();
                let planes = ops.pool(
                    batch * se.channels,
                    se.size,
                    mid.as_ref().ok_or_else(broken)?,
                )?;
                reduced = Some(ops.gemm(&spec, &planes, wt, af, None)?);
            }
            (LayerKind::SeExpand, Some(m)) => {
                let se = m.se_spec().ok_or_else(broken)?;
                let spec = se.expand();
                macs += spec.macs();
                let gate = ops.gemm(&spec, reduced.as_ref().ok_or_else(broken)?, wt, af, None)?;
                mid = Some(ops.scale(se.size, mid.as_ref().ok_or_else(broken)?, &gate)?);
            }
            (LayerKind::Project { .. }, Some(m)) => {
                let spec = m.project_spec();
                macs += spec.macs();
                let input = x.as_ref().ok_or_else(broken)?;
                let res = m.residual().then_some(input);
                let out = ops.gemm(&spec, mid.as_ref().ok_or_else(broken)?, wt, af, res)?;
                x = Some(out);
            }
            (LayerKind::FinalExpand, _) => {
                let size = plan.final_size() * plan.final_size();
                let spec = masked(batch, &plan.final_cuts, plan.last_cuts(), size, layer.act);
                macs += spec.macs();
                let expanded = ops.gemm(&spec, x.as_ref().ok_or_else(broken)?, wt, af, None)?;
                x = Some(ops.pool(batch * spec.rows, size, &expanded)?);
            }
            (LayerKind::FeatureMix, _) => {
                let spec = masked(batch, &plan.mix_cuts, &plan.final_cuts, 1, layer.act);
                macs += spec.macs();
                features = Some(ops.gemm(&spec, x.as_ref().ok_or_else(broken)?, wt, af, None)?);
            }
            (LayerKind::Classifier { stage }, _) => {
                // Dense over feature-mix channels 0..c_s.
                let mut spec = GemmSpec::dense(
                    batch,
                    plan.classes,
                    plan.mix_cuts.end(*stage) as usize,
                    1,
                    layer.act,
                )?;
                spec.in_width = plan.mix_cuts.width() as usize;
                macs += spec.macs();
                let f = features.as_ref().ok_or_else(broken)?;
                logits.push(ops.gemm(&spec, f, wt, af, None)?);
            }
            _ => return Err(broken()),
        }
    }
    Ok((logits, (macs / batch.max(1)) as u64))
}
