//! The stage-wise pass on the GPU (wgpu natively, WebGPU in the browser) with the kernels of
//! `shaders/`: each stage computes only its channel slices of every layer into full-width
//! activation buffers that keep the earlier stages' slices; after each stage only the exit's
//! confidence and class are read back. Weights are uploaded once per stage and pipelines are
//! compiled once per device. One image at a time.

use std::ops::Range;

use super::{check_input, Decision, ExitOutput};
use crate::error::{Error, Result};
use crate::gpu::GpuContext;
use crate::net::NetWeights;
use crate::ops::conv::{encode_conv, ConvSpec};
use crate::ops::dwconv::{encode_dwconv, DwConvSpec};
use crate::ops::gemm::{encode_gemm, GemmSpec};
use crate::ops::mbconv::DW_STRIDE;
use crate::ops::pool::encode_pool;
use crate::ops::se::encode_se_scale;
use crate::ops::softmax::encode_softmax;
use crate::ops::Activation;
use crate::space::{count, Plan, Preset, StageCuts, SubnetConfig};

/// A layer's weights for one stage: the stage's rows and their affine.
struct Layer {
    w: wgpu::Buffer,
    affine: wgpu::Buffer,
}

/// One block's weights for one stage (absent where the block is inactive for the stage).
struct BlockStage {
    expand: Option<Layer>,
    dw: Layer,
    se: Option<(Layer, Layer)>,
    project: Layer,
}

/// Everything stage s adds.
struct StageWeights {
    stem: Layer,
    blocks: Vec<Option<BlockStage>>,
    final_expand: Layer,
    mix: Layer,
    classifier: Layer,
}

/// Full-width activations, reused across images (slices of inactive stages stay 0).
struct Activations {
    image: wgpu::Buffer,
    stem: wgpu::Buffer,
    /// Per block: expanded, depthwise, SE-scaled, pooled, reduced, gate, output.
    blocks: Vec<[wgpu::Buffer; 7]>,
    final_expand: wgpu::Buffer,
    pooled: wgpu::Buffer,
    features: wgpu::Buffer,
    logits: Vec<wgpu::Buffer>,
    probs: wgpu::Buffer,
    confidence: wgpu::Buffer,
    class: wgpu::Buffer,
}

/// A subnet ready to classify stage by stage on the GPU.
pub struct StageWiseGpu {
    plan: Plan,
    cum_macs: Vec<u64>,
    stages: Vec<StageWeights>,
    act: Activations,
}

/// Rows `rows` over columns `0..lim` of a dense `[.., cols]` matrix, and the rows' affine.
fn slice_rows(
    ctx: &GpuContext,
    w: &[f32],
    affine: &[f32],
    cols: usize,
    rows: Range<usize>,
    lim: usize,
) -> Layer {
    let n = affine.len() / 2;
    let mut ws = Vec::with_capacity(rows.len() * lim);
    for o in rows.clone() {
        ws.extend_from_slice(&w[o * cols..][..lim]);
    }
    let mut a: Vec<f32> = affine[rows.clone()].to_vec();
    a.extend_from_slice(&affine[n + rows.start..n + rows.end]);
    Layer {
        w: ctx.upload_f32("stage weights", &ws),
        affine: ctx.upload_f32("stage affine", &a),
    }
}

fn single(width: usize) -> Result<StageCuts> {
    StageCuts::single(width as u32)
}

/// A one-stage GEMM computing `rows` output rows from input channels `0..depth` of a tensor
/// with `in_width` channels, written at `out_offset` of one with `out_width`.
#[allow(clippy::too_many_arguments)]
fn slice_gemm(
    rows: usize,
    depth: usize,
    in_width: usize,
    out_offset: usize,
    out_width: usize,
    cols: usize,
    act: Activation,
    residual: bool,
) -> Result<GemmSpec> {
    Ok(GemmSpec {
        batch: 1,
        rows,
        depth,
        in_width,
        out_width,
        out_offset,
        cols,
        out_cuts: single(rows)?,
        in_cuts: single(depth)?,
        act,
        residual,
        active: vec![true],
        pass_through: false,
    })
}

