//! The depthwise k×k conv of one sample on the CPU (padding k/2, stride 1 or 2), f32, forward
//! and both gradients, over **channel-last** data: the fast path of the runtime and of
//! training.
//!
//! The supernet's planes are small (2 × 2 to 16 × 16 in `tiny`) and its channels many (up to
//! 384), so the vectors run along the channels: with the sample as `[h·w, c]` and the kernel as
//! `[k·k, c]`, every output value is a sum of `(kernel tap, pixel)` products, taken 32
//! channels at a time in registers ([`paired_dots`]). Products that would read the zero
//! padding are skipped (on a 2 × 2 plane a 7 × 7 kernel has at most 4 live taps per pixel).
//! [`transpose`] moves planes to and from this layout.

use crate::cpu::simd::paired_dots;

/// Shape of one sample's conv: input `h × w`, kernel `k × k` (odd), stride.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlaneConv {
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Kernel side (odd).
    pub k: usize,
    /// Stride (1 or 2).
    pub stride: usize,
}

impl PlaneConv {
    /// Output height `⌈h / stride⌉`.
    pub fn out_h(&self) -> usize {
        (self.h + 2 * (self.k / 2) - self.k) / self.stride + 1
    }

    /// Output width `⌈w / stride⌉`.
    pub fn out_w(&self) -> usize {
        (self.w + 2 * (self.k / 2) - self.k) / self.stride + 1
    }

    /// For output row (or column) `o` of an input axis `len` long, the `(tap, input index)`
    /// pairs that read inside the input.
    pub(crate) fn reads(&self, o: usize, len: usize) -> impl Iterator<Item = (usize, usize)> {
        let (s, p) = (self.stride, self.k / 2);
        (0..self.k).filter_map(move |t| {
            let i = (o * s + t).checked_sub(p)?;
            (i < len).then_some((t, i))
        })
    }

    /// For input row (or column) `i`, the `(tap, output index)` pairs whose window covers it.
    fn covers(&self, i: usize, out_len: usize) -> impl Iterator<Item = (usize, usize)> {
        let (s, p) = (self.stride, self.k / 2);
        (0..self.k).filter_map(move |t| {
            let at = (i + p).checked_sub(t)?;
            (at % s == 0 && at / s < out_len).then_some((t, at / s))
        })
    }

    /// `y [out_h·out_w, c] = x [h·w, c] ⋆ kernel [k·k, c]`; `pairs` is scratch.
    pub fn forward(
        &self,
        c: usize,
        x: &[f32],
        kernel: &[f32],
        pairs: &mut Vec<(usize, usize)>,
        y: &mut [f32],
    ) {
        let (w, k, wo) = (self.w, self.k, self.out_w());
        for (pixel, row) in y.chunks_mut(c).enumerate() {
            pairs.clear();
            for (ky, iy) in self.reads(pixel / wo, self.h) {
                for (kx, ix) in self.reads(pixel % wo, w) {
                    pairs.push(((ky * k + kx) * c, (iy * w + ix) * c));
                }
            }
            paired_dots(row, kernel, x, pairs);
        }
    }

    /// `dx [h·w, c]` from `dy [out_h·out_w, c]` and `kernel [k·k, c]`; `pairs` is scratch.
    pub fn backward_input(
        &self,
        c: usize,
        dy: &[f32],
        kernel: &[f32],
        pairs: &mut Vec<(usize, usize)>,
        dx: &mut [f32],
    ) {
        let (w, k, ho, wo) = (self.w, self.k, self.out_h(), self.out_w());
        for (pixel, row) in dx.chunks_mut(c).enumerate() {
            pairs.clear();
            for (ky, oy) in self.covers(pixel / w, ho) {
                for (kx, ox) in self.covers(pixel % w, wo) {
                    pairs.push(((ky * k + kx) * c, (oy * wo + ox) * c));
                }
            }
            paired_dots(row, kernel, dy, pairs);
        }
    }

    /// For each tap, the `(input pixel, output pixel)` offsets of its weight gradient's
    /// products at `c` channels: the same for every sample.
    pub fn weight_grad_pairs(&self, c: usize) -> Vec<Vec<(usize, usize)>> {
        let (w, k, ho, wo) = (self.w, self.k, self.out_h(), self.out_w());
        let mut taps = vec![Vec::new(); k * k];
        for oy in 0..ho {
            for (ky, iy) in self.reads(oy, self.h) {
                for ox in 0..wo {
                    for (kx, ix) in self.reads(ox, w) {
                        taps[ky * k + kx].push(((iy * w + ix) * c, (oy * wo + ox) * c));
                    }
                }
            }
        }
        taps
    }

