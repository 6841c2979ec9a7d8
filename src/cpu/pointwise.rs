//! A 1×1 layer over channel-last rows with its epilogue fused: `y[p, c] = act(x[p, ..k] ·
//! w[c, ..k] + bias[c]) (+ res[p, c])`, the stage-wise runtime's pointwise convs, SE layers,
//! feature mix and classifiers.
//!
//! The weight is packed once, at load, into panels of [`PANEL`] output channels (`[k, PANEL]`
//! each, the last padded with zeros), so a register block of up to 6 rows × 16 channels
//! accumulates with one broadcast of `x[p, i]` per row and one panel row load per input
//! channel, and the epilogue runs on the registers before the single store. No packing of the
//! activations per call: the rows are read in place. AVX2 + FMA intrinsics where the CPU has
//! them; elsewhere (and in wasm, where SIMD128 vectorizes it) a plain loop over the same
//! blocks.

use crate::space::Activation;

/// Output channels per weight panel (two AVX2 vectors, four SIMD128 vectors).
pub(crate) const PANEL: usize = 16;

/// Rows per register block.
const ROWS: usize = 6;

/// A `[n, k]` weight and its bias packed for [`pointwise`]: `⌈n / PANEL⌉` panels of
/// `[k, PANEL]` and the bias per panel.
pub(crate) struct PackedWeight {
    data: Vec<f32>,
    bias: Vec<[f32; PANEL]>,
    n: usize,
    k: usize,
}

impl PackedWeight {
    /// Packs the row-major `[n, k]` weight `w` and the bias `[n]`.
    pub(crate) fn new(w: &[f32], bias: &[f32], n: usize, k: usize) -> Self {
        let mut data = vec![0.0; n.div_ceil(PANEL) * k * PANEL];
        for (c, row) in w.chunks_exact(k.max(1)).take(n).enumerate() {
            let panel = &mut data[(c / PANEL) * k * PANEL..][..k * PANEL];
            for (i, &v) in row.iter().enumerate() {
                panel[i * PANEL + c % PANEL] = v;
            }
        }
        let bias = bias[..n]
            .chunks(PANEL)
            .map(|b| std::array::from_fn(|l| b.get(l).copied().unwrap_or(0.0)))
            .collect();
        PackedWeight { data, bias, n, k }
    }

    /// Output channels.
    pub(crate) fn outputs(&self) -> usize {
        self.n
    }

    /// Input channels.
    pub(crate) fn inputs(&self) -> usize {
        self.k
    }
}

/// `y[p, ..n] = act(x[p, ..k] · wᵀ + bias) (+ res[p, ..n])` for `p < rows`, with `x` rows
/// `ldx` apart and `y`, `res` rows `ldy` apart (`n`, `k` from `w`). Every output sums its
/// `k` products in input order. Panics if a row runs past its slice (a bug in the caller's
/// shapes, checked before the vector loads).
#[allow(clippy::too_many_arguments)]
pub(crate) fn pointwise(
    x: &[f32],
    ldx: usize,
    w: &PackedWeight,
    act: Activation,
    rows: usize,
    y: &mut [f32],
    ldy: usize,
    res: Option<&[f32]>,
) {
    #[cfg(target_arch = "x86_64")]
    if super::simd::x86::avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA (checked above).
        return unsafe { x86::pointwise(x, ldx, w, act, rows, y, ldy, res) };
    }
    blocks(x, ldx, w, act, rows, y, ldy, res, products_plain);
}

