//! The stage-wise pass on the GPU (wgpu natively, WebGPU in the browser) with the kernels of
//! `shaders/`: each stage computes only its channel slices of every layer into full-width
//! activation buffers that keep the earlier stages' slices; after each stage only the exit's
//! confidence and class are read back. Weights are uploaded once per stage and pipelines are
//! compiled once per device. A batch runs each stage on the images still inside, each image
//! leaving at its own exit: after a stage the staying images' activations are packed to the
//! front of the buffers, so later stages compute nothing for the images that left.

use std::sync::Mutex;

use super::{check_input, Decision, ExitOutput};
use crate::error::{Error, Result};
use crate::gpu::GpuContext;
use crate::net::NetWeights;
use crate::ops::conv::{encode_conv, ConvSpec};
use crate::ops::dwconv::{encode_dwconv, DwConvSpec};
use crate::ops::gemm::{encode_gemm, GemmSpec};
use crate::ops::pool::encode_pool;
use crate::ops::se::encode_se_scale;
use crate::ops::softmax::encode_softmax;
use crate::ops::{Activation, Planes};
use crate::space::{count, LayerKind, Piece, Plan, Preset, StageCuts, SubnetConfig};

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

/// Full-width activations of up to `capacity` images, reused across images (slices of
/// inactive stages stay 0).
struct Activations {
    capacity: usize,
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

impl Activations {
    fn new(ctx: &GpuContext, plan: &Plan, capacity: usize) -> Self {
        let storage = |label: &str, per_image: usize| ctx.storage(label, per_image * capacity);
        let r = plan.resolution;
        let s0 = plan.stem_size();
        let fs = plan.final_size();
        Activations {
            capacity,
            image: storage("image", 3 * r * r),
            stem: storage("stem", plan.stem_cuts.width() as usize * s0 * s0),
            blocks: plan
                .blocks
                .iter()
                .map(|b| {
                    let mid = b.mid_cuts.width() as usize;
                    let red = b.se_cuts.as_ref().map_or(1, |c| c.width() as usize);
                    let o = b.out_size();
                    [
                        storage("expanded", mid * b.size * b.size),
                        storage("depthwise", mid * o * o),
                        storage("se scaled", mid * o * o),
                        storage("se pooled", mid),
                        storage("se reduced", red),
                        storage("se gate", mid),
                        storage("block output", b.out_cuts.width() as usize * o * o),
                    ]
                })
                .collect(),
            final_expand: storage("final expand", plan.final_cuts.width() as usize * fs * fs),
            pooled: storage("pooled", plan.final_cuts.width() as usize),
            features: storage("features", plan.mix_cuts.width() as usize),
            logits: (0..plan.stages)
                .map(|_| storage("logits", plan.classes))
                .collect(),
            probs: storage("probs", plan.classes),
            confidence: storage("confidence", 1),
            class: storage("class", 1),
        }
    }

    /// The buffers later stages read (every per-image buffer but the exits' outputs).
    fn state(&self) -> impl Iterator<Item = &wgpu::Buffer> {
        [&self.image, &self.stem]
            .into_iter()
            .chain(self.blocks.iter().flatten())
            .chain([&self.final_expand, &self.pooled, &self.features])
    }

