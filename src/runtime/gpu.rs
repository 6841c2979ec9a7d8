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
use crate::ops::Planes;
use crate::space::{count, Layer, LayerKind, Piece, Plan, Preset, StageCuts, SubnetConfig};

/// A stage piece of a layer on the device: its rows (BN scale folded) and an affine of scale 1
/// and the piece's bias (0 without one).
struct DevicePiece {
    w: wgpu::Buffer,
    affine: wgpu::Buffer,
}

/// A layer of the plan with its stage pieces on the device (`None` for a stage that stores no
/// piece: one the layer's block skips, or another exit's classifier).
struct DeviceLayer {
    layer: Layer,
    pieces: Vec<Option<DevicePiece>>,
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
    /// The plan's layers in execution order, with their stage pieces.
    layers: Vec<DeviceLayer>,
    /// Idle single-image activations; a call that finds none creates its own.
    pool: Mutex<Vec<Activations>>,
    /// Bytes of the largest activation buffer per image.
    largest_buffer: u64,
}

fn upload(ctx: &GpuContext, piece: Piece) -> DevicePiece {
    let rows = piece.shape.first().copied().unwrap_or(0);
    let mut affine = vec![1.0; rows];
    affine.extend(piece.bias.unwrap_or_else(|| vec![0.0; rows]));
    DevicePiece {
        w: ctx.upload_f32(&piece.name, &piece.weight),
        affine: ctx.upload_f32(&piece.name, &affine),
    }
}

fn single(width: usize) -> Result<StageCuts> {
    StageCuts::single(width as u32)
}

/// Stage s's piece of a matrix-product layer over `batch` images: the stage's output rows from
/// the input channels of stages ≤ s (a classifier: all classes from its own stage's features),
/// written into the full-width output.
fn stage_gemm(layer: &Layer, s: usize, batch: usize, residual: bool) -> Result<GemmSpec> {
    let rows = layer.stage_rows(s);
    let depth = layer.stage_row_len(s);
    Ok(GemmSpec {
        batch,
        rows: rows.len(),
        depth,
        in_width: layer.cols.width() as usize,
        out_width: layer.out_channels(),
        out_offset: rows.start,
        cols: layer.pixels,
        out_cuts: single(rows.len())?,
        in_cuts: single(depth)?,
        act: layer.act,
        residual,
        active: vec![true],
        pass_through: false,
    })
}

