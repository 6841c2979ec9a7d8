//! The all-exits pass on the GPU: the same composition as the reference, recorded into one
//! command buffer.

use super::reference::{classifier_spec, final_spec, mix_spec, stem_spec};
use super::NetWeights;
use crate::error::{Error, Result};
use crate::gpu::GpuContext;
use crate::ops::conv::encode_conv;
use crate::ops::gemm::encode_gemm;
use crate::ops::mbconv::{encode_mbconv, MbConvSpec};
use crate::ops::pool::encode_pool;
use crate::ops::Planes;
use crate::space::Plan;

/// Runs the whole masked network once on the GPU and returns every exit's logits
/// (`[batch, classes]` each). `images` is `[batch, 3, R, R]` at the plan's resolution.
pub async fn forward_gpu(
    ctx: &GpuContext,
    plan: &Plan,
    w: &NetWeights<wgpu::Buffer>,
    images: &wgpu::Buffer,
    batch: usize,
) -> Result<Vec<Vec<f32>>> {
    if w.blocks.len() != plan.blocks.len() || w.classifiers.len() != plan.stages {
        return Err(Error::config("net weights", "do not match the plan"));
    }
    let mut enc = ctx.encoder();
    let stem = stem_spec(plan, batch);
    let mut x = ctx.storage("stem", stem.lens().3);
    encode_conv(ctx, &mut enc, &stem, images, &w.stem.0, &w.stem.1, &x)?;
    for (b, bw) in plan.blocks.iter().zip(&w.blocks) {
        x = encode_mbconv(ctx, &mut enc, &MbConvSpec::from_plan(b, batch), &x, bw)?;
    }
    let fe = final_spec(plan, batch);
    let expanded = ctx.storage("final expand", fe.lens().3);
    encode_gemm(
        ctx,
        &mut enc,
        &fe,
        &x,
        &w.final_expand.0,
        &w.final_expand.1,
        None,
        &expanded,
    )?;
    let size = plan.final_size();
    let pooled = ctx.storage("pooled", batch * fe.rows);
    encode_pool(
        ctx,
        &mut enc,
        Planes::all(batch * fe.rows),
        size * size,
        &expanded,
        &pooled,
    )?;
    let mix = mix_spec(plan, batch);
    let features = ctx.storage("features", mix.lens().3);
    encode_gemm(
        ctx,
        &mut enc,
        &mix,
        &pooled,
        &w.feature_mix.0,
        &w.feature_mix.1,
        None,
        &features,
    )?;
    let mut outs = Vec::with_capacity(plan.stages);
    for (s, (cw, cb)) in w.classifiers.iter().enumerate() {
        let spec = classifier_spec(plan, batch, s)?;
        let logits = ctx.storage("logits", spec.lens().3);
        encode_gemm(ctx, &mut enc, &spec, &features, cw, cb, None, &logits)?;
        outs.push(logits);
    }
    ctx.submit(enc);
    let mut logits = Vec::with_capacity(outs.len());
    for buffer in &outs {
        logits.push(ctx.read_f32(buffer).await?);
    }
    Ok(logits)
}
