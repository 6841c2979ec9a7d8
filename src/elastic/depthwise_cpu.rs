//! The depthwise k×k conv of a batch on the CPU (padding k/2, stride 1 or 2), forward and
//! backward: each sample moved channel-last and run through [`PlaneConv`]'s channel-vector
//! kernels, samples in parallel (rayon). The weight gradient sums fixed groups of samples and
//! then the groups in order, so its bits do not depend on the thread count.

use rayon::prelude::*;

use crate::cpu::depthwise::{transpose, PlaneConv};

/// Shapes of one depthwise conv: `x [n, c, h, w]`, kernel `[c, k, k]`, `y [n, c, ho, wo]`.
#[derive(Clone, Copy, Debug)]
pub struct DepthwiseShape {
    /// Samples.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// One sample's conv.
    pub plane: PlaneConv,
}

/// Samples per group of the weight gradient's partial sums.
const GROUP: usize = 4;

/// Reusable buffers of one worker.
#[derive(Default)]
struct Scratch {
    /// A channel-last operand.
    a: Vec<f32>,
    /// A channel-last operand or result.
    b: Vec<f32>,
    /// Offsets of one output value's products.
    pairs: Vec<(usize, usize)>,
    /// One tap's weight-gradient sums over the channels.
    row: Vec<f32>,
}

impl DepthwiseShape {
    fn lens(&self) -> (usize, usize, usize) {
        let p = &self.plane;
        (p.h * p.w, p.out_h() * p.out_w(), p.k * p.k)
    }

    /// Nothing to compute (and nothing to divide by).
    fn empty(&self) -> bool {
        let (hw, ohw, _) = self.lens();
        hw == 0 || ohw == 0 || self.c == 0
    }
}

/// Copies `x [c, len]` into `out` as `[len, c]`.
fn channel_last(x: &[f32], c: usize, out: &mut Vec<f32>) {
    out.clear();
    out.resize(x.len(), 0.0);
    transpose(x, c, x.len() / c, out);
}

/// Forward: `y [n, c, ho, wo]`.
pub fn forward(s: &DepthwiseShape, x: &[f32], kernel: &[f32]) -> Vec<f32> {
    let (hw, ohw, _) = s.lens();
    let mut y = vec![0.0; s.n * s.c * ohw];
    if s.empty() {
        return y;
    }
    let mut kt = Vec::new();
    channel_last(kernel, s.c, &mut kt);
    y.par_chunks_mut(s.c * ohw)
        .zip(x.par_chunks(s.c * hw))
        .for_each_init(Scratch::default, |sc, (ys, xs)| {
            channel_last(xs, s.c, &mut sc.a);
            sc.b.resize(ohw * s.c, 0.0);
            s.plane.forward(s.c, &sc.a, &kt, &mut sc.pairs, &mut sc.b);
            transpose(&sc.b, ohw, s.c, ys);
        });
    y
}

/// Input gradient: `dx [n, c, h, w]` from `dy [n, c, ho, wo]`.
pub fn backward_input(s: &DepthwiseShape, dy: &[f32], kernel: &[f32]) -> Vec<f32> {
    let (hw, ohw, _) = s.lens();
    let mut dx = vec![0.0; s.n * s.c * hw];
    if s.empty() {
        return dx;
    }
    let mut kt = Vec::new();
    channel_last(kernel, s.c, &mut kt);
    dx.par_chunks_mut(s.c * hw)
        .zip(dy.par_chunks(s.c * ohw))
        .for_each_init(Scratch::default, |sc, (dxs, dys)| {
            channel_last(dys, s.c, &mut sc.a);
            sc.b.resize(hw * s.c, 0.0);
            s.plane
                .backward_input(s.c, &sc.a, &kt, &mut sc.pairs, &mut sc.b);
            transpose(&sc.b, hw, s.c, dxs);
        });
    dx
}

/// Weight gradient: `dkernel [c, k, k]`, summed over the samples.
pub fn backward_weight(s: &DepthwiseShape, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let (hw, ohw, kk) = s.lens();
    let mut dk = vec![0.0; s.c * kk];
    if s.empty() {
        return dk;
    }
    let taps = s.plane.weight_grad_pairs(s.c);
    // Per group of samples, `[k·k, c]` partial sums.
    let partials: Vec<Vec<f32>> = x
        .par_chunks(GROUP * s.c * hw)
        .zip(dy.par_chunks(GROUP * s.c * ohw))
        .map_init(Scratch::default, |sc, (xg, dyg)| {
            let mut part = vec![0.0; kk * s.c];
            for (xs, dys) in xg.chunks(s.c * hw).zip(dyg.chunks(s.c * ohw)) {
                channel_last(xs, s.c, &mut sc.a);
                channel_last(dys, s.c, &mut sc.b);
                s.plane
                    .accumulate_weight_grad(s.c, &sc.a, &sc.b, &taps, &mut sc.row, &mut part);
            }
            part
        })
        .collect();
    let mut sum = vec![0.0; kk * s.c];
    for part in &partials {
        for (d, v) in sum.iter_mut().zip(part) {
            *d += v;
        }
    }
    transpose(&sum, kk, s.c, &mut dk);
    dk
}