impl StageWiseGpu {
    /// Uploads `weights` of `config` in `preset` to `ctx`'s device.
    pub fn new(
        ctx: &GpuContext,
        preset: &Preset,
        config: &SubnetConfig,
        weights: &NetWeights<Vec<f32>>,
    ) -> Result<Self> {
        let plan = Plan::new(preset, config)?;
        weights.check(&plan)?;
        weights.check_finite()?;
        let cum_macs = count(preset, config)?.cum_macs;
        let mut stages = Vec::with_capacity(plan.stages);
        for s in 0..plan.stages {
            let stem = slice_rows(
                ctx,
                &weights.stem.0,
                &weights.stem.1,
                27,
                plan.stem_cuts.range(s),
                27,
            );
            let blocks = plan
                .blocks
                .iter()
                .zip(&weights.blocks)
                .map(|(b, bw)| {
                    if !b.active[s] {
                        return None;
                    }
                    let (cin, mid) = (b.in_cuts.width() as usize, b.mid_cuts.width() as usize);
                    let mr = b.mid_cuts.range(s);
                    let k = b.kernels[s];
                    let mut dw = Vec::with_capacity(mr.len() * k * k);
                    for c in mr.clone() {
                        dw.extend_from_slice(&bw.dw.0[c * DW_STRIDE..][..k * k]);
                    }
                    let mut da: Vec<f32> = bw.dw.1[mr.clone()].to_vec();
                    da.extend_from_slice(&bw.dw.1[mid + mr.start..mid + mr.end]);
                    let se = match (&bw.se, &b.se_cuts) {
                        (Some(se), Some(red)) => Some((
                            slice_rows(
                                ctx,
                                &se.reduce_w,
                                &se.reduce_affine,
                                mid,
                                red.range(s),
                                b.mid_cuts.end(s) as usize,
                            ),
                            slice_rows(
                                ctx,
                                &se.expand_w,
                                &se.expand_affine,
                                red.width() as usize,
                                mr.clone(),
                                red.end(s) as usize,
                            ),
                        )),
                        _ => None,
                    };
                    Some(BlockStage {
                        expand: bw.expand.as_ref().map(|(w, a)| {
                            slice_rows(ctx, w, a, cin, mr.clone(), b.in_cuts.end(s) as usize)
                        }),
                        dw: Layer {
                            w: ctx.upload_f32("dw", &dw),
                            affine: ctx.upload_f32("dw affine", &da),
                        },
                        se,
                        project: slice_rows(
                            ctx,
                            &bw.project.0,
                            &bw.project.1,
                            mid,
                            b.out_cuts.range(s),
                            b.mid_cuts.end(s) as usize,
                        ),
                    })
                })
                .collect();
            let last = plan.last_cuts();
            let fe = &weights.final_expand;
            let mix = &weights.feature_mix;
            let (cw, cb) = &weights.classifiers[s];
            stages.push(StageWeights {
                stem,
                blocks,
                final_expand: slice_rows(
                    ctx,
                    &fe.0,
                    &fe.1,
                    last.width() as usize,
                    plan.final_cuts.range(s),
                    last.end(s) as usize,
                ),
                mix: slice_rows(
                    ctx,
                    &mix.0,
                    &mix.1,
                    plan.final_cuts.width() as usize,
                    plan.mix_cuts.range(s),
                    plan.final_cuts.end(s) as usize,
                ),
                classifier: Layer {
                    w: ctx.upload_f32("classifier", cw),
                    affine: ctx.upload_f32("classifier bias", cb),
                },
            });
        }
        let r = plan.resolution;
        let s0 = plan.stem_size();
        let fs = plan.final_size();
        let act = Activations {
            image: ctx.storage("image", 3 * r * r),
            stem: ctx.storage("stem", plan.stem_cuts.width() as usize * s0 * s0),
            blocks: plan
                .blocks
                .iter()
                .map(|b| {
                    let mid = b.mid_cuts.width() as usize;
                    let red = b.se_cuts.as_ref().map_or(1, |c| c.width() as usize);
                    let o = b.out_size();
                    [
                        ctx.storage("expanded", mid * b.size * b.size),
                        ctx.storage("depthwise", mid * o * o),
                        ctx.storage("se scaled", mid * o * o),
                        ctx.storage("se pooled", mid),
                        ctx.storage("se reduced", red),
                        ctx.storage("se gate", mid),
                        ctx.storage("block output", b.out_cuts.width() as usize * o * o),
                    ]
                })
                .collect(),
            final_expand: ctx.storage("final expand", plan.final_cuts.width() as usize * fs * fs),
            pooled: ctx.storage("pooled", plan.final_cuts.width() as usize),
            features: ctx.storage("features", plan.mix_cuts.width() as usize),
            logits: (0..plan.stages)
                .map(|_| ctx.storage("logits", plan.classes))
                .collect(),
            probs: ctx.storage("probs", plan.classes),
            confidence: ctx.storage("confidence", 1),
            class: ctx.storage("class", 1),
        };
        Ok(StageWiseGpu {
            plan,
            cum_macs,
            stages,
            act,
        })
    }