/// [`pointwise`] with the register block's products from `products`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn blocks(
    x: &[f32],
    ldx: usize,
    w: &PackedWeight,
    act: Activation,
    rows: usize,
    y: &mut [f32],
    ldy: usize,
    res: Option<&[f32]>,
    products: impl Fn(&[&[f32]; ROWS], usize, &[f32], &mut [[f32; PANEL]; ROWS]),
) {
    let (n, k) = (w.n, w.k);
    if rows == 0 || n == 0 {
        return;
    }
    // Rows outer, panels inner: a block of rows is read from the caches once for all panels.
    let mut p = 0;
    while p < rows {
        let r = (rows - p).min(ROWS);
        let xs: [&[f32]; ROWS] = std::array::from_fn(|q| &x[(p + q.min(r - 1)) * ldx..][..k]);
        let panels = w.data.chunks_exact((k * PANEL).max(1)).zip(&w.bias);
        for (j, (panel, bias)) in panels.enumerate() {
            let c0 = j * PANEL;
            let lanes = (n - c0).min(PANEL);
            let mut acc = [[0f32; PANEL]; ROWS];
            products(&xs, r, panel, &mut acc);
            for (q, acc) in acc.iter().take(r).enumerate() {
                let at = (p + q) * ldy + c0;
                let res = res.map(|res| &res[at..at + lanes]);
                finish(&mut y[at..at + lanes], acc, bias, act, res);
            }
        }
        p += r;
    }
}

/// `out[l] = act(acc[l] + bias[l]) (+ res[l])`, the activation chosen once for the row.
#[inline(always)]
fn finish(
    out: &mut [f32],
    acc: &[f32; PANEL],
    bias: &[f32; PANEL],
    act: Activation,
    res: Option<&[f32]>,
) {
    #[inline(always)]
    fn apply(
        out: &mut [f32],
        acc: &[f32; PANEL],
        bias: &[f32; PANEL],
        res: Option<&[f32]>,
        f: impl Fn(f32) -> f32,
    ) {
        match res {
            Some(res) => {
                for (((o, &a), &b), &r) in out.iter_mut().zip(acc).zip(bias).zip(res) {
                    *o = f(a + b) + r;
                }
            }
            None => {
                for ((o, &a), &b) in out.iter_mut().zip(acc).zip(bias) {
                    *o = f(a + b);
                }
            }
        }
    }
    match act {
        Activation::None => apply(out, acc, bias, res, |v| v),
        Activation::Relu => apply(out, acc, bias, res, |v| Activation::Relu.apply_f32(v)),
        Activation::Hswish => apply(out, acc, bias, res, |v| Activation::Hswish.apply_f32(v)),
        Activation::Hsigmoid => apply(out, acc, bias, res, |v| Activation::Hsigmoid.apply_f32(v)),
    }
}

/// `acc[q][l] = Σ_i xs[q][i] · panel[i][l]` for the first `r` rows (`r ≤ ROWS`; every row of
/// `xs` is `k` long, `panel` is `[k, PANEL]`), one multiply and one add at a time.
fn products_plain(xs: &[&[f32]; ROWS], r: usize, panel: &[f32], acc: &mut [[f32; PANEL]; ROWS]) {
    for (x, acc) in xs.iter().zip(acc.iter_mut()).take(r) {
        for (&v, wi) in x.iter().zip(panel.chunks_exact(PANEL)) {
            for (a, &w) in acc.iter_mut().zip(wi) {
                *a += v * w;
            }
        }
    }
}

