//! The stage-wise pass on the CPU, natively and in wasm, as a walk of the layer list
//! ([`Plan::layers`]): stage s runs every layer's stage-s piece in list order.
//!
//! A batch runs together: its activations are channel-last (`[image, pixel, channel]`, every
//! layer at full width, filled slice by slice), so a 1×1 conv over all the batch's pixels is one
//! matrix product on weights packed at load ([`crate::cpu::pointwise`]) with its epilogue (bias,
//! activation, residual) applied in registers before the one store, and a depthwise conv
//! vectorizes along the channels: plane by plane with each kernel row's weights in registers
//! where the plane is wide enough ([`window::plane`]), else pixel by pixel, skipping the taps
//! that would read padding ([`paired_dots_fused`]); on x86-64 CPUs with AVX2 and FMA the whole
//! stage is compiled for them. Each stage's weight pieces are cut out of
//! the file's weights once, at load (BN already folded). After each exit the images that leave
//! drop out and the rest are packed to the front, so later stages run only on the images still
//! inside. A batch spreads over threads natively, one part per thread. Workspaces are kept
//! between calls. Checked against the f64 reference (`net::forward_reference`, feature `testing`) by
//! `tests/runtime.rs`; the GPU runtime is checked against this one image by image.

use std::ops::Range;
use std::sync::Mutex;

use super::{check_input, exit_output, Decision, ExitOutput};
use crate::cpu::depthwise::PlaneConv;
use crate::cpu::pointwise::{pointwise as packed_pointwise, PackedWeight};
use crate::cpu::rows::{epilogue, pool};
use crate::cpu::simd::paired_dots_fused;
use crate::cpu::window;
use crate::error::{Error, Result};
use crate::net::NetWeights;
use crate::ops::Activation;
use crate::space::{count, Layer, LayerKind, Plan, Preset, SubnetConfig, STEM_TAPS};

/// Most activation floats one pass of a batch may hold (4 MiB); larger batches run in parts.
/// Parts this small stay in the caches: at batch 256 they ran 1.2–1.3× faster than parts of
/// 16 MiB on a 2-core x86-64 machine (docs/benchmarks.md).
const WORKSPACE_FLOATS: u64 = 1 << 20;

/// A depthwise piece's taps: per output pixel, its `(kernel offset, input offset)` pairs.
struct Taps {
    /// Every pixel's pairs, pixel q's from `starts[q]` to `starts[q + 1]`.
    pairs: Vec<(usize, usize)>,
    starts: Vec<usize>,
    /// The conv of one image's plane.
    conv: PlaneConv,
    /// Whether the plane kernel ([`window::plane`]) pays on this conv.
    plane: bool,
}

/// One stage's piece of a layer, ready to run: its weight (BN scale folded) and bias in the
/// layout its kernel reads.
enum Piece {
    /// A 1×1 layer's `[rows, row_len]` weight and its bias, packed in panels.
    Pointwise(PackedWeight),
    /// A depthwise kernel transposed to `[k·k, channels]`, its bias, and its taps computed once.
    Depthwise {
        weight: Vec<f32>,
        bias: Vec<f32>,
        taps: Taps,
    },
}

/// A layer with its pieces, `None` for the stages it does not run.
struct Prepared {
    layer: Layer,
    pieces: Vec<Option<Piece>>,
}

/// Activations of one block, `[image, pixel, channel]` or `[image, channel]`.
#[derive(Default)]
struct BlockBuffers {
    expanded: Vec<f32>,
    mid: Vec<f32>,
    pooled: Vec<f32>,
    reduced: Vec<f32>,
    gate: Vec<f32>,
    out: Vec<f32>,
}

/// Everything one batch pass writes; reused across calls.
#[derive(Default)]
struct Workspace {
    patches: Vec<f32>,
    stem: Vec<f32>,
    blocks: Vec<BlockBuffers>,
    final_expand: Vec<f32>,
    pooled: Vec<f32>,
    features: Vec<f32>,
    logits: Vec<f32>,
    /// Scratch of the depthwise convs ([`window::plane`]).
    pad: Vec<f32>,
}

