//! The elastic ops composed of plain burn tensor ops: the reference the custom ops are tested
//! against (and the supernet's pass before they existed).

use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Tensor, TensorData};

use super::StageMask;
use super::BN_EPS;

/// The 0/1 mask `[O, I]` of `mask` on `like`'s device.
pub fn mask_tensor(mask: &StageMask, like: &Tensor<2>) -> Tensor<2> {
    let shape = [mask.out_width(), mask.in_width()];
    Tensor::from_data(
        TensorData::new(mask.keep_matrix(false), shape),
        &like.device(),
    )
}

/// Masked 1×1 conv as `conv2d` with the weight multiplied by the 0/1 mask.
pub fn pointwise(x: Tensor<4>, w: Tensor<2>, mask: &StageMask) -> Tensor<4> {
    let [o, i] = w.dims();
    let w = w.clone() * mask_tensor(mask, &w);
    conv2d(
        x,
        w.reshape([o, i, 1, 1]),
        None,
        ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
    )
}

/// Depthwise conv as a grouped `conv2d` (one group per channel), padding k/2.
pub fn depthwise(x: Tensor<4>, kernel: Tensor<3>, stride: usize) -> Tensor<4> {
    let [c, k, _] = kernel.dims();
    conv2d(
        x,
        kernel.reshape([c, 1, k, k]),
        None,
        ConvOptions::new([stride, stride], [k / 2, k / 2], [1, 1], c),
    )
}

/// Batch norm over batch statistics as burn ops: `(y, mean, var)`, biased variance.
pub fn batch_norm(
    x: Tensor<4>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
) -> (Tensor<4>, Tensor<1>, Tensor<1>) {
    let [n, c, h, w] = x.dims();
    let flat = x.clone().swap_dims(0, 1).reshape([c, n * h * w]);
    let (var, mean) = flat.var_mean_bias(1);
    let (mean, var) = (mean.reshape([c]), var.reshape([c]));
    let y = normalize(x, gamma, beta, mean.clone(), var.clone());
    (y, mean, var)
}

/// `γ (x − mean) / √(var + ε) + β` per channel of `x [N, C, H, W]`, given the statistics.
pub fn normalize(
    x: Tensor<4>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    mean: Tensor<1>,
    var: Tensor<1>,
) -> Tensor<4> {
    let c = gamma.dims()[0];
    let scale = gamma / (var + BN_EPS).sqrt();
    let shift = beta - mean * scale.clone();
    x * scale.reshape([1, c, 1, 1]) + shift.reshape([1, c, 1, 1])
}
