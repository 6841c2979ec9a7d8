//! The inner loops of the CPU kernels, written so that they vectorize: with AVX2 on x86-64
//! CPUs that have it (chosen at run time), with SIMD128 in wasm builds that enable it, plain
//! elsewhere. No fused multiply-add and a fixed summation order, so the AVX2 and plain loops
//! compute the same bits.

/// `out[c] = Σ a[i + c] · b[j + c]` over the `(i, j)` of `pairs` in order, for every
/// `c < out.len()`: a depthwise conv over channel-last data, one output pixel or one kernel tap
/// at a time. Channels run in register blocks (32, 24 or 16, 8, 4, 1).
pub fn paired_dots(out: &mut [f32], a: &[f32], b: &[f32], pairs: &[(usize, usize)]) {
    #[cfg(target_arch = "x86_64")]
    if x86::avx2() {
        // SAFETY: the CPU supports AVX2 (checked above).
        return unsafe { x86::paired_dots(out, a, b, pairs) };
    }
    paired_dots_plain(out, a, b, pairs);
}

/// [`paired_dots`] with fused multiply-adds where the CPU has them (AVX2 and FMA): faster,
/// and its last bits depend on the CPU. The inference runtime's depthwise conv.
pub fn paired_dots_fused(out: &mut [f32], a: &[f32], b: &[f32], pairs: &[(usize, usize)]) {
    #[cfg(target_arch = "x86_64")]
    if x86::avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA (checked above).
        return unsafe { x86::paired_dots_fused(out, a, b, pairs) };
    }
    paired_dots(out, a, b, pairs);
}

#[inline(always)]
fn paired_dots_plain(out: &mut [f32], a: &[f32], b: &[f32], pairs: &[(usize, usize)]) {
    paired_dots_impl::<false>(out, a, b, pairs);
}

/// Channels in register blocks of 32, then one of 24 or 16, then 8, then (`FUSED`: fused
/// multiply-adds, on AVX2) one masked block of the rest, else blocks of 4 and 1. Every lane
/// sums the pairs in the same order whatever its block.
#[inline(always)]
fn paired_dots_impl<const FUSED: bool>(
    out: &mut [f32],
    a: &[f32],
    b: &[f32],
    pairs: &[(usize, usize)],
) {
    let n = out.len();
    let mut c0 = 0;
    while c0 + 32 <= n {
        paired_block::<32, FUSED>(&mut out[c0..c0 + 32], a, b, pairs, c0);
        c0 += 32;
    }
    // The rest in one pass over the pairs where it can.
    match n - c0 {
        24..32 => {
            paired_block::<24, FUSED>(&mut out[c0..c0 + 24], a, b, pairs, c0);
            c0 += 24;
        }
        16..24 => {
            paired_block::<16, FUSED>(&mut out[c0..c0 + 16], a, b, pairs, c0);
            c0 += 16;
        }
        _ => {}
    }
    while c0 + 8 <= n {
        paired_block::<8, FUSED>(&mut out[c0..c0 + 8], a, b, pairs, c0);
        c0 += 8;
    }
    // The fused loops run on AVX2 + FMA only: the last 1–7 channels in one masked pass.
    #[cfg(target_arch = "x86_64")]
    if FUSED && c0 < n {
        // SAFETY: FUSED loops are compiled only into the AVX2 + FMA entry points of `x86`.
        return unsafe { x86::masked_tail(out, a, b, pairs, c0) };
    }
    while c0 + 4 <= n {
        paired_block::<4, FUSED>(&mut out[c0..c0 + 4], a, b, pairs, c0);
        c0 += 4;
    }
    while c0 < n {
        paired_block::<1, FUSED>(&mut out[c0..c0 + 1], a, b, pairs, c0);
        c0 += 1;
    }
}

#[inline(always)]
fn paired_block<const B: usize, const FUSED: bool>(
    out: &mut [f32],
    a: &[f32],
    b: &[f32],
    pairs: &[(usize, usize)],
    c0: usize,
) {
    let mut acc = [0f32; B];
    for &(i, j) in pairs {
        let (x, y) = (&a[i + c0..][..B], &b[j + c0..][..B]);
        for l in 0..B {
            acc[l] = if FUSED {
                x[l].mul_add(y[l], acc[l])
            } else {
                acc[l] + x[l] * y[l]
            };
        }
    }
    out.copy_from_slice(&acc);
}

