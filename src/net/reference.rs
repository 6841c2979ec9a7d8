//! The all-exits pass on the CPU, composed of the ops' references.

use super::NetWeights;
use crate::error::{Error, Result};
use crate::ops::conv::{conv_reference, ConvSpec};
use crate::ops::gemm::{gemm_reference, GemmSpec};
use crate::ops::mbconv::{mbconv_reference, MbConvSpec};
use crate::ops::pool::pool_reference;
use crate::ops::Activation;
use crate::space::{Plan, StageCuts};

/// Every exit's logits for a batch.
#[derive(Clone, Debug, PartialEq)]
pub struct AllExits {
    /// `logits[s]`: exit s's logits, `[batch, classes]`.
    pub logits: Vec<Vec<f32>>,
    /// Multiply-accumulates performed per image.
    pub macs: u64,
}

/// The stem conv of `plan` for `batch` images.
pub(crate) fn stem_spec(plan: &Plan, batch: usize) -> ConvSpec {
    ConvSpec {
        batch,
        in_channels: 3,
        height: plan.resolution,
        width: plan.resolution,
        out_channels: plan.stem_cuts.width() as usize,
        kernel: 3,
        stride: 2,
        act: Activation::Hswish,
        out_offset: 0,
        out_total: plan.stem_cuts.width() as usize,
    }
}

/// The final expand (1×1 conv, BN, hswish).
pub(crate) fn final_spec(plan: &Plan, batch: usize) -> GemmSpec {
    let size = plan.final_size();
    masked(
        batch,
        &plan.final_cuts,
        plan.last_cuts(),
        size * size,
        Activation::Hswish,
    )
}

/// The feature mix (stage-causal linear, hswish).
pub(crate) fn mix_spec(plan: &Plan, batch: usize) -> GemmSpec {
    masked(
        batch,
        &plan.mix_cuts,
        &plan.final_cuts,
        1,
        Activation::Hswish,
    )
}

/// Exit s's classifier: dense over feature-mix channels `0..c_s`.
pub(crate) fn classifier_spec(plan: &Plan, batch: usize, s: usize) -> Result<GemmSpec> {
    let mut spec = GemmSpec::dense(
        batch,
        plan.classes,
        plan.mix_cuts.end(s) as usize,
        1,
        Activation::None,
    )?;
    spec.in_width = plan.mix_cuts.width() as usize;
    Ok(spec)
}

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

/// Runs the whole masked network once on `images` (`[batch, 3, R, R]`, already at the
/// plan's resolution) and returns every exit's logits.
pub fn forward_reference(
    plan: &Plan,
    w: &NetWeights<Vec<f32>>,
    images: &[f32],
    batch: usize,
) -> Result<AllExits> {
    w.check(plan)?;
    let r = plan.resolution;
    if images.len() != batch * 3 * r * r {
        return Err(Error::Shape {
            op: "network",
            what: "images",
            expected: batch * 3 * r * r,
            got: images.len(),
        });
    }
    let mut macs = 0usize;
    let stem = stem_spec(plan, batch);
    macs += stem.macs();
    let mut x = conv_reference(&stem, images, &w.stem.0, &w.stem.1)?;
    for (b, bw) in plan.blocks.iter().zip(&w.blocks) {
        let spec = MbConvSpec::from_plan(b, batch);
        macs += spec.macs();
        x = mbconv_reference(&spec, &x, bw)?;
    }
    let fe = final_spec(plan, batch);
    macs += fe.macs();
    let x = gemm_reference(&fe, &x, &w.final_expand.0, &w.final_expand.1, None)?;
    let size = plan.final_size();
    let pooled = pool_reference(batch * fe.rows, size * size, &x)?;
    let mix = mix_spec(plan, batch);
    macs += mix.macs();
    let features = gemm_reference(&mix, &pooled, &w.feature_mix.0, &w.feature_mix.1, None)?;
    let mut logits = Vec::with_capacity(plan.stages);
    for (s, (cw, cb)) in w.classifiers.iter().enumerate() {
        let spec = classifier_spec(plan, batch, s)?;
        macs += spec.macs();
        logits.push(gemm_reference(&spec, &features, cw, cb, None)?);
    }
    Ok(AllExits {
        logits,
        macs: (macs / batch.max(1)) as u64,
    })
}
