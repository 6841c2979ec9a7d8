//! The stage-wise pass on the CPU, one image at a time (`[C, H, W]`), natively and in wasm:
//! f32 convolutions, the 1×1 convs on the `gemm` crate natively and on SIMD128 row updates in
//! wasm ([`crate::simd`]), the depthwise conv channel-last ([`PlaneConv`], vectorized along
//! the channels the same way). A batch spreads its images over threads natively. Checked
//! against the f64 reference ([`crate::net::forward_reference`]) by `tests/runtime.rs`; the GPU
//! runtime is checked against it image by image.

use std::ops::Range;

use super::{check_input, exit_output, Decision};
use crate::error::{Error, Result};
use crate::net::NetWeights;
use crate::ops::dw_channels::{transpose, PlaneConv};
use crate::ops::mbconv::DW_STRIDE;
use crate::ops::Activation;
#[cfg(target_arch = "wasm32")]
use crate::simd::axpy;
use crate::simd::dot;
use crate::space::{count, Plan, Preset, SubnetConfig};

/// A subnet ready to classify stage by stage on the CPU.
pub struct StageWiseCpu {
    plan: Plan,
    weights: NetWeights<Vec<f32>>,
    cum_macs: Vec<u64>,
}

/// A 1×1 conv / linear restricted to output rows `rows`, reading input channels `0..lim`.
struct Pointwise<'a> {
    w: &'a [f32],
    affine: &'a [f32],
    in_channels: usize,
    out_channels: usize,
    pixels: usize,
    act: Activation,
}

impl Pointwise<'_> {
    fn run(&self, x: &[f32], rows: Range<usize>, lim: usize, y: &mut [f32], res: Option<&[f32]>) {
        let p_n = self.pixels;
        let (cin, first) = (self.in_channels, rows.start);
        let out = &mut y[first * p_n..rows.end * p_n];
        if p_n == 1 {
            for (o, v) in rows.clone().zip(out.iter_mut()) {
                *v = dot(&self.w[o * cin..o * cin + lim], &x[..lim]);
            }
        } else {
            product(&self.w[first * cin..], cin, rows.len(), lim, x, p_n, out);
        }
        let act = self.act;
        for (o, yo) in rows.zip(out.chunks_exact_mut(p_n)) {
            let (scale, shift) = (self.affine[o], self.affine[self.out_channels + o]);
            match res {
                Some(r) => {
                    for (v, &r) in yo.iter_mut().zip(&r[o * p_n..(o + 1) * p_n]) {
                        *v = act.apply_f32(*v * scale + shift) + r;
                    }
                }
                None => {
                    for v in yo.iter_mut() {
                        *v = act.apply_f32(*v * scale + shift);
                    }
                }
            }
        }
    }
}

/// `y[rows × p] = w[rows × lim] · x[lim × p]`, `w`'s rows `ld` apart: the `gemm` crate natively.
#[cfg(not(target_arch = "wasm32"))]
fn product(w: &[f32], ld: usize, rows: usize, lim: usize, x: &[f32], p: usize, y: &mut [f32]) {
    use crate::matmul::{matmul, View};
    matmul(
        y,
        p,
        false,
        View::block(w, 0, rows, lim, ld),
        View::block(x, 0, lim, p, p),
    );
}

/// `y[rows × p] = w[rows × lim] · x[lim × p]`, `w`'s rows `ld` apart: SIMD128 row updates in wasm.
#[cfg(target_arch = "wasm32")]
fn product(w: &[f32], ld: usize, rows: usize, lim: usize, x: &[f32], p: usize, y: &mut [f32]) {
    for (r, yr) in y.chunks_exact_mut(p).take(rows).enumerate() {
        yr.fill(0.0);
        for (k, &wv) in w[r * ld..r * ld + lim].iter().enumerate() {
            axpy(yr, wv, &x[k * p..(k + 1) * p]);
        }
    }
}

/// Buffers reused by every depthwise layer of one image (each is fully overwritten before it
/// is read, so growing them is the only zeroing).
#[derive(Default)]
struct Scratch {
    kernel: Vec<f32>,
    x: Vec<f32>,
    y: Vec<f32>,
    pairs: Vec<(usize, usize)>,
}