    /// The layer plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Records stage `s`: its slices of every layer, its exit and the softmax.
    fn encode_stage(
        &self,
        ctx: &GpuContext,
        enc: &mut wgpu::CommandEncoder,
        s: usize,
    ) -> Result<()> {
        let (p, w, a) = (&self.plan, &self.stages[s], &self.act);
        let c0 = p.stem_cuts.width() as usize;
        let sr = p.stem_cuts.range(s);
        let stem = ConvSpec {
            batch: 1,
            in_channels: 3,
            height: p.resolution,
            width: p.resolution,
            out_channels: sr.len(),
            kernel: 3,
            stride: 2,
            act: Activation::Hswish,
            out_offset: sr.start,
            out_total: c0,
        };
        encode_conv(
            ctx,
            enc,
            &stem,
            &a.image,
            &w.stem.w,
            &w.stem.affine,
            &a.stem,
        )?;
        let mut input = &a.stem;
        for ((b, bw), bufs) in p.blocks.iter().zip(&w.blocks).zip(&a.blocks) {
            let [expanded, mid, scaled, pooled, reduced, gate, out] = bufs;
            let (cin, cmid, cout) = (
                b.in_cuts.width() as usize,
                b.mid_cuts.width() as usize,
                b.out_cuts.width() as usize,
            );
            let (size, osz) = (b.size, b.out_size());
            let Some(bw) = bw else {
                // Inactive for stage s: the output slice is the input slice.
                let r = b.out_cuts.range(s);
                let plane = (osz * osz * 4) as u64;
                enc.copy_buffer_to_buffer(
                    input,
                    r.start as u64 * plane,
                    out,
                    r.start as u64 * plane,
                    r.len() as u64 * plane,
                );
                input = out;
                continue;
            };
            let mr = b.mid_cuts.range(s);
            let dw_in = match &bw.expand {
                Some(e) => {
                    let spec = slice_gemm(
                        mr.len(),
                        b.in_cuts.end(s) as usize,
                        cin,
                        mr.start,
                        cmid,
                        size * size,
                        b.act,
                        false,
                    )?;
                    encode_gemm(ctx, enc, &spec, input, &e.w, &e.affine, None, expanded)?;
                    expanded
                }
                None => input,
            };
            let k = b.kernels[s];
            let dw = DwConvSpec {
                batch: 1,
                channels: mr.len(),
                height: size,
                width: size,
                stride: b.stride,
                cuts: single(mr.len())?,
                kernels: vec![k],
                w_stride: k * k,
                act: b.act,
                active: vec![true],
                channel_offset: mr.start,
                channel_total: cmid,
            };
            encode_dwconv(ctx, enc, &dw, dw_in, &bw.dw.w, &bw.dw.affine, mid)?;
            let project_in = match (&bw.se, &b.se_cuts) {
                (Some((reduce, expand)), Some(red)) => {
                    let cred = red.width() as usize;
                    let rr = red.range(s);
                    encode_pool(ctx, enc, mr.start, mr.len(), osz * osz, mid, pooled)?;
                    let rs = slice_gemm(
                        rr.len(),
                        b.mid_cuts.end(s) as usize,
                        cmid,
                        rr.start,
                        cred,
                        1,
                        Activation::Relu,
                        false,
                    )?;
                    encode_gemm(
                        ctx,
                        enc,
                        &rs,
                        pooled,
                        &reduce.w,
                        &reduce.affine,
                        None,
                        reduced,
                    )?;
                    let es = slice_gemm(
                        mr.len(),
                        red.end(s) as usize,
                        cred,
                        mr.start,
                        cmid,
                        1,
                        Activation::Hsigmoid,
                        false,
                    )?;
                    encode_gemm(
                        ctx,
                        enc,
                        &es,
                        reduced,
                        &expand.w,
                        &expand.affine,
                        None,
                        gate,
                    )?;
                    encode_se_scale(
                        ctx,
                        enc,
                        mr.start,
                        mr.len() * osz * osz,
                        osz * osz,
                        mid,
                        gate,
                        scaled,
                    )?;
                    scaled
                }
                _ => mid,
            };
            let or = b.out_cuts.range(s);
            let residual = b.residual();
            let ps = slice_gemm(
                or.len(),
                b.mid_cuts.end(s) as usize,
                cmid,
                or.start,
                cout,
                osz * osz,
                Activation::None,
                residual,
            )?;
            encode_gemm(
                ctx,
                enc,
                &ps,
                project_in,
                &bw.project.w,
                &bw.project.affine,
                residual.then_some(input),
                out,
            )?;
            input = out;
        }
        let fs = p.final_size();
        let last = p.last_cuts();
        let (cf, cm) = (p.final_cuts.width() as usize, p.mix_cuts.width() as usize);
        let fr = p.final_cuts.range(s);
        let fe = slice_gemm(
            fr.len(),
            last.end(s) as usize,
            last.width() as usize,
            fr.start,
            cf,
            fs * fs,
            Activation::Hswish,
            false,
        )?;
        encode_gemm(
            ctx,
            enc,
            &fe,
            input,
            &w.final_expand.w,
            &w.final_expand.affine,
            None,
            &a.final_expand,
        )?;
        encode_pool(
            ctx,
            enc,
            fr.start,
            fr.len(),
            fs * fs,
            &a.final_expand,
            &a.pooled,
        )?;
        let xr = p.mix_cuts.range(s);
        let mix = slice_gemm(
            xr.len(),
            p.final_cuts.end(s) as usize,
            cf,
            xr.start,
            cm,
            1,
            Activation::Hswish,
            false,
        )?;
        encode_gemm(
            ctx,
            enc,
            &mix,
            &a.pooled,
            &w.mix.w,
            &w.mix.affine,
            None,
            &a.features,
        )?;
        let head = slice_gemm(
            p.classes,
            p.mix_cuts.end(s) as usize,
            cm,
            0,
            p.classes,
            1,
            Activation::None,
            false,
        )?;
        encode_gemm(
            ctx,
            enc,
            &head,
            &a.features,
            &w.classifier.w,
            &w.classifier.affine,
            None,
            &a.logits[s],
        )?;
        encode_softmax(
            ctx,
            enc,
            1,
            p.classes,
            &a.logits[s],
            &a.probs,
            &a.confidence,
            &a.class,
        )
    }

