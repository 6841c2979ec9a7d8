//! The stage-masked 1×1 conv on the CPU, forward and backward, on the `gemm` crate.
//!
//! With output cuts `o_0 … o_S` and input cuts `i_0 … i_S`, output channel o of stage s reads
//! input channels `0 .. i_{s+1}` only (DESIGN §2). Each direction is a few dense GEMMs over
//! those stage blocks, so the zero blocks of the mask cost nothing:
//! - forward: `Y[o_s..o_{s+1}] = W[o_s..o_{s+1}, ..i_{s+1}] · X[..i_{s+1}]`;
//! - input gradient: `dX[i_t..i_{t+1}] = W[o_t.., i_t..i_{t+1}]ᵀ · dY[o_t..]`;
//! - weight gradient: `dW[o_s..o_{s+1}, ..i_{s+1}] = Σ_n dY_n[o_s..o_{s+1}] · X_n[..i_{s+1}]ᵀ`,
//!   zero elsewhere.
//!
//! Tensors are NCHW with P = H·W pixels per channel; samples run in parallel (rayon).

use rayon::prelude::*;

use crate::cpu::matmul::{matmul, View};

/// Shapes of one masked 1×1 conv: `x [n, i, p]`, `w [o, i]`, `y [n, o, p]`, with the stage
/// cuts of both axes (same number of points, last points `o` and `i`).
#[derive(Clone, Copy, Debug)]
pub struct PointwiseShape<'a> {
    /// Samples.
    pub n: usize,
    /// Pixels per channel.
    pub p: usize,
    /// Output cut points `o_0 = 0 … o_S = O`.
    pub out_cuts: &'a [u32],
    /// Input cut points `i_0 = 0 … i_S = I`.
    pub in_cuts: &'a [u32],
}

impl PointwiseShape<'_> {
    fn o(&self) -> usize {
        self.out_cuts.last().copied().unwrap_or(0) as usize
    }

    fn i(&self) -> usize {
        self.in_cuts.last().copied().unwrap_or(0) as usize
    }

    fn stages(&self) -> usize {
        self.out_cuts.len().saturating_sub(1)
    }

    /// Stage `st`'s output rows `o0..o1`, input channels `i0..i1`, and its rows' reach
    /// `lim = i1` (they read input channels `0..lim`); `from = o0` is where the rows that
    /// read stage `st`'s inputs begin.
    fn block(&self, st: usize) -> (usize, usize, usize, usize) {
        let c = |points: &[u32], j: usize| points[j] as usize;
        (
            c(self.out_cuts, st),
            c(self.out_cuts, st + 1),
            c(self.in_cuts, st),
            c(self.in_cuts, st + 1),
        )
    }
}

/// Forward: `y [n, o, p]`.
pub fn forward(s: &PointwiseShape, x: &[f32], w: &[f32]) -> Vec<f32> {
    let (o, i, p) = (s.o(), s.i(), s.p);
    let mut y = vec![0.0; s.n * o * p];
    if p == 0 {
        return y;
    }
    y.par_chunks_mut(o * p)
        .zip(x.par_chunks(i * p))
        .for_each(|(yn, xn)| {
            for st in 0..s.stages() {
                let (o0, o1, _, lim) = s.block(st);
                matmul(
                    &mut yn[o0 * p..o1 * p],
                    p,
                    false,
                    View::block(w, o0 * i, o1 - o0, lim, i),
                    View::block(xn, 0, lim, p, p),
                );
            }
        });
    y
}

/// Input gradient: `dx [n, i, p]` from `dy [n, o, p]`.
pub fn backward_input(s: &PointwiseShape, dy: &[f32], w: &[f32]) -> Vec<f32> {
    let (o, i, p) = (s.o(), s.i(), s.p);
    let mut dx = vec![0.0; s.n * i * p];
    if p == 0 {
        return dx;
    }
    dx.par_chunks_mut(i * p)
        .zip(dy.par_chunks(o * p))
        .for_each(|(dxn, dyn_)| {
            for st in 0..s.stages() {
                let (from, _, i0, i1) = s.block(st);
                matmul(
                    &mut dxn[i0 * p..i1 * p],
                    p,
                    false,
                    View::block(w, from * i + i0, o - from, i1 - i0, i).t(),
                    View::block(dyn_, from * p, o - from, p, p),
                );
            }
        });
    dx
}

/// Weight gradient: `dw [o, i]`, zero where the mask is.
pub fn backward_weight(s: &PointwiseShape, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let (o, i, p) = (s.o(), s.i(), s.p);
    if p == 0 || s.n == 0 {
        return vec![0.0; o * i];
    }
    let threads = rayon::current_num_threads().max(1);
    let per = s.n.div_ceil(threads);
    x.par_chunks(per * i * p)
        .zip(dy.par_chunks(per * o * p))
        .map(|(xs, dys)| {
            let mut dw = vec![0.0; o * i];
            for (xn, dyn_) in xs.chunks(i * p).zip(dys.chunks(o * p)) {
                for st in 0..s.stages() {
                    let (o0, o1, _, lim) = s.block(st);
                    matmul(
                        &mut dw[o0 * i..],
                        i,
                        true,
                        View::block(dyn_, o0 * p, o1 - o0, p, p),
                        View::block(xn, 0, lim, p, p).t(),
                    );
                }
            }
            dw
        })
        .reduce(
            || vec![0.0; o * i],
            |mut a, b| {
                a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
                a
            },
        )
}