/// `v` with at least `n` elements, its first `n` as a slice.
fn at_least(v: &mut Vec<f32>, n: usize) -> &mut [f32] {
    if v.len() < n {
        v.resize(n, 0.0);
    }
    &mut v[..n]
}

/// Depthwise conv of channels `range` with kernel `k` (same padding), then affine and
/// activation.
#[allow(clippy::too_many_arguments)]
fn depthwise(
    scratch: &mut Scratch,
    x: &[f32],
    w: &[f32],
    affine: &[f32],
    c_n: usize,
    size: usize,
    stride: usize,
    k: usize,
    range: Range<usize>,
    act: Activation,
    y: &mut [f32],
) {
    let conv = PlaneConv {
        h: size,
        w: size,
        k,
        stride,
    };
    let (hw, ohw, kk, c) = (size * size, conv.out_h() * conv.out_w(), k * k, range.len());
    // The channel range channel-last: input `[hw, c]`, kernel `[k·k, c]`.
    let Scratch {
        kernel,
        x: xc,
        y: yc,
        pairs,
    } = scratch;
    let kernel = at_least(kernel, kk * c);
    for (j, ch) in range.clone().enumerate() {
        for (t, v) in w[ch * DW_STRIDE..][..kk].iter().enumerate() {
            kernel[t * c + j] = *v;
        }
    }
    let xc = at_least(xc, hw * c);
    transpose(&x[range.start * hw..range.end * hw], c, hw, xc);
    let yc = at_least(yc, ohw * c);
    conv.forward(c, xc, kernel, pairs, yc);
    let ys = &mut y[range.start * ohw..range.end * ohw];
    transpose(yc, ohw, c, ys);
    for (ch, plane) in range.zip(ys.chunks_mut(ohw)) {
        let (scale, shift) = (affine[ch], affine[c_n + ch]);
        for v in plane.iter_mut() {
            *v = act.apply_f32(*v * scale + shift);
        }
    }
}

fn pool(x: &[f32], range: Range<usize>, pixels: usize, y: &mut [f32]) {
    for c in range {
        y[c] = (x[c * pixels..][..pixels]
            .iter()
            .map(|&v| f64::from(v))
            .sum::<f64>()
            / pixels as f64) as f32;
    }
}

/// Activations cached between stages: every layer's full-width output, filled slice by slice.
struct Cache {
    stem: Vec<f32>,
    /// Per block: expanded, depthwise (after SE), pooled, reduced, gate, output.
    blocks: Vec<[Vec<f32>; 6]>,
    final_expand: Vec<f32>,
    pooled: Vec<f32>,
    features: Vec<f32>,
}

