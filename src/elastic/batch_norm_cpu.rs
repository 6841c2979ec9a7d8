//! Training-mode batch norm on the CPU: per-channel statistics over the batch and the plane,
//! the affine normalisation, and its gradients, on row-major `[N, C, P]` slices (P = H·W).
//! Row sums run in eight f32 lanes, and rows add up in f64.

use rayon::prelude::*;

use super::BN_EPS;

/// `[N, C, P]`: samples, channels, plane size.
#[derive(Clone, Copy, Debug)]
pub struct NormShape {
    /// Samples N.
    pub n: usize,
    /// Channels C.
    pub c: usize,
    /// Plane size P = H·W.
    pub p: usize,
}

impl NormShape {
    /// Values per channel, N·P.
    fn count(&self) -> f64 {
        (self.n * self.p) as f64
    }

    /// The N rows of channel `ch` in `t`.
    fn rows<'a>(&self, t: &'a [f32], ch: usize) -> impl Iterator<Item = &'a [f32]> + Clone {
        let s = *self;
        (0..s.n).map(move |i| &t[(i * s.c + ch) * s.p..][..s.p])
    }
}

/// Σ f(a_j, b_j) in eight lanes (vectorisable).
fn lane_sum(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (xa, xb) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += f(xa[l], xb[l]);
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(&x, &y)| f(x, y)).sum();
    acc.iter().sum::<f32>() + tail
}

/// Per-channel mean and biased variance (two passes).
pub fn stats(s: &NormShape, x: &[f32]) -> (Vec<f32>, Vec<f32>) {
    (0..s.c)
        .into_par_iter()
        .map(|ch| {
            let rows = s.rows(x, ch);
            let sum: f64 = rows
                .clone()
                .map(|r| f64::from(lane_sum(r, r, |v, _| v)))
                .sum();
            let mean = (sum / s.count()) as f32;
            let sq: f64 = rows
                .map(|r| f64::from(lane_sum(r, r, |v, _| (v - mean) * (v - mean))))
                .sum();
            (mean, (sq / s.count()) as f32)
        })
        .unzip()
}

/// `out[i, ch, :] = a[ch] · u[i, ch, :] + b[ch] · v[i, ch, :] + k[ch]`, samples in parallel.
fn per_channel(s: &NormShape, u: &[f32], v: &[f32], coef: &[[f32; 3]]) -> Vec<f32> {
    let mut out = vec![0f32; u.len()];
    let block = s.c * s.p;
    out.par_chunks_mut(block.max(1))
        .zip(u.par_chunks(block.max(1)))
        .zip(v.par_chunks(block.max(1)))
        .for_each(|((o, u), v)| {
            for (ch, [a, b, k]) in coef.iter().enumerate() {
                let r = ch * s.p..(ch + 1) * s.p;
                for ((o, &u), &v) in o[r.clone()].iter_mut().zip(&u[r.clone()]).zip(&v[r]) {
                    *o = a * u + b * v + k;
                }
            }
        });
    out
}

/// `y = γ (x − mean) / √(var + ε) + β` over batch statistics; returns `(y, mean, var)`.
pub fn forward(
    s: &NormShape,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (mean, var) = stats(s, x);
    let coef: Vec<[f32; 3]> = (0..s.c)
        .map(|ch| {
            let scale = gamma[ch] / (f64::from(var[ch]) + BN_EPS).sqrt() as f32;
            [scale, 0.0, beta[ch] - mean[ch] * scale]
        })
        .collect();
    (per_channel(s, x, x, &coef), mean, var)
}

/// Gradients `(dx, dγ, dβ)` of [`forward`] from `dy`, given the forward's `mean` and `var`:
/// `dβ = Σ dy`, `dγ = Σ dy · x̂`, `dx = γ/σ · (dy − dβ/M − x̂ · dγ/M)` with `x̂ = (x − mean)/σ`,
/// σ = √(var + ε), M = N·P.
pub fn backward(
    s: &NormShape,
    x: &[f32],
    gamma: &[f32],
    mean: &[f32],
    var: &[f32],
    dy: &[f32],
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let inv: Vec<f32> = var
        .iter()
        .map(|&v| (1.0 / (f64::from(v) + BN_EPS).sqrt()) as f32)
        .collect();
    let (dbeta, dgamma): (Vec<f32>, Vec<f32>) = (0..s.c)
        .into_par_iter()
        .map(|ch| {
            let m = mean[ch];
            let (mut sum, mut cross) = (0f64, 0f64);
            for (g, xr) in s.rows(dy, ch).zip(s.rows(x, ch)) {
                sum += f64::from(lane_sum(g, g, |v, _| v));
                cross += f64::from(lane_sum(g, xr, |g, x| g * (x - m)));
            }
            (sum as f32, (cross * f64::from(inv[ch])) as f32)
        })
        .unzip();
    let count = s.count() as f32;
    let coef: Vec<[f32; 3]> = (0..s.c)
        .map(|ch| {
            let a = gamma[ch] * inv[ch];
            let c2 = inv[ch] * dgamma[ch] / count;
            // dx = a·dy − a·c2·x + a·(c2·mean − dβ/M)
            [a, -a * c2, a * (c2 * mean[ch] - dbeta[ch] / count)]
        })
        .collect();
    (per_channel(s, dy, x, &coef), dgamma, dbeta)
}
