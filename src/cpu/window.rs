//! The inference runtime's depthwise conv of one image's plane, eight channels at a time (the
//! last vector masked), with a kernel row's weights held in registers (AVX2 + FMA on x86-64).
//!
//! The pixel-at-a-time loop ([`crate::cpu::simd::paired_dots_fused`]) loads a weight vector for
//! every product, so it moves two vectors per multiply-add and the loads bound it. Here the
//! eight channels' plane is first copied into a zero-padded scratch plane (small: it stays in
//! the L1 cache), so every output pixel reads a full window without a bounds check; then each
//! kernel row's `k` weight vectors are loaded once and serve a run of up to eight output pixels
//! of a row: about one load per multiply-add. Kernel rows that fall wholly in the padding are
//! skipped; padding columns add products with zero, so the runtime takes this path only where
//! they are few and rows are long enough ([`worth_it`]). Every lane sums its
//! nonzero products in the pixel loop's order with the same fused multiply-add, so the outputs
//! equal the pixel loop's (up to the sign of a zero).

use super::depthwise::PlaneConv;

/// One image's depthwise conv: where it reads.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) struct Plane<'a> {
    /// The conv (kernel side 3, 5 or 7 for the fast path).
    pub conv: &'a PlaneConv,
    /// The kernel `[k·k, c]`.
    pub weight: &'a [f32],
    /// The conv's channels: the kernel's row length.
    pub c: usize,
    /// The image's input from the conv's first channel, pixels `width` floats apart.
    pub x: &'a [f32],
    /// Floats between neighbouring pixels, in `x` and in the output.
    pub width: usize,
}

/// `y[q·width + ch] = Σ weight · x` for every output pixel q and channel `ch < c`, with `pad`
/// as scratch; returns whether it ran: false where this CPU or kernel size has no fast path
/// (nothing written). Callers check [`worth_it`] first. Panics if a slice is too short.
pub(crate) fn plane(plane: &Plane, pad: &mut Vec<f32>, y: &mut [f32]) -> bool {
    #[cfg(target_arch = "x86_64")]
    if super::simd::x86::avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA (checked above).
        return unsafe { x86::plane(plane, pad, y) };
    }
    let _ = (plane, pad, y);
    false
}

/// Whether the fast path pays on `conv`: rows of at least [`MIN_RUN`] outputs (fewer leave the
/// multiply-adds waiting on each other) of which at most a quarter of the window columns fall
/// in the padding (on a 4 × 4 plane a 7 × 7 kernel reads 4 of its 7 columns).
pub(crate) fn worth_it(conv: &PlaneConv) -> bool {
    let wo = conv.out_w();
    let live: usize = (0..wo).map(|ox| conv.reads(ox, conv.w).count()).sum();
    wo >= MIN_RUN && 4 * live >= 3 * wo * conv.k
}