impl StageWiseCpu {
    /// Prepares `weights` of `config` in `preset`.
    pub fn new(
        preset: &Preset,
        config: &SubnetConfig,
        weights: NetWeights<Vec<f32>>,
    ) -> Result<Self> {
        let plan = Plan::new(preset, config)?;
        weights.check(&plan)?;
        weights.check_finite()?;
        let cum_macs = count(preset, config)?.cum_macs;
        Ok(StageWiseCpu {
            plan,
            weights,
            cum_macs,
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

    fn new_cache(&self) -> Cache {
        let p = &self.plan;
        let s0 = p.stem_size();
        let blocks = p
            .blocks
            .iter()
            .map(|b| {
                let mid = b.mid_cuts.width() as usize;
                let red = b.se_cuts.as_ref().map_or(0, |c| c.width() as usize);
                let out = b.out_size();
                [
                    vec![0.0; mid * b.size * b.size],
                    vec![0.0; mid * out * out],
                    vec![0.0; mid],
                    vec![0.0; red],
                    vec![0.0; mid],
                    vec![0.0; b.out_cuts.width() as usize * out * out],
                ]
            })
            .collect();
        let fs = p.final_size();
        Cache {
            stem: vec![0.0; p.stem_cuts.width() as usize * s0 * s0],
            blocks,
            final_expand: vec![0.0; p.final_cuts.width() as usize * fs * fs],
            pooled: vec![0.0; p.final_cuts.width() as usize],
            features: vec![0.0; p.mix_cuts.width() as usize],
        }
    }

    /// Computes stage `s`'s slices of every layer and returns exit s's logits.
    fn run_stage(
        &self,
        image: &[f32],
        cache: &mut Cache,
        scratch: &mut Scratch,
        s: usize,
    ) -> Vec<f32> {
        let (p, w) = (&self.plan, &self.weights);
        let r = p.resolution;
        let s0 = p.stem_size();
        // Stem: output channels of stage s over the whole image, 3×3 stride 2, padding 1. Per
        // tap the output rows and columns that read inside the image are found once, so the
        // inner loop has no padding tests.
        let c0 = p.stem_cuts.width() as usize;
        let stem_w = &w.stem.0;
        // Outputs o with 0 ≤ 2·o + t − 1 < r, for tap t.
        let valid = |t: usize| (1 - t.min(1))..(r + 1).saturating_sub(t).div_ceil(2).min(s0);
        for o in p.stem_cuts.range(s) {
            let plane = &mut cache.stem[o * s0 * s0..(o + 1) * s0 * s0];
            plane.fill(0.0);
            for ci in 0..3 {
                let img = &image[ci * r * r..(ci + 1) * r * r];
                for ky in 0..3 {
                    for kx in 0..3 {
                        let wv = stem_w[((o * 3 + ci) * 3 + ky) * 3 + kx];
                        let cols = valid(kx);
                        for oy in valid(ky) {
                            let row = &img[(oy * 2 + ky - 1) * r..][..r];
                            let out = &mut plane[oy * s0..(oy + 1) * s0];
                            for ox in cols.clone() {
                                out[ox] += wv * row[ox * 2 + kx - 1];
                            }
                        }
                    }
                }
            }
            let (scale, shift) = (w.stem.1[o], w.stem.1[c0 + o]);
            for v in plane.iter_mut() {
                *v = Activation::Hswish.apply_f32(*v * scale + shift);
            }
        }
        let mut input: &[f32] = &cache.stem;
        for ((b, bw), buffers) in p.blocks.iter().zip(&w.blocks).zip(cache.blocks.iter_mut()) {
            let [expanded, mid, pooled, reduced, gate, out] = buffers;
            let (size, osz) = (b.size, b.out_size());
            let (mid_n, out_n) = (b.mid_cuts.width() as usize, b.out_cuts.width() as usize);
            let mid_range = b.mid_cuts.range(s);
            if b.active[s] {
                let dw_in: &[f32] = if let Some((ew, ea)) = &bw.expand {
                    let pw = Pointwise {
                        w: ew,
                        affine: ea,
                        in_channels: b.in_cuts.width() as usize,
                        out_channels: mid_n,
                        pixels: size * size,
                        act: b.act,
                    };
                    pw.run(
                        input,
                        mid_range.clone(),
                        b.in_cuts.end(s) as usize,
                        expanded,
                        None,
                    );
                    expanded
                } else {
                    input
                };
                depthwise(
                    scratch,
                    dw_in,
                    &bw.dw.0,
                    &bw.dw.1,
                    mid_n,
                    size,
                    b.stride,
                    b.kernels[s],
                    mid_range.clone(),
                    b.act,
                    mid,
                );
                if let (Some(se), Some(red_cuts)) = (&bw.se, &b.se_cuts) {
                    let red_n = red_cuts.width() as usize;
                    pool(mid, mid_range.clone(), osz * osz, pooled);
                    let reduce = Pointwise {
                        w: &se.reduce_w,
                        affine: &se.reduce_affine,
                        in_channels: mid_n,
                        out_channels: red_n,
                        pixels: 1,
                        act: Activation::Relu,
                    };
                    reduce.run(
                        pooled,
                        red_cuts.range(s),
                        b.mid_cuts.end(s) as usize,
                        reduced,
                        None,
                    );
                    let expand = Pointwise {
                        w: &se.expand_w,
                        affine: &se.expand_affine,
                        in_channels: red_n,
                        out_channels: mid_n,
                        pixels: 1,
                        act: Activation::Hsigmoid,
                    };
                    expand.run(
                        reduced,
                        mid_range.clone(),
                        red_cuts.end(s) as usize,
                        gate,
                        None,
                    );
                    for c in mid_range.clone() {
                        for v in &mut mid[c * osz * osz..][..osz * osz] {
                            *v *= gate[c];
                        }
                    }
                }
                let residual = b.residual().then_some(input);
                let project = Pointwise {
                    w: &bw.project.0,
                    affine: &bw.project.1,
                    in_channels: mid_n,
                    out_channels: out_n,
                    pixels: osz * osz,
                    act: Activation::None,
                };
                project.run(
                    mid,
                    b.out_cuts.range(s),
                    b.mid_cuts.end(s) as usize,
                    out,
                    residual,
                );
            } else {
                // Inactive for stage s: zero middle slices (already 0), output slice = input slice.
                let range = b.out_cuts.range(s);
                let plane = osz * osz;
                out[range.start * plane..range.end * plane]
                    .copy_from_slice(&input[range.start * plane..range.end * plane]);
            }
            input = out;
        }
        let fs = p.final_size();
        let last = p.last_cuts();
        let (fe_n, mix_n) = (p.final_cuts.width() as usize, p.mix_cuts.width() as usize);
        let fe = Pointwise {
            w: &w.final_expand.0,
            affine: &w.final_expand.1,
            in_channels: last.width() as usize,
            out_channels: fe_n,
            pixels: fs * fs,
            act: Activation::Hswish,
        };
        fe.run(
            input,
            p.final_cuts.range(s),
            last.end(s) as usize,
            &mut cache.final_expand,
            None,
        );
        pool(
            &cache.final_expand,
            p.final_cuts.range(s),
            fs * fs,
            &mut cache.pooled,
        );
        let mix = Pointwise {
            w: &w.feature_mix.0,
            affine: &w.feature_mix.1,
            in_channels: fe_n,
            out_channels: mix_n,
            pixels: 1,
            act: Activation::Hswish,
        };
        mix.run(
            &cache.pooled,
            p.mix_cuts.range(s),
            p.final_cuts.end(s) as usize,
            &mut cache.features,
            None,
        );
        let c = p.mix_cuts.end(s) as usize;
        let head = Pointwise {
            w: &w.classifiers[s].0,
            affine: &w.classifiers[s].1,
            in_channels: c,
            out_channels: p.classes,
            pixels: 1,
            act: Activation::None,
        };
        let mut logits = vec![0.0; p.classes];
        head.run(&cache.features, 0..p.classes, c, &mut logits, None);
        logits
    }

    /// Classifies one image (`[3, R, R]` at the plan's resolution): leaves at the first exit
    /// whose confidence exceeds its threshold, always at the last.
    pub fn classify(&self, image: &[f32], thresholds: &[f32]) -> Result<Decision> {
        let stages = self.plan.stages;
        check_input(image, thresholds, &self.plan)?;
        let mut cache = self.new_cache();
        let mut scratch = Scratch::default();
        let mut per_exit = Vec::with_capacity(stages);
        for s in 0..stages {
            let logits = self.run_stage(image, &mut cache, &mut scratch, s);
            let out = exit_output(&logits);
            per_exit.push(out.clone());
            let threshold = thresholds.get(s).copied().unwrap_or(f32::NEG_INFINITY);
            if out.confidence > threshold || s + 1 == stages {
                return Ok(Decision {
                    class_index: out.class_index,
                    confidence: out.confidence,
                    exit: s + 1,
                    macs: self.cum_macs[s],
                    per_exit,
                    logits,
                });
            }
        }
        Err(Error::config("stages", "a subnet has at least one stage"))
    }

    /// Classifies a batch of images, each leaving at its own exit, spread over the machine's
    /// cores (one thread per chunk of images; sequential on wasm). Results are in input order
    /// and equal [`StageWiseCpu::classify`] image by image.
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
        #[cfg(not(target_arch = "wasm32"))]
        {
            let threads = threads.min(images.len());
            if threads > 1 {
                let chunk = images.len().div_ceil(threads);
                let parts: Vec<Result<Vec<Decision>>> = std::thread::scope(|scope| {
                    let handles: Vec<_> = images
                        .chunks(chunk)
                        .map(|part| {
                            scope.spawn(move || {
                                part.iter()
                                    .map(|x| self.classify(x, thresholds))
                                    .collect::<Result<Vec<_>>>()
                            })
                        })
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
        images
            .iter()
            .map(|x| self.classify(x, thresholds))
            .collect()
    }
}