    /// Records moving image `from[i]`'s activations to slot `i`, for increasing `from`, through
    /// `scratch` (a copy may not stay within one buffer).
    fn pack(&self, enc: &mut wgpu::CommandEncoder, from: &[usize], scratch: &wgpu::Buffer) {
        for buffer in self.state() {
            let per_image = buffer.size() / self.capacity as u64;
            let mut i = 0;
            while i < from.len() {
                // A run of consecutive images moves as one copy.
                let mut j = i + 1;
                while j < from.len() && from[j] == from[j - 1] + 1 {
                    j += 1;
                }
                enc.copy_buffer_to_buffer(
                    buffer,
                    from[i] as u64 * per_image,
                    scratch,
                    i as u64 * per_image,
                    (j - i) as u64 * per_image,
                );
                i = j;
            }
            enc.copy_buffer_to_buffer(scratch, 0, buffer, 0, from.len() as u64 * per_image);
        }
    }
}

/// A subnet ready to classify stage by stage on the GPU.
///
/// Calls may overlap (`classify` is async and borrows `&self`): each call takes its own
/// activation buffers from a pool and returns them when done, so concurrent calls never share
/// cached stage activations.
pub struct StageWiseGpu {
    plan: Plan,
    cum_macs: Vec<u64>,
    stages: Vec<StageWeights>,
    /// Idle single-image activations; a call that finds none creates its own.
    pool: Mutex<Vec<Activations>>,
    /// Bytes of the largest activation buffer per image.
    largest_buffer: u64,
}

/// A stage piece of a layer on the device: its weight (BN scale folded) and an affine of
/// scale 1 and the piece's bias (0 without one).
fn upload(ctx: &GpuContext, piece: Piece) -> Layer {
    let rows = piece.shape.first().copied().unwrap_or(0);
    let mut affine = vec![1.0; rows];
    affine.extend(piece.bias.unwrap_or_else(|| vec![0.0; rows]));
    Layer {
        w: ctx.upload_f32(&piece.name, &piece.weight),
        affine: ctx.upload_f32(&piece.name, &affine),
    }
}

/// One block's pieces for one stage while they are being gathered.
#[derive(Default)]
struct BlockParts {
    expand: Option<Layer>,
    dw: Option<Layer>,
    se_reduce: Option<Layer>,
    se_expand: Option<Layer>,
    project: Option<Layer>,
}

/// One stage's pieces while they are being gathered from the layer list.
#[derive(Default)]
struct StageParts {
    stem: Option<Layer>,
    blocks: Vec<BlockParts>,
    final_expand: Option<Layer>,
    mix: Option<Layer>,
    classifier: Option<Layer>,
}

impl StageParts {
    /// The stage's weights, every piece the plan needs present.
    fn finish(self) -> Result<StageWeights> {
        let missing = |what: &str| Error::config("weights", format!("no stage piece for {what}"));
        let blocks = self
            .blocks
            .into_iter()
            .map(|b| {
                // A block the stage skips has no piece at all.
                let Some(dw) = b.dw else {
                    return Ok(None);
                };
                Ok(Some(BlockStage {
                    expand: b.expand,
                    dw,
                    se: b.se_reduce.zip(b.se_expand),
                    project: b.project.ok_or_else(|| missing("a project"))?,
                }))
            })
            .collect::<Result<_>>()?;
        Ok(StageWeights {
            stem: self.stem.ok_or_else(|| missing("the stem"))?,
            blocks,
            final_expand: self
                .final_expand
                .ok_or_else(|| missing("the final expand"))?,
            mix: self.mix.ok_or_else(|| missing("the feature mix"))?,
            classifier: self.classifier.ok_or_else(|| missing("a classifier"))?,
        })
    }
}

fn single(width: usize) -> Result<StageCuts> {
    StageCuts::single(width as u32)
}

/// A one-stage GEMM over `batch` images computing `rows` output rows from input channels
/// `0..depth` of a tensor with `in_width` channels, written at `out_offset` of one with
/// `out_width`.
#[allow(clippy::too_many_arguments)]
fn slice_gemm(
    batch: usize,
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
        batch,
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
        let mut parts: Vec<StageParts> = (0..plan.stages)
            .map(|_| StageParts {
                blocks: plan.blocks.iter().map(|_| BlockParts::default()).collect(),
                ..StageParts::default()
            })
            .collect();
        for (layer, (w, a)) in plan.layers().iter().zip(weights.params()) {
            for s in layer.stored_stages() {
                let piece = Some(upload(ctx, layer.cut(s, w, a)));
                let stage = &mut parts[s];
                let block = layer.block.and_then(|i| stage.blocks.get_mut(i));
                match (&layer.kind, block) {
                    (LayerKind::Stem, _) => stage.stem = piece,
                    (LayerKind::FinalExpand, _) => stage.final_expand = piece,
                    (LayerKind::FeatureMix, _) => stage.mix = piece,
                    (LayerKind::Classifier { .. }, _) => stage.classifier = piece,
                    (LayerKind::Expand, Some(b)) => b.expand = piece,
                    (LayerKind::Depthwise { .. }, Some(b)) => b.dw = piece,
                    (LayerKind::SeReduce, Some(b)) => b.se_reduce = piece,
                    (LayerKind::SeExpand, Some(b)) => b.se_expand = piece,
                    (LayerKind::Project { .. }, Some(b)) => b.project = piece,
                    _ => return Err(Error::config(layer.name.clone(), "not in a block")),
                }
            }
        }
        let stages = parts
            .into_iter()
            .map(StageParts::finish)
            .collect::<Result<Vec<_>>>()?;
        let largest = plan.largest_activation_floats() * 4;
        let limit = ctx.adapter().limits.max_storage_buffer_binding_size;
        if largest > limit {
            return Err(Error::Device(format!(
                "this net's largest activation ({} MiB per image at {} px) exceeds the device's \
                 storage buffer limit ({} MiB)",
                largest >> 20,
                plan.resolution,
                limit >> 20
            )));
        }
        let act = Activations::new(ctx, &plan, 1);
        let largest_buffer = act.state().map(|b| b.size()).max().unwrap_or(1);
        Ok(StageWiseGpu {
            plan,
            cum_macs,
            stages,
            pool: Mutex::new(vec![act]),
            largest_buffer,
        })
    }