/// [`pointwise`] on AVX2 + FMA: the accumulators of a block of rows live in registers, the
/// epilogue is compiled for AVX2 too.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Activation, PackedWeight, PANEL, ROWS};
    use std::arch::x86_64::*;

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn pointwise(
        x: &[f32],
        ldx: usize,
        w: &PackedWeight,
        act: Activation,
        rows: usize,
        y: &mut [f32],
        ldy: usize,
        res: Option<&[f32]>,
    ) {
        super::blocks(
            x,
            ldx,
            w,
            act,
            rows,
            y,
            ldy,
            res,
            |xs, r, panel, acc| match r {
                6 => block::<6>(xs, panel, acc),
                5 => block::<5>(xs, panel, acc),
                4 => block::<4>(xs, panel, acc),
                3 => block::<3>(xs, panel, acc),
                2 => block::<2>(xs, panel, acc),
                _ => block::<1>(xs, panel, acc),
            },
        );
    }

    /// AVX2 vectors per panel row.
    const V: usize = PANEL / 8;

    /// `R` rows of a panel.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn block<const R: usize>(xs: &[&[f32]; ROWS], panel: &[f32], acc: &mut [[f32; PANEL]; ROWS]) {
        let k = panel.len() / PANEL;
        assert!(
            R <= ROWS && xs.iter().all(|x| x.len() >= k),
            "pointwise rows too short"
        );
        let (w, x) = (panel.as_ptr(), xs.map(<[f32]>::as_ptr));
        let mut sum = [[_mm256_setzero_ps(); V]; R];
        for i in 0..k {
            // SAFETY: i < k, the panel is k · PANEL long and every row at least k (checked
            // above).
            unsafe {
                let wv: [__m256; V] =
                    std::array::from_fn(|v| _mm256_loadu_ps(w.add(i * PANEL + 8 * v)));
                for q in 0..R {
                    let b = _mm256_broadcast_ss(&*x[q].add(i));
                    for v in 0..V {
                        sum[q][v] = _mm256_fmadd_ps(b, wv[v], sum[q][v]);
                    }
                }
            }
        }
        for (row, sum) in acc.iter_mut().zip(&sum) {
            for (v, &s) in sum.iter().enumerate() {
                // SAFETY: each row of `acc` is PANEL = 8 · V floats.
                unsafe { _mm256_storeu_ps(row.as_mut_ptr().add(8 * v), s) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::SmallRng, Rng, SeedableRng};

    /// Against an f64 sum per output, every activation, with and without the residual, odd
    /// sizes (every row block, full and partial panels, `k` = 1), rows strided: relative error
    /// ≤ 1e-5 of the sum of absolute products.
    #[test]
    fn pointwise_matches_an_f64_reference() {
        let mut rng = SmallRng::seed_from_u64(crate::test_seed::fresh_seed("pointwise"));
        for (rows, n, k) in [
            (1, 1, 1),
            (7, 5, 3),
            (13, 16, 17),
            (6, 33, 40),
            (29, 47, 9),
            (11, 24, 70),
            (5, 9, 54),
        ] {
            let (ldx, ldy) = (k + rng.random_range(0..4), n + rng.random_range(0..4));
            let x: Vec<f32> = (0..rows * ldx)
                .map(|_| rng.random_range(-2.0..2.0))
                .collect();
            let w: Vec<f32> = (0..n * k).map(|_| rng.random_range(-1.0..1.0)).collect();
            let bias: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
            let res: Vec<f32> = (0..rows * ldy)
                .map(|_| rng.random_range(-1.0..1.0))
                .collect();
            let packed = PackedWeight::new(&w, &bias, n, k);
            assert_eq!((packed.outputs(), packed.inputs()), (n, k));
            for act in [
                Activation::None,
                Activation::Relu,
                Activation::Hswish,
                Activation::Hsigmoid,
            ] {
                for with_res in [false, true] {
                    let mut y = vec![f32::NAN; rows * ldy];
                    let r = with_res.then_some(&res[..]);
                    pointwise(&x, ldx, &packed, act, rows, &mut y, ldy, r);
                    let mut plain = vec![f32::NAN; rows * ldy];
                    blocks(
                        &x,
                        ldx,
                        &packed,
                        act,
                        rows,
                        &mut plain,
                        ldy,
                        r,
                        products_plain,
                    );
                    for p in 0..rows {
                        for c in 0..n {
                            let (mut sum, mut mag) = (f64::from(bias[c]), bias[c].abs() as f64);
                            for i in 0..k {
                                let t = f64::from(x[p * ldx + i]) * f64::from(w[c * k + i]);
                                sum += t;
                                mag += t.abs();
                            }
                            let mut want = act.apply(sum);
                            if with_res {
                                want += f64::from(res[p * ldy + c]);
                            }
                            for (got, how) in
                                [(y[p * ldy + c], "kernel"), (plain[p * ldy + c], "plain")]
                            {
                                assert!(
                                    (f64::from(got) - want).abs() <= 1e-5 * mag.max(1.0),
                                    "{how} {act:?} res {with_res} {rows}×{n}×{k} at ({p}, {c}): {got} vs {want}"
                                );
                            }
                        }
                        // Padding columns between rows stay untouched.
                        for out in [&y, &plain] {
                            assert!(out[p * ldy + n..(p + 1) * ldy].iter().all(|v| v.is_nan()));
                        }
                    }
                }
            }
        }
    }
}
