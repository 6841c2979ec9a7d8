//! The depthwise k×k conv of a batch on the CPU (padding k/2, stride 1 or 2), forward and
//! backward: [`PlaneConv`]'s phase-split plane kernels, planes in parallel (rayon). The weight
//! gradient runs one channel per task, so no two tasks write the same kernel.

use rayon::prelude::*;

use crate::ops::dw_plane::{PlaneConv, Scratch};

/// Shapes of one depthwise conv: `x [n, c, h, w]`, kernel `[c, k, k]`, `y [n, c, ho, wo]`.
#[derive(Clone, Copy, Debug)]
pub struct DepthwiseShape {
    /// Samples.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// One plane's conv.
    pub plane: PlaneConv,
}

impl DepthwiseShape {
    fn lens(&self) -> (usize, usize, usize) {
        let p = &self.plane;
        (p.h * p.w, p.out_h() * p.out_w(), p.k * p.k)
    }
}

/// Forward: `y [n, c, ho, wo]`.
pub fn forward(s: &DepthwiseShape, x: &[f32], kernel: &[f32]) -> Vec<f32> {
    let (hw, ohw, kk) = s.lens();
    let mut y = vec![0.0; s.n * s.c * ohw];
    if ohw == 0 || hw == 0 {
        return y;
    }
    let taps = s.plane.taps();
    y.par_chunks_mut(ohw)
        .zip(x.par_chunks(hw))
        .enumerate()
        .for_each_init(Scratch::default, |sc, (plane, (yp, xp))| {
            let kc = &kernel[(plane % s.c) * kk..][..kk];
            s.plane.forward(xp, kc, &taps, sc, yp);
        });
    y
}

/// Input gradient: `dx [n, c, h, w]` from `dy [n, c, ho, wo]`.
pub fn backward_input(s: &DepthwiseShape, dy: &[f32], kernel: &[f32]) -> Vec<f32> {
    let (hw, ohw, kk) = s.lens();
    let mut dx = vec![0.0; s.n * s.c * hw];
    if ohw == 0 || hw == 0 {
        return dx;
    }
    let taps = s.plane.taps();
    dx.par_chunks_mut(hw)
        .zip(dy.par_chunks(ohw))
        .enumerate()
        .for_each_init(Scratch::default, |sc, (plane, (dxp, dyp))| {
            let kc = &kernel[(plane % s.c) * kk..][..kk];
            s.plane.backward_input(dyp, kc, &taps, sc, dxp);
        });
    dx
}

/// Weight gradient: `dkernel [c, k, k]`, summed over the samples.
pub fn backward_weight(s: &DepthwiseShape, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let (hw, ohw, kk) = s.lens();
    let mut dk = vec![0.0; s.c * kk];
    if ohw == 0 || hw == 0 {
        return dk;
    }
    let taps = s.plane.taps();
    dk.par_chunks_mut(kk)
        .enumerate()
        .for_each_init(Scratch::default, |sc, (c, dkc)| {
            for n in 0..s.n {
                let plane = n * s.c + c;
                let (xp, dyp) = (
                    &x[plane * hw..(plane + 1) * hw],
                    &dy[plane * ohw..(plane + 1) * ohw],
                );
                s.plane.accumulate_weight_grad(xp, dyp, &taps, sc, dkc);
            }
        });
    dk
}