/// The same loops compiled for AVX2 (and FMA).
#[cfg(target_arch = "x86_64")]
pub(crate) mod x86 {
    use std::sync::OnceLock;

    pub fn avx2() -> bool {
        static HAS: OnceLock<bool> = OnceLock::new();
        *HAS.get_or_init(|| std::arch::is_x86_feature_detected!("avx2"))
    }

    /// Whether the CPU has AVX2 and FMA.
    pub fn avx2_fma() -> bool {
        static HAS: OnceLock<bool> = OnceLock::new();
        *HAS.get_or_init(|| avx2() && std::arch::is_x86_feature_detected!("fma"))
    }

    /// A vector mask with lanes `< n` set (`n ≤ 8`), for masked loads and stores.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub fn lane_mask(n: usize) -> std::arch::x86_64::__m256i {
        use std::arch::x86_64::*;
        _mm256_cmpgt_epi32(
            _mm256_set1_epi32(n as i32),
            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
        )
    }

    /// Channels `c0 ..` (fewer than 8) of [`super::paired_dots_fused`] as one masked vector:
    /// the same fused multiply-add per lane, in the same order, as the lane loops.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn masked_tail(
        out: &mut [f32],
        a: &[f32],
        b: &[f32],
        pairs: &[(usize, usize)],
        c0: usize,
    ) {
        use std::arch::x86_64::*;
        let lanes = out.len() - c0;
        assert!(lanes < 8, "a masked tail is shorter than a vector");
        let mask = lane_mask(lanes);
        let mut acc = _mm256_setzero_ps();
        for &(i, j) in pairs {
            let (x, y) = (&a[i + c0..][..lanes], &b[j + c0..][..lanes]);
            // SAFETY: the masked loads read only the first `lanes` floats of `x` and `y`.
            unsafe {
                let x = _mm256_maskload_ps(x.as_ptr(), mask);
                let y = _mm256_maskload_ps(y.as_ptr(), mask);
                acc = _mm256_fmadd_ps(x, y, acc);
            }
        }
        // SAFETY: the masked store writes only the `lanes` floats of `out` after `c0`.
        unsafe { _mm256_maskstore_ps(out[c0..].as_mut_ptr(), mask, acc) };
    }

    #[target_feature(enable = "avx2")]
    pub unsafe fn paired_dots(out: &mut [f32], a: &[f32], b: &[f32], pairs: &[(usize, usize)]) {
        super::paired_dots_plain(out, a, b, pairs)
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn paired_dots_fused(
        out: &mut [f32],
        a: &[f32],
        b: &[f32],
        pairs: &[(usize, usize)],
    ) {
        super::paired_dots_impl::<true>(out, a, b, pairs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paired_dots_match_plain_sums() {
        // Every block size: 45 = 32 + 8 + 4 + 1, 60 = 32 + 24 + 4, 20 = 16 + 4, 3 single lanes.
        let a: Vec<f32> = (0..260).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..260).map(|i| (i as f32 * 0.11).cos()).collect();
        let pairs = [(3, 17), (90, 0), (41, 150), (7, 7)];
        for n in [45, 60, 20, 3] {
            let mut out = vec![f32::NAN; n];
            paired_dots(&mut out, &a, &b, &pairs);
            for (c, o) in out.iter().enumerate() {
                let want: f64 = pairs
                    .iter()
                    .map(|&(i, j)| f64::from(a[i + c]) * f64::from(b[j + c]))
                    .sum();
                assert!(
                    (f64::from(*o) - want).abs() < 1e-5,
                    "{n} channels, channel {c}: {o} vs {want}"
                );
            }
            let mut plain = vec![0.0; n];
            paired_dots_plain(&mut plain, &a, &b, &pairs);
            assert_eq!(out, plain, "dispatch changes the bits");
            let mut fused = vec![f32::NAN; n];
            paired_dots_fused(&mut fused, &a, &b, &pairs);
            for (f, p) in fused.iter().zip(&plain) {
                assert!((f - p).abs() <= 1e-6 * p.abs().max(1.0), "{f} vs {p}");
            }
        }
    }
}