/// The planes of channels `range` of a `total`-channel tensor, for `batch` images.
fn planes(batch: usize, range: std::ops::Range<usize>, total: u32) -> Planes {
    Planes {
        batch,
        offset: range.start,
        len: range.len(),
        total: total as usize,
    }
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
        let layers = plan
            .layers()
            .iter()
            .zip(weights.params())
            .map(|(layer, (w, a))| {
                let mut pieces: Vec<Option<DevicePiece>> = (0..plan.stages).map(|_| None).collect();
                for s in layer.stored_stages() {
                    pieces[s] = Some(upload(ctx, layer.cut(s, w, a)));
                }
                DeviceLayer {
                    layer: layer.clone(),
                    pieces,
                }
            })
            .collect();
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
            layers,
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
        let p = &self.plan;
        // The input of the block being recorded (the stem's output before the first).
        let mut input = &a.stem;
        for DeviceLayer { layer, pieces } in &self.layers {
            let gemm = |residual| stage_gemm(layer, s, n, residual);
            let rows = layer.stage_rows(s);
            let block = layer.block.map(|i| (&p.blocks[i], &a.blocks[i]));
            match (&layer.kind, block, &pieces[s]) {
                (LayerKind::Stem, _, Some(w)) => {
                    let stem = ConvSpec {
                        batch: n,
                        in_channels: 3,
                        height: p.resolution,
                        width: p.resolution,
                        out_channels: rows.len(),
                        kernel: 3,
                        stride: 2,
                        act: layer.act,
                        out_offset: rows.start,
                        out_total: layer.out_channels(),
                    };
                    encode_conv(ctx, enc, &stem, &a.image, &w.w, &w.affine, &a.stem)?;
                }
                (LayerKind::Expand, Some((_, bufs)), Some(w)) => {
                    encode_gemm(
                        ctx,
                        enc,
                        &gemm(false)?,
                        input,
                        &w.w,
                        &w.affine,
                        None,
                        &bufs[0],
                    )?;
                }
                (LayerKind::Depthwise { kernels, stride }, Some((b, bufs)), Some(w)) => {
                    let k = kernels[s];
                    let dw = DwConvSpec {
                        batch: n,
                        channels: rows.len(),
                        height: b.size,
                        width: b.size,
                        stride: *stride,
                        cuts: single(rows.len())?,
                        kernels: vec![k],
                        w_stride: k * k,
                        act: layer.act,
                        active: vec![true],
                        channel_offset: rows.start,
                        channel_total: layer.out_channels(),
                    };
                    let from = if b.expand { &bufs[0] } else { input };
                    encode_dwconv(ctx, enc, &dw, from, &w.w, &w.affine, &bufs[1])?;
                }
                (LayerKind::SeReduce, Some((b, bufs)), Some(w)) => {
                    let [_, mid, _, pooled, reduced, ..] = bufs;
                    let px = b.out_size() * b.out_size();
                    let stage_mid = planes(n, layer.cols.range(s), layer.cols.width());
                    encode_pool(ctx, enc, stage_mid, px, mid, pooled)?;
                    encode_gemm(
                        ctx,
                        enc,
                        &gemm(false)?,
                        pooled,
                        &w.w,
                        &w.affine,
                        None,
                        reduced,
                    )?;
                }
                (LayerKind::SeExpand, Some((b, bufs)), Some(w)) => {
                    let [_, mid, scaled, _, reduced, gate, _] = bufs;
                    let px = b.out_size() * b.out_size();
                    encode_gemm(
                        ctx,
                        enc,
                        &gemm(false)?,
                        reduced,
                        &w.w,
                        &w.affine,
                        None,
                        gate,
                    )?;
                    let stage_mid = planes(n, rows, layer.rows.width());
                    encode_se_scale(ctx, enc, stage_mid, px, mid, gate, scaled)?;
                }
                (LayerKind::Project { residual }, Some((b, bufs)), Some(w)) => {
                    let from = if b.se_cuts.is_some() {
                        &bufs[2]
                    } else {
                        &bufs[1]
                    };
                    let res = residual.then_some(input);
                    encode_gemm(
                        ctx,
                        enc,
                        &gemm(*residual)?,
                        from,
                        &w.w,
                        &w.affine,
                        res,
                        &bufs[6],
                    )?;
                    input = &bufs[6];
                }
                (LayerKind::Project { .. }, Some((b, bufs)), None) => {
                    // A block the stage skips: its output slice is its input slice.
                    let (cin, cout) = (b.in_cuts.width() as u64, b.out_cuts.width() as u64);
                    let plane = (b.out_size() * b.out_size() * 4) as u64;
                    let (start, len) = (rows.start as u64, rows.len() as u64);
                    for i in 0..n as u64 {
                        enc.copy_buffer_to_buffer(
                            input,
                            (i * cin + start) * plane,
                            &bufs[6],
                            (i * cout + start) * plane,
                            len * plane,
                        );
                    }
                    input = &bufs[6];
                }
                (LayerKind::FinalExpand, _, Some(w)) => {
                    let out = &a.final_expand;
                    encode_gemm(ctx, enc, &gemm(false)?, input, &w.w, &w.affine, None, out)?;
                    let stage = planes(n, rows, layer.rows.width());
                    encode_pool(ctx, enc, stage, layer.pixels, out, &a.pooled)?;
                }
                (LayerKind::FeatureMix, _, Some(w)) => {
                    let out = &a.features;
                    encode_gemm(
                        ctx,
                        enc,
                        &gemm(false)?,
                        &a.pooled,
                        &w.w,
                        &w.affine,
                        None,
                        out,
                    )?;
                }
                (LayerKind::Classifier { stage }, _, Some(w)) if *stage == s => {
                    let logits = &a.logits[s];
                    encode_gemm(
                        ctx,
                        enc,
                        &gemm(false)?,
                        &a.features,
                        &w.w,
                        &w.affine,
                        None,
                        logits,
                    )?;
                    let (probs, conf, class) = (&a.probs, &a.confidence, &a.class);
                    encode_softmax(ctx, enc, n, p.classes, logits, probs, conf, class)?;
                }
                // Layers of a block the stage skips, and the other exits' classifiers.
                _ => {}
            }
        }
        Ok(())
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
