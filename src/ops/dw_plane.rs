//! The depthwise k×k conv of one channel plane (padding k/2, stride 1 or 2) on the CPU, f32,
//! forward and both gradients: the fast path of the runtime and of training.
//!
//! Planes are small (at most 16 × 16 in `tiny`), so loops over rows would be all overhead.
//! Instead the zero-padded plane is split into its s × s *phases* (`phase[a][b][r][c] =
//! xpad[r·s + a][c·s + b]`), all `wq` columns wide. Output pixel (oy, ox) of tap (ky, kx) then
//! reads phase `(ky mod s, kx mod s)` at `(oy + ky/s, ox + kx/s)`: with the output laid out `wq`
//! wide too, every tap is **one contiguous multiply-add over the whole plane** at a constant
//! offset ([`crate::simd::axpy`]). The extra output columns are computed and dropped (forward)
//! or held at zero (backward).

use crate::simd::{axpy, dot};

/// Shape of one plane's conv: input `h × w`, kernel `k × k` (odd), stride.
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

/// Reusable buffers of one worker.
#[derive(Default, Debug)]
pub struct Scratch {
    phases: Vec<f32>,
    ext: Vec<f32>,
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

    /// Width of a phase and of the extended output rows.
    fn wq(&self) -> usize {
        (self.w + 2 * (self.k / 2)).div_ceil(self.stride)
    }

    /// Rows of a phase: every tap's read of the extended output stays inside.
    fn phase_len(&self) -> usize {
        (self.out_h() + (self.k - 1) / self.stride + 1) * self.wq()
    }

    /// Length of the extended output, `out_h × wq`.
    fn ext_len(&self) -> usize {
        self.out_h() * self.wq()
    }

    /// For every tap `t = ky·k + kx`, where its reads start in the phases:
    /// `phase(ky mod s, kx mod s) + (ky / s)·wq + kx / s`.
    pub fn taps(&self) -> Vec<usize> {
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

    /// For input row `iy`, calls `f(at, ix0)` for each of the s column phases: the input
    /// columns `ix0, ix0 + s, …` sit at `phases[at ..]`, one apart.
    fn for_row(&self, iy: usize, mut f: impl FnMut(usize, usize)) {
        for ix0 in 0..self.stride.min(self.w) {
            f(self.phase_index(iy, ix0), ix0);
        }
    }

    /// Writes the zero-padded phases of `plane` into `out`.
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

    /// Reads a plane back out of its phases.
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

    /// Writes `dy` (`out_h × out_w`) into `out`, `wq` wide with zero extra columns.
    fn extend(&self, dy: &[f32], out: &mut Vec<f32>) {
        let (wo, wq) = (self.out_w(), self.wq());
        out.clear();
        out.resize(self.ext_len(), 0.0);
        for (row, src) in out.chunks_mut(wq).zip(dy.chunks(wo)) {
            row[..wo].copy_from_slice(src);
        }
    }

    /// `y (out_h × out_w) = x (h × w) ⋆ kernel (k × k)`; `taps` from [`taps`](Self::taps).
    pub fn forward(
        &self,
        x: &[f32],
        kernel: &[f32],
        taps: &[usize],
        sc: &mut Scratch,
        y: &mut [f32],
    ) {
        let (wo, wq, el) = (self.out_w(), self.wq(), self.ext_len());
        self.split(x, &mut sc.phases);
        sc.ext.clear();
        sc.ext.resize(el, 0.0);
        for (&wv, &at) in kernel.iter().zip(taps) {
            axpy(&mut sc.ext, wv, &sc.phases[at..at + el]);
        }
        for (dst, src) in y.chunks_mut(wo).zip(sc.ext.chunks(wq)) {
            dst.copy_from_slice(&src[..wo]);
        }
    }

    /// `dx (h × w)` from `dy (out_h × out_w)`.
    pub fn backward_input(
        &self,
        dy: &[f32],
        kernel: &[f32],
        taps: &[usize],
        sc: &mut Scratch,
        dx: &mut [f32],
    ) {
        let el = self.ext_len();
        self.extend(dy, &mut sc.ext);
        sc.phases.clear();
        sc.phases
            .resize(self.stride * self.stride * self.phase_len(), 0.0);
        for (&wv, &at) in kernel.iter().zip(taps) {
            axpy(&mut sc.phases[at..at + el], wv, &sc.ext);
        }
        self.gather(&sc.phases, dx);
    }

    /// `dk (k × k) += ∂/∂kernel` of this plane's output gradient `dy`.
    pub fn accumulate_weight_grad(
        &self,
        x: &[f32],
        dy: &[f32],
        taps: &[usize],
        sc: &mut Scratch,
        dk: &mut [f32],
    ) {
        let el = self.ext_len();
        self.split(x, &mut sc.phases);
        self.extend(dy, &mut sc.ext);
        for (d, &at) in dk.iter_mut().zip(taps) {
            *d += dot(&sc.ext, &sc.phases[at..at + el]);
        }
    }
}