/// A subnet ready to classify stage by stage on the CPU.
pub struct StageWiseCpu {
    plan: Plan,
    layers: Vec<Prepared>,
    cum_macs: Vec<u64>,
    /// Images per pass: bounded by [`WORKSPACE_FLOATS`].
    part: usize,
    workspaces: Mutex<Vec<Workspace>>,
}

/// `v` resized to `n` elements (new ones 0), as a slice.
fn sized(v: &mut Vec<f32>, n: usize) -> &mut [f32] {
    v.resize(n, 0.0);
    &mut v[..]
}

/// `y[p, cols] = act(x[p, ..lim] · wᵀ + bias (+ res[p, cols]))` for `p < pixels`: `x` rows `ldx`
/// apart, `w` `[cols.len(), lim]`, `y` and `res` rows `ldy` apart.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn pointwise(
    x: &[f32],
    ldx: usize,
    lim: usize,
    piece: &Piece,
    act: Activation,
    pixels: usize,
    y: &mut [f32],
    ldy: usize,
    cols: Range<usize>,
    res: Option<&[f32]>,
) {
    let Piece::Pointwise(w) = piece else {
        return;
    };
    debug_assert_eq!((w.outputs(), w.inputs()), (cols.len(), lim));
    let res = res.map(|r| &r[cols.start..]);
    packed_pointwise(x, ldx, w, act, pixels, &mut y[cols.start..], ldy, res);
}

/// Zeroes channels `cols` of `images` images of `pixels` pixels, `width` channels.
#[inline(always)]
fn zero(x: &mut [f32], images: usize, pixels: usize, width: usize, cols: Range<usize>) {
    for r in 0..images * pixels {
        x[r * width + cols.start..r * width + cols.end].fill(0.0);
    }
}

/// Moves image `from`'s `per_image` values of every buffer to slot `to` (`to < from`).
fn move_image(buffers: &mut [&mut Vec<f32>], per_image: &[usize], from: usize, to: usize) {
    for (b, &n) in buffers.iter_mut().zip(per_image) {
        b.copy_within(from * n..(from + 1) * n, to * n);
    }
}

