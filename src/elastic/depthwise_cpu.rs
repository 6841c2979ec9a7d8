//! The depthwise k×k conv on the CPU (padding k/2, stride 1 or 2), forward and backward.
//!
//! Planes are small (at most 16 × 16 in `tiny`), so loops over rows would be all overhead.
//! Instead each plane is split into its s × s *phases* (`phase[a][b][r][c] =
//! xpad[r·s + a][c·s + b]`, zero-padded), all `Wq` columns wide. Output pixel (oy, ox) of tap
//! (ky, kx) then reads phase `(ky mod s, kx mod s)` at `(oy + ky/s, ox + kx/s)`: with the output
//! laid out `Wq` wide too, every tap is **one contiguous multiply-add over the whole plane**
//! at a constant offset, which the compiler vectorizes. The extra output columns are computed
//! and dropped (forward) or held at zero (backward).
//!
//! Planes run in parallel (rayon); the weight gradient runs one channel per task, so no two
//! tasks write the same kernel.

use rayon::prelude::*;

/// Shapes of one depthwise conv: `x [n, c, h, w]`, kernel `[c, k, k]`, `y [n, c, ho, wo]`.
#[derive(Clone, Copy, Debug)]
pub struct DepthwiseShape {
    /// Samples.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Kernel side (odd).
    pub k: usize,
    /// Stride (1 or 2).
    pub stride: usize,
}

impl DepthwiseShape {
    /// Output height `⌈h / stride⌉`.
    pub fn out_h(&self) -> usize {
        (self.h + 2 * (self.k / 2) - self.k) / self.stride + 1
    }

    /// Output width `⌈w / stride⌉`.
    pub fn out_w(&self) -> usize {
        (self.w + 2 * (self.k / 2) - self.k) / self.stride + 1
    }

    /// Width of a phase and of the extended output rows.
    fn wq(&self) -> usize {
        (self.w + 2 * (self.k / 2)).div_ceil(self.stride)
    }

    /// Rows of a phase: every tap's read of the extended output stays inside.
    fn hq(&self) -> usize {
        self.out_h() + (self.k - 1) / self.stride + 1
    }

    fn phase_len(&self) -> usize {
        self.hq() * self.wq()
    }

    /// Length of the extended output `out_h × wq`.
    fn ext_len(&self) -> usize {
        self.out_h() * self.wq()
    }

    /// For every tap `t = ky·k + kx`, where its reads start in the phases:
    /// `phase(ky mod s, kx mod s) + (ky / s)·wq + kx / s`.
    fn taps(&self) -> Vec<usize> {
        let (s, wq, pl) = (self.stride, self.wq(), self.phase_len());
        (0..self.k * self.k)
            .map(|t| {
                let (ky, kx) = (t / self.k, t % self.k);
                ((ky % s) * s + kx % s) * pl + (ky / s) * wq + kx / s
            })
            .collect()
    }

    /// Where input pixel (iy, ix) lives in the phases.
    fn phase_index(&self, iy: usize, ix: usize) -> usize {
        let (pad, s) = (self.k / 2, self.stride);
        let (py, px) = (iy + pad, ix + pad);
        ((py % s) * s + px % s) * self.phase_len() + (py / s) * self.wq() + px / s
    }

    /// Writes the zero-padded phases of `plane` into `out` (resized to s² phases).
    fn split(&self, plane: &[f32], out: &mut Vec<f32>) {
        out.clear();
        out.resize(self.stride * self.stride * self.phase_len(), 0.0);
        for (iy, row) in plane.chunks(self.w).enumerate() {
            self.for_row(iy, |at, ix0| {
                if self.stride == 1 {
                    out[at..at + row.len()].copy_from_slice(row);
                } else {
                    for (o, v) in out[at..].iter_mut().zip(row.iter().skip(ix0).step_by(2)) {
                        *o = *v;
                    }
                }
            });
        }
    }

    /// Reads the input gradient of `plane` back out of the phases.
    fn gather(&self, phases: &[f32], plane: &mut [f32]) {
        for (iy, row) in plane.chunks_mut(self.w).enumerate() {
            self.for_row(iy, |at, ix0| {
                if self.stride == 1 {
                    row.copy_from_slice(&phases[at..at + row.len()]);
                } else {
                    for (v, p) in row.iter_mut().skip(ix0).step_by(2).zip(&phases[at..]) {
                        *v = *p;
                    }
                }
            });
        }
    }

    /// For input row `iy`, calls `f(at, ix0)` for each of the s column phases: the input
    /// columns `ix0, ix0 + s, …` sit at `phases[at ..]`, one apart.
    fn for_row(&self, iy: usize, mut f: impl FnMut(usize, usize)) {
        for ix0 in 0..self.stride.min(self.w) {
            f(self.phase_index(iy, ix0), ix0);
        }
    }

    /// Writes `dy` (`out_h × out_w`) into `out`, `wq` wide with zero extra columns.
    fn extend(&self, dy: &[f32], out: &mut Vec<f32>) {
        let (wo, wq) = (self.out_w(), self.wq());
        out.clear();
        out.resize(self.ext_len(), 0.0);
        for (row, src) in out.chunks_mut(wq).zip(dy.chunks(wo)) {
            row[..wo].copy_from_slice(src);
        }
    }
}