    /// `dkernel [k·k, c] += ∂/∂kernel` of one sample, from `x [h·w, c]`, `dy [out_h·out_w, c]`
    /// and `taps` from [`weight_grad_pairs`](Self::weight_grad_pairs); `row` is scratch.
    pub fn accumulate_weight_grad(
        &self,
        c: usize,
        x: &[f32],
        dy: &[f32],
        taps: &[Vec<(usize, usize)>],
        row: &mut Vec<f32>,
        dkernel: &mut [f32],
    ) {
        row.resize(c, 0.0);
        for (pairs, acc) in taps.iter().zip(dkernel.chunks_mut(c)) {
            paired_dots(row, x, dy, pairs);
            for (d, v) in acc.iter_mut().zip(row.iter()) {
                *d += v;
            }
        }
    }
}

/// `dst [cols, rows] = srcᵀ` for `src [rows, cols]`: full 8 × 8 tiles through a register-sized
/// block (strided writes of a power-of-two plane length would otherwise fight over a few cache
/// sets), then the ragged edges element by element.
pub fn transpose(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    const T: usize = 8;
    let (rf, cf) = (rows / T * T, cols / T * T);
    for i0 in (0..rf).step_by(T) {
        for j0 in (0..cf).step_by(T) {
            let mut tile = [[0f32; T]; T];
            for (di, t) in tile.iter_mut().enumerate() {
                t.copy_from_slice(&src[(i0 + di) * cols + j0..][..T]);
            }
            for dj in 0..T {
                let d = &mut dst[(j0 + dj) * rows + i0..][..T];
                for (di, v) in d.iter_mut().enumerate() {
                    *v = tile[di][dj];
                }
            }
        }
    }
    for i in 0..rows {
        let first = if i < rf { cf } else { 0 };
        for j in first..cols {
            dst[j * rows + i] = src[i * cols + j];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selftest::random_vec;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    /// Direct f64 loops over `[c, h, w]` planes with explicit zero padding.
    fn direct(conv: &PlaneConv, c: usize, x: &[f32], kernel: &[f32]) -> Vec<f64> {
        let (h, w, k, s) = (
            conv.h as isize,
            conv.w as isize,
            conv.k,
            conv.stride as isize,
        );
        let (ho, wo, p) = (conv.out_h(), conv.out_w(), (k / 2) as isize);
        let mut y = vec![0.0; c * ho * wo];
        for ch in 0..c {
            for oy in 0..ho {
                for ox in 0..wo {
                    let mut acc = 0.0;
                    for t in 0..k * k {
                        let iy = oy as isize * s + (t / k) as isize - p;
                        let ix = ox as isize * s + (t % k) as isize - p;
                        if (0..h).contains(&iy) && (0..w).contains(&ix) {
                            let xv = x[(ch * conv.h + iy as usize) * conv.w + ix as usize];
                            acc += f64::from(kernel[ch * k * k + t]) * f64::from(xv);
                        }
                    }
                    y[(ch * ho + oy) * wo + ox] = acc;
                }
            }
        }
        y
    }

    #[test]
    fn transpose_moves_every_element() {
        for (rows, cols) in [(1, 1), (8, 8), (19, 4), (3, 21), (17, 26)] {
            let src: Vec<f32> = (0..rows * cols).map(|v| v as f32).collect();
            let mut dst = vec![f32::NAN; src.len()];
            transpose(&src, rows, cols, &mut dst);
            for i in 0..rows {
                for j in 0..cols {
                    assert_eq!(
                        dst[j * rows + i],
                        src[i * cols + j],
                        "{rows}x{cols} [{i}, {j}]"
                    );
                }
            }
        }
    }

    #[test]
    fn forward_matches_direct_loops() {
        let mut rng =
            SmallRng::seed_from_u64(crate::test_seed::fresh_seed("forward_matches_direct_loops"));
        // Odd sizes; 43 channels use a 32-block, an 8-block and three single lanes.
        for (c, h, w, k, stride) in [(43, 7, 5, 7, 2), (9, 3, 4, 5, 1), (40, 1, 6, 3, 2)] {
            let conv = PlaneConv { h, w, k, stride };
            let (hw, ohw) = (h * w, conv.out_h() * conv.out_w());
            let x = random_vec(&mut rng, c * hw);
            let kernel = random_vec(&mut rng, c * k * k);
            let (mut xc, mut kc) = (vec![0.0; x.len()], vec![0.0; kernel.len()]);
            transpose(&x, c, hw, &mut xc);
            transpose(&kernel, c, k * k, &mut kc);
            let mut yc = vec![f32::NAN; ohw * c];
            conv.forward(c, &xc, &kc, &mut Vec::new(), &mut yc);
            let mut y = vec![0.0; yc.len()];
            transpose(&yc, ohw, c, &mut y);
            let want = direct(&conv, c, &x, &kernel);
            let scale = want.iter().fold(0f64, |m, v| m.max(v.abs()));
            for (i, (got, want)) in y.iter().zip(&want).enumerate() {
                let err = (f64::from(*got) - want).abs() / scale;
                assert!(
                    err <= 1e-6,
                    "c{c} {h}x{w} k{k} s{stride} [{i}]: {got} vs {want}"
                );
            }
        }
    }
}