    /// The layer plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Records stage `s` for the first `n` images of `a`: its slices of every layer, its exit
    /// and the softmax.
    fn encode_stage(
        &self,
        ctx: &GpuContext,
        enc: &mut wgpu::CommandEncoder,
        s: usize,
        a: &Activations,
        n: usize,
    ) -> Result<()> {
        let (p, w) = (&self.plan, &self.stages[s]);
        let c0 = p.stem_cuts.width() as usize;
        let sr = p.stem_cuts.range(s);
        let stem = ConvSpec {
            batch: n,
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
                for i in 0..n as u64 {
                    enc.copy_buffer_to_buffer(
                        input,
                        (i * cin as u64 + r.start as u64) * plane,
                        out,
                        (i * cout as u64 + r.start as u64) * plane,
                        r.len() as u64 * plane,
                    );
                }
                input = out;
                continue;
            };
            let mr = b.mid_cuts.range(s);
            let dw_in = match &bw.expand {
                Some(e) => {
                    let spec = slice_gemm(
                        n,
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
                batch: n,
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
                    let planes = Planes {
                        batch: n,
                        offset: mr.start,
                        len: mr.len(),
                        total: cmid,
                    };
                    encode_pool(ctx, enc, planes, osz * osz, mid, pooled)?;
                    let rs = slice_gemm(
                        n,
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
                        n,
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
                    encode_se_scale(ctx, enc, planes, osz * osz, mid, gate, scaled)?;
                    scaled
                }
                _ => mid,
            };
            let or = b.out_cuts.range(s);
            let residual = b.residual();
            let ps = slice_gemm(
                n,
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
            n,
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
        let planes = Planes {
            batch: n,
            offset: fr.start,
            len: fr.len(),
            total: cf,
        };
        encode_pool(ctx, enc, planes, fs * fs, &a.final_expand, &a.pooled)?;
        let xr = p.mix_cuts.range(s);
        let mix = slice_gemm(
            n,
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
            n,
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
            n,
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
        check_input(image, thresholds, &self.plan)?;
        // Never hold the lock across an await: take a set of buffers, give it back after.
        let idle = self.pool.lock().map_or(None, |mut p| p.pop());
        let act = idle.unwrap_or_else(|| Activations::new(ctx, &self.plan, 1));
        let result = self.run(ctx, &act, &[image], thresholds).await;
        if let Ok(mut p) = self.pool.lock() {
            p.push(act);
        }
        result?
            .pop()
            .ok_or_else(|| Error::config("stages", "a subnet has at least one stage"))
    }

    /// Classifies a batch of images (each `[3, R, R]`), each leaving at its own exit: stage s
    /// runs on the images no earlier exit was confident about. Same decisions as [`classify`]
    /// one image at a time.
    ///
    /// [`classify`]: Self::classify
    pub async fn classify_batch(
        &self,
        ctx: &GpuContext,
        images: &[Vec<f32>],
        thresholds: &[f32],
    ) -> Result<Vec<Decision>> {
        for image in images {
            check_input(image, thresholds, &self.plan)?;
        }
        // Images per pass: at most GPU_MAX_BATCH, and every activation buffer within the
        // device's largest storage binding.
        let limit = ctx.adapter().limits.max_storage_buffer_binding_size;
        let per_image = self.largest_buffer;
        let pass = usize::try_from(limit / per_image.max(1))
            .unwrap_or(usize::MAX)
            .clamp(1, GPU_MAX_BATCH);
        let mut decisions = Vec::with_capacity(images.len());
        for chunk in images.chunks(pass) {
            let act = Activations::new(ctx, &self.plan, chunk.len());
            let chunk: Vec<&[f32]> = chunk.iter().map(Vec::as_slice).collect();
            decisions.extend(self.run(ctx, &act, &chunk, thresholds).await?);
        }
        Ok(decisions)
    }

    /// Runs checked `images` (at most `act`'s capacity) stage by stage, each leaving at its
    /// own exit.
    async fn run(
        &self,
        ctx: &GpuContext,
        act: &Activations,
        images: &[&[f32]],
        thresholds: &[f32],
    ) -> Result<Vec<Decision>> {
        let (stages, classes) = (self.plan.stages, self.plan.classes);
        // Created on the first packing (never for a single image).
        let mut scratch: Option<wgpu::Buffer> = None;
        ctx.queue
            .write_buffer(&act.image, 0, bytemuck::cast_slice(&images.concat()));
        let mut per_exit: Vec<Vec<ExitOutput>> = vec![Vec::new(); images.len()];
        let mut decisions: Vec<Option<Decision>> = vec![None; images.len()];
        // Image index of each occupied slot, in slot order.
        let mut inside: Vec<usize> = (0..images.len()).collect();
        for s in 0..stages {
            let n = inside.len();
            let mut enc = ctx.encoder();
            self.encode_stage(ctx, &mut enc, s, act, n)?;
            ctx.submit(enc);
            let confidence = ctx.read_f32(&act.confidence).await?;
            let class = ctx.read_u32(&act.class).await?;
            let threshold = thresholds.get(s).copied().unwrap_or(f32::NEG_INFINITY);
            let mut stay = Vec::with_capacity(n);
            let mut logits = None;
            for (slot, &image) in inside.iter().enumerate() {
                let out = ExitOutput {
                    confidence: confidence[slot],
                    class_index: class[slot] as usize,
                };
                per_exit[image].push(out.clone());
                if out.confidence > threshold || s + 1 == stages {
                    if logits.is_none() {
                        logits = Some(ctx.read_f32(&act.logits[s]).await?);
                    }
                    let all = logits.as_deref().unwrap_or_default();
                    let seen = std::mem::take(&mut per_exit[image]);
                    let logits = &all[slot * classes..][..classes];
                    decisions[image] = Some(Decision::at_exit(s, self.cum_macs[s], seen, logits));
                } else {
                    stay.push(slot);
                }
            }
            if stay.is_empty() {
                break;
            }
            if stay.len() < n {
                let mut enc = ctx.encoder();
                let scratch = scratch.get_or_insert_with(|| {
                    let largest = act.state().map(|b| b.size() as usize / 4).max();
                    ctx.storage("pack scratch", largest.unwrap_or(1))
                });
                act.pack(&mut enc, &stay, scratch);
                ctx.submit(enc);
                inside = stay.iter().map(|&slot| inside[slot]).collect();
            }
        }
        decisions
            .into_iter()
            .map(|d| d.ok_or_else(|| Error::config("stages", "an image took no exit")))
            .collect()
    }
}

/// Most images per GPU pass of [`StageWiseGpu::classify_batch`] (fewer where an activation
/// buffer would outgrow the device's storage binding limit); longer batches run in chunks.
pub const GPU_MAX_BATCH: usize = 64;