    /// Classifies one image (`[3, R, R]` at the plan's resolution): runs stage after stage,
    /// reading back only the exit's confidence and class, and leaves at the first exit whose
    /// confidence exceeds its threshold (always at the last).
    pub async fn classify(
        &self,
        ctx: &GpuContext,
        image: &[f32],
        thresholds: &[f32],
    ) -> Result<Decision> {
        let stages = self.plan.stages;
        check_input(image, thresholds, &self.plan)?;
        ctx.queue
            .write_buffer(&self.act.image, 0, bytemuck::cast_slice(image));
        let mut per_exit = Vec::with_capacity(stages);
        for s in 0..stages {
            let mut enc = ctx.encoder();
            self.encode_stage(ctx, &mut enc, s)?;
            ctx.submit(enc);
            let confidence = ctx.read_f32(&self.act.confidence).await?[0];
            let class_index = ctx.read_u32(&self.act.class).await?[0] as usize;
            per_exit.push(ExitOutput {
                confidence,
                class_index,
            });
            let threshold = thresholds.get(s).copied().unwrap_or(f32::NEG_INFINITY);
            if confidence > threshold || s + 1 == stages {
                let logits = ctx.read_f32(&self.act.logits[s]).await?;
                return Ok(Decision {
                    class_index,
                    confidence,
                    exit: s + 1,
                    macs: self.cum_macs[s],
                    per_exit,
                    logits,
                });
            }
        }
        Err(Error::config("stages", "a subnet has at least one stage"))
    }
}
