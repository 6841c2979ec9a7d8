//! The AdamW update of one parameter tensor as one fused op (DESIGN §4).
//!
//! Composed of burn ops, AdamW is about fifteen element-wise kernels per parameter tensor; on a
//! GPU that was 42 % of a training step's kernel launches. [`adamw`] does the whole update —
//! both moments, the bias corrections, the decoupled weight decay — in one pass: one WGSL
//! kernel (`shaders/adamw.wgsl`) on burn's wgpu backend, one loop ([`adamw_cpu`], also the
//! reference) on burn's CPU backend. It reproduces burn's `AdamW` operation by operation, in
//! f32.

use burn::backend::flex::FlexTensor;
use burn::backend::TensorMetadata;
use burn::backend::{backend_extension, tensor::FloatTensor, Dispatch, Flex};
use burn::tensor::{Tensor, TensorData};

use super::flex::values;
use super::shape_error;
use crate::error::Result;

/// The scalars of one AdamW step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamWStep {
    /// First-moment decay β1.
    pub beta1: f32,
    /// Second-moment decay β2.
    pub beta2: f32,
    /// 1 − β1.
    pub one_minus_beta1: f32,
    /// 1 − β2.
    pub one_minus_beta2: f32,
    /// Bias correction 1 − β1^t.
    pub corr1: f32,
    /// Bias correction 1 − β2^t.
    pub corr2: f32,
    /// ε added to the root of the second moment.
    pub eps: f32,
    /// Learning rate.
    pub lr: f32,
    /// Weight-decay factor 1 − lr·λ.
    pub decay: f32,
}

impl AdamWStep {
    /// Step `t` (from 1) at learning rate `lr` with weight decay `weight_decay`.
    pub fn new(lr: f64, weight_decay: f64, beta1: f32, beta2: f32, eps: f32, t: usize) -> Self {
        let t = i32::try_from(t).unwrap_or(i32::MAX);
        AdamWStep {
            beta1,
            beta2,
            one_minus_beta1: 1.0 - beta1,
            one_minus_beta2: 1.0 - beta2,
            corr1: 1.0 - beta1.powi(t),
            corr2: 1.0 - beta2.powi(t),
            eps,
            lr: lr as f32,
            decay: (1.0 - lr * weight_decay) as f32,
        }
    }
}

/// The fused AdamW update, on every backend the supernet trains on.
#[backend_extension(Flex, Cube)]
pub trait OptimOps: burn::backend::Backend {
    /// One AdamW step: `(param, grad, m1, m2)` of one shape → `(param', m1', m2')`.
    fn adamw(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        m1: FloatTensor<Self>,
        m2: FloatTensor<Self>,
        step: AdamWStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// The update on plain slices of equal length: `(param', m1', m2')`.
pub fn adamw_cpu(
    step: &AdamWStep,
    param: &[f32],
    grad: &[f32],
    m1: &[f32],
    m2: &[f32],
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let n = param.len();
    let (mut p_out, mut m1_out, mut m2_out) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    for i in 0..n {
        let g = grad[i];
        let a = m1[i] * step.beta1 + g * step.one_minus_beta1;
        let b = m2[i] * step.beta2 + (g * g) * step.one_minus_beta2;
        let delta = (a / step.corr1) / ((b / step.corr2).sqrt() + step.eps);
        p_out[i] = param[i] * step.decay - delta * step.lr;
        m1_out[i] = a;
        m2_out[i] = b;
    }
    (p_out, m1_out, m2_out)
}

impl OptimOps for Flex {
    fn adamw(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        m1: FloatTensor<Self>,
        m2: FloatTensor<Self>,
        step: AdamWStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let shape = param.shape();
        let (p, a, b) = adamw_cpu(
            &step,
            &values(&param),
            &values(&grad),
            &values(&m1),
            &values(&m2),
        );
        let wrap = |v: Vec<f32>| FlexTensor::from_data(TensorData::new(v, shape.clone()));
        (wrap(p), wrap(a), wrap(b))
    }
}

/// One AdamW step of `param` with gradient `grad` and moments `m1`, `m2` (see [`OptimOps`]):
/// `(param', m1', m2')`. Errors when the four shapes differ.
pub fn adamw<const D: usize>(
    param: Tensor<D>,
    grad: Tensor<D>,
    m1: Tensor<D>,
    m2: Tensor<D>,
    step: AdamWStep,
) -> Result<(Tensor<D>, Tensor<D>, Tensor<D>)> {
    let dims = param.dims();
    for (what, t) in [
        ("gradient", &grad),
        ("first moment", &m1),
        ("second moment", &m2),
    ] {
        if t.dims() != dims {
            let n = |d: [usize; D]| d.iter().product::<usize>();
            return Err(shape_error("adamw", what, n(dims), n(t.dims())));
        }
    }
    let (p, a, b) = <Dispatch as OptimOps>::adamw(
        param.into_dispatch(),
        grad.into_dispatch(),
        m1.into_dispatch(),
        m2.into_dispatch(),
        step,
    );
    Ok((
        Tensor::from_dispatch(p),
        Tensor::from_dispatch(a),
        Tensor::from_dispatch(b),
    ))
}