impl StageWiseCpu {
    /// Prepares `weights` of `config` in `preset`: checks them and cuts every layer's stage
    /// pieces out of them.
    pub fn new(
        preset: &Preset,
        config: &SubnetConfig,
        weights: NetWeights<Vec<f32>>,
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
                let mut pieces: Vec<Option<Piece>> = (0..plan.stages).map(|_| None).collect();
                for s in layer.stored_stages() {
                    let cut = layer.cut(s, w, a);
                    let rows = layer.stage_rows(s).len();
                    let bias = cut.bias.unwrap_or_else(|| vec![0.0; rows]);
                    let piece = match (&layer.kind, layer.block.and_then(|i| plan.blocks.get(i))) {
                        (LayerKind::Depthwise { kernels, stride }, Some(b)) => {
                            // [c, k·k] → [k·k, c]: the channels are the vector.
                            let kk = kernels[s] * kernels[s];
                            let mut weight = vec![0.0; kk * rows];
                            for (c, taps) in cut.weight.chunks_exact(kk).enumerate() {
                                for (tap, &v) in taps.iter().enumerate() {
                                    weight[tap * rows + c] = v;
                                }
                            }
                            let conv = PlaneConv {
                                h: b.size,
                                w: b.size,
                                k: kernels[s],
                                stride: *stride,
                            };
                            let taps =
                                taps(&conv, layer.rows.width() as usize, layer.rows.range(s));
                            Piece::Depthwise { weight, bias, taps }
                        }
                        _ => Piece::Pointwise(PackedWeight::new(
                            &cut.weight,
                            &bias,
                            rows,
                            cut.weight.len() / rows.max(1),
                        )),
                    };
                    pieces[s] = Some(piece);
                }
                Prepared {
                    layer: layer.clone(),
                    pieces,
                }
            })
            .collect();
        let part = (WORKSPACE_FLOATS / plan.activation_floats().max(1)).clamp(1, 64) as usize;
        Ok(StageWiseCpu {
            plan,
            layers,
            cum_macs,
            part,
            workspaces: Mutex::new(Vec::new()),
        })
    }

    /// The layer plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// MACs up to and including each exit.
    pub fn cum_macs(&self) -> &[u64] {
        &self.cum_macs
    }

    /// Classifies one image (`[3, R, R]` at the plan's resolution): leaves at the first exit
    /// whose confidence exceeds its threshold, always at the last.
    pub fn classify(&self, image: &[f32], thresholds: &[f32]) -> Result<Decision> {
        let mut out =
            self.classify_batch_on(std::slice::from_ref(&image.to_vec()), thresholds, 1)?;
        out.pop()
            .ok_or_else(|| Error::config("classify", "no decision for the image"))
    }

    /// Classifies a batch of images, each leaving at its own exit, spread over the machine's
    /// cores (one part of the batch per thread; one thread in wasm). Results are in input
    /// order and agree with [`StageWiseCpu::classify`] image by image (logits within 1e-5).
    pub fn classify_batch(&self, images: &[Vec<f32>], thresholds: &[f32]) -> Result<Vec<Decision>> {
        #[cfg(not(target_arch = "wasm32"))]
        let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        #[cfg(target_arch = "wasm32")]
        let threads = 1;
        self.classify_batch_on(images, thresholds, threads)
    }

    /// [`StageWiseCpu::classify_batch`] on at most `threads` threads (1 = this thread).
    pub fn classify_batch_on(
        &self,
        images: &[Vec<f32>],
        thresholds: &[f32],
        threads: usize,
    ) -> Result<Vec<Decision>> {
        super::check_thresholds(thresholds, self.plan.stages)?;
        for image in images {
            check_input(image, thresholds, &self.plan)?;
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let threads = threads.clamp(1, images.len().max(1));
            if threads > 1 {
                let chunk = images.len().div_ceil(threads);
                let parts: Vec<Result<Vec<Decision>>> = std::thread::scope(|scope| {
                    let handles: Vec<_> = images
                        .chunks(chunk)
                        .map(|part| scope.spawn(move || self.run_parts(part, thresholds)))
                        .collect();
                    handles
                        .into_iter()
                        .map(|h| {
                            h.join().unwrap_or_else(|_| {
                                Err(Error::config("classify_batch", "a worker thread panicked"))
                            })
                        })
                        .collect()
                });
                let mut out = Vec::with_capacity(images.len());
                for p in parts {
                    out.extend(p?);
                }
                return Ok(out);
            }
        }
        #[cfg(target_arch = "wasm32")]
        let _ = threads;
        self.run_parts(images, thresholds)
    }

    /// Runs `images` on this thread, in passes of at most `part` images.
    fn run_parts(&self, images: &[Vec<f32>], thresholds: &[f32]) -> Result<Vec<Decision>> {
        let mut ws = self
            .workspaces
            .lock()
            .map_or_else(|_| None, |mut pool| pool.pop())
            .unwrap_or_default();
        let mut out = Vec::with_capacity(images.len());
        for part in images.chunks(self.part) {
            out.extend(self.run_batch(&mut ws, part, thresholds));
        }
        if let Ok(mut pool) = self.workspaces.lock() {
            pool.push(ws);
        }
        Ok(out)
    }

    /// Sizes `ws` for `n` images and writes the stem's input patches.
    fn prepare(&self, ws: &mut Workspace, images: &[Vec<f32>]) {
        let p = &self.plan;
        let n = images.len();
        let (r, s0) = (p.resolution, p.stem_size());
        let patches = sized(&mut ws.patches, n * s0 * s0 * STEM_TAPS);
        // Patch of output pixel (oy, ox): taps (channel, ky, kx) of the 3×3 stride-2 window,
        // zero outside the image. Loops in tap order, so no tap index is divided.
        for (image, patches) in images
            .iter()
            .zip(patches.chunks_exact_mut(s0 * s0 * STEM_TAPS))
        {
            for (q, patch) in patches.chunks_exact_mut(STEM_TAPS).enumerate() {
                let (oy, ox) = (q / s0, q % s0);
                for (plane, window) in image.chunks_exact(r * r).zip(patch.chunks_exact_mut(9)) {
                    for (ky, taps) in window.chunks_exact_mut(3).enumerate() {
                        let iy = (2 * oy + ky).wrapping_sub(1);
                        let row = (iy < r).then(|| &plane[iy * r..][..r]);
                        for (kx, t) in taps.iter_mut().enumerate() {
                            let ix = (2 * ox + kx).wrapping_sub(1);
                            *t = match row {
                                Some(row) if ix < r => row[ix],
                                _ => 0.0,
                            };
                        }
                    }
                }
            }
        }
        sized(&mut ws.stem, n * s0 * s0 * p.stem_cuts.width() as usize);
        ws.blocks.resize_with(p.blocks.len(), BlockBuffers::default);
        for (b, bufs) in p.blocks.iter().zip(&mut ws.blocks) {
            let (size, out) = (b.size * b.size, b.out_size() * b.out_size());
            let mid = b.mid_cuts.width() as usize;
            let red = b.se_cuts.as_ref().map_or(0, |c| c.width() as usize);
            sized(&mut bufs.expanded, n * size * mid);
            sized(&mut bufs.mid, n * out * mid);
            sized(&mut bufs.pooled, n * mid);
            sized(&mut bufs.reduced, n * red);
            sized(&mut bufs.gate, n * mid);
            sized(&mut bufs.out, n * out * b.out_cuts.width() as usize);
        }
        let fs = p.final_size() * p.final_size();
        sized(&mut ws.final_expand, n * fs * p.final_cuts.width() as usize);
        sized(&mut ws.pooled, n * p.final_cuts.width() as usize);
        sized(&mut ws.features, n * p.mix_cuts.width() as usize);
        sized(&mut ws.logits, n * p.classes);
    }

    /// Runs stage `s` of every layer for the first `n` images of `ws`; their exit-s logits end
    /// in `ws.logits`.
    fn run_stage(&self, ws: &mut Workspace, n: usize, s: usize) {
        #[cfg(target_arch = "x86_64")]
        if crate::cpu::simd::x86::avx2_fma() {
            // SAFETY: the CPU supports AVX2 and FMA (checked above).
            return unsafe { self.run_stage_avx2(ws, n, s) };
        }
        self.run_stage_body(ws, n, s);
    }

    /// [`Self::run_stage`] compiled for AVX2 and FMA (its loops inline into it).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run_stage_avx2(&self, ws: &mut Workspace, n: usize, s: usize) {
        self.run_stage_body(ws, n, s);
    }

    #[inline(always)]
    fn run_stage_body(&self, ws: &mut Workspace, n: usize, s: usize) {
        let p = &self.plan;
        let Workspace {
            patches,
            stem,
            blocks,
            final_expand,
            pooled,
            features,
            logits,
            pad,
        } = ws;
        for Prepared { layer, pieces } in &self.layers {
            let piece = pieces[s].as_ref();
            let rows = layer.stage_rows(s);
            let (width, lim) = (layer.rows.width() as usize, layer.cols.end(s) as usize);
            let in_width = layer.cols.width() as usize;
            // Pixels per image of the layer's output.
            let px = layer.pixels;
            match (&layer.kind, layer.block, piece) {
                (LayerKind::Stem, _, Some(piece)) => {
                    pointwise(
                        patches,
                        STEM_TAPS,
                        STEM_TAPS,
                        piece,
                        layer.act,
                        n * px,
                        stem,
                        width,
                        rows,
                        None,
                    );
                }
                (LayerKind::Classifier { stage }, _, Some(piece)) if *stage == s => {
                    let c = layer.cols.end(s) as usize;
                    pointwise(
                        features,
                        in_width,
                        c,
                        piece,
                        layer.act,
                        n,
                        logits,
                        p.classes,
                        0..p.classes,
                        None,
                    );
                }
                (LayerKind::FinalExpand, _, Some(piece)) => {
                    let input = blocks.last().map_or(&*stem, |b| &b.out);
                    pointwise(
                        input,
                        in_width,
                        lim,
                        piece,
                        layer.act,
                        n * px,
                        final_expand,
                        width,
                        rows.clone(),
                        None,
                    );
                    pool(final_expand, n, px, width, rows, pooled);
                }
                (LayerKind::FeatureMix, _, Some(piece)) => {
                    pointwise(
                        pooled, in_width, lim, piece, layer.act, n, features, width, rows, None,
                    );
                }
                (kind, Some(i), piece) => {
                    let (before, rest) = blocks.split_at_mut(i);
                    let input: &[f32] = before.last().map_or(&*stem, |b| &b.out);
                    let bufs = &mut rest[0];
                    let plan_block = &p.blocks[i];
                    let out_px = plan_block.out_size() * plan_block.out_size();
                    let mid_width = plan_block.mid_cuts.width() as usize;
                    match (kind, piece) {
                        (LayerKind::Expand, Some(piece)) => {
                            pointwise(
                                input,
                                in_width,
                                lim,
                                piece,
                                layer.act,
                                n * px,
                                &mut bufs.expanded,
                                width,
                                rows,
                                None,
                            );
                        }
                        (LayerKind::Depthwise { .. }, Some(piece)) => {
                            let x: &[f32] = if plan_block.expand {
                                &bufs.expanded
                            } else {
                                input
                            };
                            let hw = plan_block.size * plan_block.size;
                            depthwise(x, hw, piece, layer.act, n, width, rows, pad, &mut bufs.mid);
                        }
                        (LayerKind::Depthwise { .. }, None) => {
                            // A skipped stage: its middle channels read as zeros later.
                            zero(&mut bufs.mid, n, out_px, width, rows.clone());
                            zero(&mut bufs.pooled, n, 1, width, rows);
                        }
                        (LayerKind::SeReduce, Some(piece)) => {
                            pool(
                                &bufs.mid,
                                n,
                                out_px,
                                mid_width,
                                layer.cols.range(s),
                                &mut bufs.pooled,
                            );
                            pointwise(
                                &bufs.pooled,
                                in_width,
                                lim,
                                piece,
                                layer.act,
                                n,
                                &mut bufs.reduced,
                                width,
                                rows,
                                None,
                            );
                        }
                        (LayerKind::SeReduce, None) => zero(&mut bufs.reduced, n, 1, width, rows),
                        (LayerKind::SeExpand, Some(piece)) => {
                            pointwise(
                                &bufs.reduced,
                                in_width,
                                lim,
                                piece,
                                layer.act,
                                n,
                                &mut bufs.gate,
                                width,
                                rows.clone(),
                                None,
                            );
                            for i in 0..n {
                                let gate = &bufs.gate[i * width + rows.start..i * width + rows.end];
                                for q in 0..out_px {
                                    let row = &mut bufs.mid
                                        [(i * out_px + q) * width + rows.start..][..rows.len()];
                                    for (v, &g) in row.iter_mut().zip(gate) {
                                        *v *= g;
                                    }
                                }
                            }
                        }
                        (LayerKind::Project { residual }, Some(piece)) => {
                            let res = residual.then_some(input);
                            pointwise(
                                &bufs.mid,
                                in_width,
                                lim,
                                piece,
                                layer.act,
                                n * px,
                                &mut bufs.out,
                                width,
                                rows,
                                res,
                            );
                        }
                        (LayerKind::Project { .. }, None) => {
                            // A skipped stage passes its slice of the block input through.
                            for q in 0..n * px {
                                bufs.out[q * width + rows.start..q * width + rows.end]
                                    .copy_from_slice(
                                        &input[q * width + rows.start..q * width + rows.end],
                                    );
                            }
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
        }
    }

    /// Classifies `images` (checked) together, each leaving at its own exit.
    fn run_batch(
        &self,
        ws: &mut Workspace,
        images: &[Vec<f32>],
        thresholds: &[f32],
    ) -> Vec<Decision> {
        let p = &self.plan;
        let stages = p.stages;
        self.prepare(ws, images);
        // Slot j of the workspace holds image ids[j].
        let mut ids: Vec<usize> = (0..images.len()).collect();
        let mut per_exit: Vec<Vec<ExitOutput>> = vec![Vec::new(); images.len()];
        let mut done: Vec<Option<Decision>> = (0..images.len()).map(|_| None).collect();
        for s in 0..stages {
            let n = ids.len();
            if n == 0 {
                break;
            }
            self.run_stage(ws, n, s);
            let threshold = thresholds.get(s).copied().unwrap_or(f32::NEG_INFINITY);
            let mut keep = Vec::with_capacity(n);
            for (slot, &id) in ids.iter().enumerate() {
                let logits = &ws.logits[slot * p.classes..(slot + 1) * p.classes];
                let out = exit_output(logits);
                per_exit[id].push(out.clone());
                if out.confidence > threshold || s + 1 == stages {
                    let seen = std::mem::take(&mut per_exit[id]);
                    done[id] = Some(Decision::at_exit(s, self.cum_macs[s], seen, logits));
                } else {
                    keep.push(slot);
                }
            }
            if keep.len() < n && s + 1 < stages {
                compact(ws, images.len(), &keep);
            }
            ids = keep.iter().map(|&slot| ids[slot]).collect();
        }
        done.into_iter().flatten().collect()
    }
}

/// Packs the images in slots `keep` (ascending) to the front of every buffer later stages
/// read; the buffers hold `slots` images each.
fn compact(ws: &mut Workspace, slots: usize, keep: &[usize]) {
    let mut buffers: Vec<&mut Vec<f32>> = vec![&mut ws.patches, &mut ws.stem];
    for b in &mut ws.blocks {
        buffers.extend([&mut b.mid, &mut b.pooled, &mut b.reduced, &mut b.out]);
    }
    buffers.extend([&mut ws.pooled, &mut ws.features]);
    let per_image: Vec<usize> = buffers.iter().map(|b| b.len() / slots.max(1)).collect();
    for (to, &from) in keep.iter().enumerate() {
        if from != to {
            move_image(&mut buffers, &per_image, from, to);
        }
    }
}

/// For every output pixel of `conv` over channels `cols` of `width`, the `(kernel offset,
/// input offset)` pairs of its taps that read inside the image, and where each pixel's start.
fn taps(conv: &PlaneConv, width: usize, cols: Range<usize>) -> Taps {
    let (k, wo, c) = (conv.k, conv.out_w(), cols.len());
    let (mut pairs, mut starts) = (Vec::new(), Vec::new());
    let ohw = conv.out_h() * wo;
    for q in 0..ohw {
        starts.push(pairs.len());
        for (ky, iy) in conv.reads(q / wo, conv.h) {
            for (kx, ix) in conv.reads(q % wo, conv.w) {
                pairs.push(((ky * k + kx) * c, (iy * conv.w + ix) * width + cols.start));
            }
        }
    }
    starts.push(pairs.len());
    Taps {
        pairs,
        starts,
        conv: *conv,
        plane: window::worth_it(conv),
    }
}

/// Depthwise conv of channels `cols` (kernel `piece`, `[k·k, cols.len()]`, with its taps) for
/// `images` images of `width` channels and `hw` input pixels, then bias and activation, into
/// `y`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn depthwise(
    x: &[f32],
    hw: usize,
    piece: &Piece,
    act: Activation,
    images: usize,
    width: usize,
    cols: Range<usize>,
    pad: &mut Vec<f32>,
    y: &mut [f32],
) {
    let Piece::Depthwise { weight, bias, taps } = piece else {
        return;
    };
    let (ohw, c) = (taps.starts.len() - 1, cols.len());
    for i in 0..images {
        let xi = &x[i * hw * width..];
        let yi = &mut y[i * ohw * width + cols.start..];
        // Plane by plane with the kernel rows in registers where that pays, else pixel by
        // pixel.
        let plane = window::Plane {
            conv: &taps.conv,
            weight,
            c,
            x: &xi[cols.start..],
            width,
        };
        let ran = taps.plane && window::plane(&plane, pad, yi);
        for q in 0..ohw {
            let row = &mut yi[q * width..][..c];
            if !ran {
                let pairs = &taps.pairs[taps.starts[q]..taps.starts[q + 1]];
                paired_dots_fused(row, weight, xi, pairs);
            }
            epilogue(row, bias, act, None);
        }
    }
}
