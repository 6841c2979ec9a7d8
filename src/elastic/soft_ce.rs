//! Soft-target cross-entropy as one op each way (DESIGN §4).
//!
//! The multi-exit loss takes one or two cross-entropies per exit; composed of burn ops
//! (log-softmax, product, sums, mean) each is about ten kernel launches forward and a dozen
//! backward. [`soft_cross_entropy`] is one each way: `shaders/soft_ce.wgsl` and
//! `soft_ce_grad.wgsl` on wgpu, [`soft_ce_cpu`] and [`soft_ce_grad_cpu`] on the CPU backend
//! (also the reference), and a hand-written backward under autodiff. The targets are
//! constants (smoothed labels, a teacher's detached probabilities): they take no gradient.

use burn::backend::autodiff::{
    checkpoint::{base::Checkpointer, strategy::CheckpointStrategy},
    grads::Gradients,
    ops::{Backward, Ops, OpsKind},
    Autodiff,
};
use burn::backend::flex::FlexTensor;
use burn::backend::{backend_extension, tensor::FloatTensor, Dispatch, Flex};
use burn::backend::{AutodiffBackend, Backend, TensorMetadata};
use burn::tensor::{Tensor, TensorData};

use super::flex::values;
use super::shape_error;
use crate::error::Result;

/// Soft-target cross-entropy and its gradient.
#[backend_extension(Flex, Cube, Autodiff)]
pub trait SoftCeOps: burn::backend::Backend {
    /// `−(1/N) Σ_i Σ_c t_ic log softmax(z_i)_c` for `z`, `t [N, K]`: shape `[1]`.
    fn soft_ce(z: FloatTensor<Self>, t: FloatTensor<Self>) -> FloatTensor<Self>;

    /// Its gradient with respect to `z`, given the loss's gradient `dy [1]` (not itself
    /// differentiable).
    fn soft_ce_grad(
        z: FloatTensor<Self>,
        t: FloatTensor<Self>,
        dy: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

/// The row's maximum and log Σ exp.
fn row_lse(row: &[f32]) -> (f32, f32) {
    let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    let e: f32 = row.iter().map(|&v| (v - m).exp()).sum();
    (m, m + e.ln())
}

/// The loss of `z`, `t` (row-major `[rows, classes]`).
pub fn soft_ce_cpu(z: &[f32], t: &[f32], classes: usize) -> f32 {
    let rows = z.len() / classes.max(1);
    let mut s = 0f32;
    for (zr, tr) in z.chunks_exact(classes).zip(t.chunks_exact(classes)) {
        let (_, lse) = row_lse(zr);
        s -= zr.iter().zip(tr).map(|(&a, &b)| b * (a - lse)).sum::<f32>();
    }
    s / rows.max(1) as f32
}

/// The gradient with respect to `z` given the loss's gradient `dy`.
pub fn soft_ce_grad_cpu(z: &[f32], t: &[f32], classes: usize, dy: f32) -> Vec<f32> {
    let rows = (z.len() / classes.max(1)).max(1) as f32;
    let mut out = Vec::with_capacity(z.len());
    for (zr, tr) in z.chunks_exact(classes).zip(t.chunks_exact(classes)) {
        let (_, lse) = row_lse(zr);
        let mass: f32 = tr.iter().sum();
        out.extend(
            zr.iter()
                .zip(tr)
                .map(|(&a, &b)| dy * ((a - lse).exp() * mass - b) / rows),
        );
    }
    out
}

fn classes(z: &FlexTensor) -> usize {
    z.shape().iter().last().copied().unwrap_or(1)
}

impl SoftCeOps for Flex {
    fn soft_ce(z: FloatTensor<Self>, t: FloatTensor<Self>) -> FloatTensor<Self> {
        let loss = soft_ce_cpu(&values(&z), &values(&t), classes(&z));
        FlexTensor::from_data(TensorData::new(vec![loss], [1]))
    }

    fn soft_ce_grad(
        z: FloatTensor<Self>,
        t: FloatTensor<Self>,
        dy: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let dy = values(&dy).first().copied().unwrap_or(0.0);
        let dz = soft_ce_grad_cpu(&values(&z), &values(&t), classes(&z), dy);
        FlexTensor::from_data(TensorData::new(dz, z.shape()))
    }
}

#[derive(Debug)]
struct SoftCeBackward;

impl<B: Backend + SoftCeOps> Backward<B, 1> for SoftCeBackward {
    /// (z, t)
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let dy = grads.consume::<B>(&ops.node);
        let (z, t) = ops.state;
        if let Some(node) = node {
            grads.register::<B>(node.id, B::soft_ce_grad(z, t, dy));
        }
    }
}

impl<B: Backend + SoftCeOps, C: CheckpointStrategy> SoftCeOps for Autodiff<B, C> {
    fn soft_ce(z: FloatTensor<Self>, t: FloatTensor<Self>) -> FloatTensor<Self> {
        let t = Self::inner(t);
        match SoftCeBackward
            .prepare::<C>([z.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let zp = z.primitive().clone();
                let loss = B::soft_ce(zp.clone(), t.clone());
                prep.finish((zp, t), loss)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::soft_ce(z.into_primitive(), t)),
        }
    }

    fn soft_ce_grad(
        z: FloatTensor<Self>,
        t: FloatTensor<Self>,
        dy: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::from_inner(B::soft_ce_grad(
            Self::inner(z),
            Self::inner(t),
            Self::inner(dy),
        ))
    }
}

/// `−(1/N) Σ_i Σ_c t_ic log softmax(z_i)_c` of logits `z` against soft targets `t` (both
/// `[N, K]`), as one op (see [`SoftCeOps`]); `t` takes no gradient. Errors when the shapes
/// differ or are empty.
pub fn soft_cross_entropy(z: Tensor<2>, t: Tensor<2>) -> Result<Tensor<1>> {
    let (zd, td) = (z.dims(), t.dims());
    if zd != td {
        return Err(shape_error(
            "cross-entropy",
            "targets",
            zd[0] * zd[1],
            td[0] * td[1],
        ));
    }
    if zd.contains(&0) {
        return Err(shape_error("cross-entropy", "logits (no empty axis)", 1, 0));
    }
    Ok(Tensor::from_dispatch(<Dispatch as SoftCeOps>::soft_ce(
        z.into_dispatch(),
        t.into_dispatch(),
    )))
}
