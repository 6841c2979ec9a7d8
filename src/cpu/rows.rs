//! Row kernels of channel-last activations (`[pixel, channel]` rows): the epilogue of a
//! depthwise conv and the global average pool. The stage-wise CPU runtime's
//! building blocks; `#[inline(always)]` so that they compile into its AVX2 + FMA stage.

use std::ops::Range;

use crate::space::Activation;

/// `row = act(row + bias) (+ res)`, the activation chosen once for the whole row so that the
/// loop vectorizes.
#[inline(always)]
pub(crate) fn epilogue(row: &mut [f32], bias: &[f32], act: Activation, res: Option<&[f32]>) {
    #[inline(always)]
    fn apply(row: &mut [f32], bias: &[f32], res: Option<&[f32]>, f: impl Fn(f32) -> f32) {
        match res {
            Some(r) => {
                for ((v, &b), &r) in row.iter_mut().zip(bias).zip(r) {
                    *v = f(*v + b) + r;
                }
            }
            None => {
                for (v, &b) in row.iter_mut().zip(bias) {
                    *v = f(*v + b);
                }
            }
        }
    }
    match act {
        Activation::None => apply(row, bias, res, |v| Activation::None.apply_f32(v)),
        Activation::Relu => apply(row, bias, res, |v| Activation::Relu.apply_f32(v)),
        Activation::Hswish => apply(row, bias, res, |v| Activation::Hswish.apply_f32(v)),
        Activation::Hsigmoid => apply(row, bias, res, |v| Activation::Hsigmoid.apply_f32(v)),
    }
}

/// `pooled[i, cols] = mean over pixels of x[i, pixel, cols]` for `images` images of `pixels`
/// pixels, `width` channels.
#[inline(always)]
pub(crate) fn pool(
    x: &[f32],
    images: usize,
    pixels: usize,
    width: usize,
    cols: Range<usize>,
    pooled: &mut [f32],
) {
    let scale = 1.0 / pixels as f32;
    for i in 0..images {
        let acc = &mut pooled[i * width + cols.start..i * width + cols.end];
        acc.fill(0.0);
        for p in 0..pixels {
            let row = &x[(i * pixels + p) * width + cols.start..][..cols.len()];
            for (a, &v) in acc.iter_mut().zip(row) {
                *a += v;
            }
        }
        acc.iter_mut().for_each(|a| *a *= scale);
    }
}