/// `y += a·x`, with AVX2 + FMA when the CPU has them (checked once at run time).
fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if simd::avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA (checked above).
        return unsafe { simd::axpy_avx2(y, a, x) };
    }
    axpy_plain(y, a, x);
}

#[inline(always)]
fn axpy_plain(y: &mut [f32], a: f32, x: &[f32]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y = a.mul_add(*x, *y);
    }
}

/// `Σ a·b` over the shorter length, with AVX2 + FMA when the CPU has them.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if simd::avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA (checked above).
        return unsafe { simd::dot_avx2(a, b) };
    }
    dot_plain(a, b)
}

/// Eight independent partial sums, so the loop vectorizes.
#[inline(always)]
fn dot_plain(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ac.zip(bc) {
        for l in 0..8 {
            acc[l] = x[l].mul_add(y[l], acc[l]);
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// The same loops compiled for AVX2 + FMA, chosen at run time.
#[cfg(target_arch = "x86_64")]
mod simd {
    use std::sync::OnceLock;

    pub fn avx2_fma() -> bool {
        static HAS: OnceLock<bool> = OnceLock::new();
        *HAS.get_or_init(|| {
            std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
        })
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn axpy_avx2(y: &mut [f32], a: f32, x: &[f32]) {
        super::axpy_plain(y, a, x)
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
        super::dot_plain(a, b)
    }
}

/// Scratch buffers of one worker.
#[derive(Default)]
struct Scratch {
    phases: Vec<f32>,
    ext: Vec<f32>,
}

/// Forward: `y [n, c, ho, wo]`.
pub fn forward(s: &DepthwiseShape, x: &[f32], kernel: &[f32]) -> Vec<f32> {
    let (hw, ohw, kk) = (s.h * s.w, s.out_h() * s.out_w(), s.k * s.k);
    let mut y = vec![0.0; s.n * s.c * ohw];
    if ohw == 0 || hw == 0 {
        return y;
    }
    let (wo, wq, el) = (s.out_w(), s.wq(), s.ext_len());
    let taps = s.taps();
    y.par_chunks_mut(ohw)
        .zip(x.par_chunks(hw))
        .enumerate()
        .for_each_init(Scratch::default, |sc, (plane, (yp, xp))| {
            let kc = &kernel[(plane % s.c) * kk..][..kk];
            s.split(xp, &mut sc.phases);
            sc.ext.clear();
            sc.ext.resize(el, 0.0);
            for (&wv, &at) in kc.iter().zip(&taps) {
                axpy(&mut sc.ext, wv, &sc.phases[at..at + el]);
            }
            for (dst, src) in yp.chunks_mut(wo).zip(sc.ext.chunks(wq)) {
                dst.copy_from_slice(&src[..wo]);
            }
        });
    y
}

/// Input gradient: `dx [n, c, h, w]` from `dy [n, c, ho, wo]`.
pub fn backward_input(s: &DepthwiseShape, dy: &[f32], kernel: &[f32]) -> Vec<f32> {
    let (hw, ohw, kk) = (s.h * s.w, s.out_h() * s.out_w(), s.k * s.k);
    let mut dx = vec![0.0; s.n * s.c * hw];
    if ohw == 0 || hw == 0 {
        return dx;
    }
    let el = s.ext_len();
    let phases_len = s.stride * s.stride * s.phase_len();
    let taps = s.taps();
    dx.par_chunks_mut(hw)
        .zip(dy.par_chunks(ohw))
        .enumerate()
        .for_each_init(Scratch::default, |sc, (plane, (dxp, dyp))| {
            let kc = &kernel[(plane % s.c) * kk..][..kk];
            s.extend(dyp, &mut sc.ext);
            sc.phases.clear();
            sc.phases.resize(phases_len, 0.0);
            for (&wv, &at) in kc.iter().zip(&taps) {
                axpy(&mut sc.phases[at..at + el], wv, &sc.ext);
            }
            s.gather(&sc.phases, dxp);
        });
    dx
}

/// Weight gradient: `dkernel [c, k, k]`, summed over the samples.
pub fn backward_weight(s: &DepthwiseShape, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let (hw, ohw, kk) = (s.h * s.w, s.out_h() * s.out_w(), s.k * s.k);
    let mut dk = vec![0.0; s.c * kk];
    if ohw == 0 || hw == 0 {
        return dk;
    }
    let el = s.ext_len();
    let taps = s.taps();
    dk.par_chunks_mut(kk)
        .enumerate()
        .for_each_init(Scratch::default, |sc, (c, dkc)| {
            for n in 0..s.n {
                let plane = n * s.c + c;
                s.split(&x[plane * hw..(plane + 1) * hw], &mut sc.phases);
                s.extend(&dy[plane * ohw..(plane + 1) * ohw], &mut sc.ext);
                for (d, &at) in dkc.iter_mut().zip(&taps) {
                    *d += dot(&sc.ext, &sc.phases[at..at + el]);
                }
            }
        });
    dk
}