/// Fewest outputs in a row for the fast path.
const MIN_RUN: usize = 6;

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Plane;
    use crate::cpu::simd::x86::lane_mask;
    use std::arch::x86_64::*;

    /// Channels per vector.
    const LANES: usize = 8;

    /// Most output pixels of one run.
    const RUN: usize = 8;

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn plane(plane: &Plane, pad: &mut Vec<f32>, y: &mut [f32]) -> bool {
        match plane.conv.k {
            3 => runs::<3>(plane, pad, y),
            5 => runs::<5>(plane, pad, y),
            7 => runs::<7>(plane, pad, y),
            _ => return false,
        }
        true
    }

    /// The plane in eight-channel slices, each padded once and run in rows of runs.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn runs<const K: usize>(plane: &Plane, pad: &mut Vec<f32>, y: &mut [f32]) {
        let Plane {
            conv,
            weight,
            c,
            x,
            width,
        } = *plane;
        let (h, w, s, p) = (conv.h, conv.w, conv.stride, K / 2);
        let (ho, wo) = (conv.out_h(), conv.out_w());
        if c == 0 || h == 0 || w == 0 {
            return;
        }
        let pw = w + 2 * p;
        assert!(
            c <= width
                && (h * w - 1) * width + c <= x.len()
                && K * K * c <= weight.len()
                && (ho * wo - 1) * width + c <= y.len(),
            "depthwise plane out of bounds"
        );
        pad.clear();
        pad.resize((h + 2 * p) * pw * LANES, 0.0);
        for ch in (0..c).step_by(LANES) {
            let live = (c - ch).min(LANES);
            let lanes = lane_mask(live);
            // The plane's eight channels (zeros past `c`), inside a border of p zero pixels
            // (the border is never written, so it stays zero from the resize).
            for iy in 0..h {
                for ix in 0..w {
                    // SAFETY: pixel (iy, ix) is inside the plane, so its channels `ch ..
                    // c` are inside `x` (checked above); the masked load reads only those,
                    // and the store writes one vector inside the padded plane.
                    unsafe {
                        let v =
                            _mm256_maskload_ps(x.as_ptr().add((iy * w + ix) * width + ch), lanes);
                        _mm256_storeu_ps(pad.as_mut_ptr().add(((iy + p) * pw + ix + p) * LANES), v);
                    }
                }
            }
            for oy in 0..ho {
                // Kernel rows that read a real input row: padded row oy·s + ky.
                let rows = p.saturating_sub(oy * s)..K.min(h + p - oy * s);
                let mut ox = 0;
                while ox < wo {
                    let len = (wo - ox).min(RUN);
                    let run = Run {
                        weight: &weight[ch..],
                        c,
                        lanes,
                        full: live == LANES,
                        pad,
                        pw,
                        s,
                        oy,
                        ox,
                        rows: rows.clone(),
                    };
                    let out = &mut y[(oy * wo + ox) * width + ch..];
                    match len {
                        8 => run.go::<K, 8>(out, width),
                        7 => run.go::<K, 7>(out, width),
                        6 => run.go::<K, 6>(out, width),
                        5 => run.go::<K, 5>(out, width),
                        4 => run.go::<K, 4>(out, width),
                        3 => run.go::<K, 3>(out, width),
                        2 => run.go::<K, 2>(out, width),
                        _ => run.go::<K, 1>(out, width),
                    }
                    ox += len;
                }
            }
        }
    }

    /// A run of output pixels of one row, eight channels.
    struct Run<'a> {
        /// The kernel from the run's first channel, rows `c` apart.
        weight: &'a [f32],
        c: usize,
        /// The run's channels that exist (the last vector of a plane may have fewer than 8).
        lanes: __m256i,
        /// Whether all eight exist: outputs are then stored whole (a masked store costs
        /// many times a plain one on some CPUs).
        full: bool,
        /// The padded eight-channel plane, `pw` pixels a row.
        pad: &'a [f32],
        pw: usize,
        s: usize,
        oy: usize,
        ox: usize,
        /// Kernel rows to sum.
        rows: std::ops::Range<usize>,
    }

    impl Run<'_> {
        /// `R` pixels of a `K × K` kernel into `out`, pixels `width` apart.
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        fn go<const K: usize, const R: usize>(&self, out: &mut [f32], width: usize) {
            let (s, pw) = (self.s, self.pw);
            let last = (self.oy * s + self.rows.end.max(1) - 1) * pw + (self.ox + R - 1) * s + K;
            // The last vector's channels past the plane's `c` are masked off: their weights
            // read as zero and their outputs are not stored, so each row needs only its
            // channels to exist (the length of the first row covers every kernel row's).
            assert!(
                self.rows.end <= K
                    && last * LANES <= self.pad.len()
                    && (K * K - 1) * self.c < self.weight.len()
                    && (R - 1) * width + if self.full { LANES } else { 1 } <= out.len(),
                "depthwise run out of bounds"
            );
            let (wp, xp, lanes) = (self.weight.as_ptr(), self.pad.as_ptr(), self.lanes);
            let mut acc = [_mm256_setzero_ps(); R];
            for ky in self.rows.clone() {
                // SAFETY: every offset is inside the bounds asserted above; a masked load or
                // store touches only the lanes set, which exist.
                unsafe {
                    let wv: [__m256; K] = std::array::from_fn(|kx| {
                        _mm256_maskload_ps(wp.add((ky * K + kx) * self.c), lanes)
                    });
                    let row = xp.add(((self.oy * s + ky) * pw + self.ox * s) * LANES);
                    for (r, acc) in acc.iter_mut().enumerate() {
                        for (kx, &wv) in wv.iter().enumerate() {
                            let xv = _mm256_loadu_ps(row.add((r * s + kx) * LANES));
                            *acc = _mm256_fmadd_ps(wv, xv, *acc);
                        }
                    }
                }
            }
            for (r, &acc) in acc.iter().enumerate() {
                // SAFETY: inside the bounds asserted above: eight floats where all lanes
                // exist, else masked to the lanes that do.
                unsafe {
                    let at = out.as_mut_ptr().add(r * width);
                    if self.full {
                        _mm256_storeu_ps(at, acc);
                    } else {
                        _mm256_maskstore_ps(at, lanes, acc);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::simd::paired_dots_fused;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    fn fast() -> bool {
        #[cfg(target_arch = "x86_64")]
        return crate::cpu::simd::x86::avx2_fma();
        #[cfg(not(target_arch = "x86_64"))]
        false
    }

    /// The plane's outputs equal the pixel loop's on odd sizes (channels that leave a masked
    /// last vector, fewer than one vector, strides 1 and 2, every kernel size, rows of one run
    /// and of several), and nothing past a pixel's channels is written.
    #[test]
    fn planes_match_the_pixel_loop() {
        let mut rng = SmallRng::seed_from_u64(crate::test_seed::fresh_seed("window_planes"));
        for (h, w, k, stride, c, width) in [
            (16, 16, 7, 2, 21, 29),
            (8, 8, 7, 1, 40, 40),
            (4, 4, 7, 1, 19, 23),
            (14, 14, 3, 1, 16, 48),
            (13, 19, 3, 2, 8, 11),
            (9, 9, 5, 1, 33, 35),
            (5, 4, 5, 1, 17, 17),
            (8, 8, 5, 1, 6, 9),
        ] {
            let conv = PlaneConv { h, w, k, stride };
            let x: Vec<f32> = (0..h * w * width)
                .map(|_| rng.random_range(-2.0..2.0))
                .collect();
            let weight: Vec<f32> = (0..k * k * c)
                .map(|_| rng.random_range(-1.0..1.0))
                .collect();
            let (ho, wo) = (conv.out_h(), conv.out_w());
            let mut y = vec![f32::NAN; ho * wo * width];
            let plane_in = Plane {
                conv: &conv,
                weight: &weight,
                c,
                x: &x,
                width,
            };
            let ran = plane(&plane_in, &mut Vec::new(), &mut y);
            assert_eq!(ran, fast(), "{h}x{w} k{k}");
            if !ran {
                continue;
            }
            for q in 0..ho * wo {
                let mut pairs = Vec::new();
                for (ky, iy) in conv.reads(q / wo, h) {
                    for (kx, ix) in conv.reads(q % wo, w) {
                        pairs.push(((ky * k + kx) * c, (iy * w + ix) * width));
                    }
                }
                let mut want = vec![0.0; c];
                paired_dots_fused(&mut want, &weight, &x, &pairs);
                assert!(
                    y[q * width + c..(q + 1) * width].iter().all(|v| v.is_nan()),
                    "{h}x{w} k{k}: pixel {q} written past its channels"
                );
                assert_eq!(
                    y[q * width..q * width + c],
                    want[..],
                    "{h}x{w} k{k} s{stride} c{c}: pixel {q}"
                );
            }
        }
    }
}
