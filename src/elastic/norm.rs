//! Training-mode batch norm as a burn backend extension: this crate's CPU kernels
//! ([`super::batch_norm_cpu`]) on `Flex`, one WGSL kernel each way on wgpu
//! (`shaders/batch_norm.wgsl`, `shaders/batch_norm_grad.wgsl`: a workgroup per channel), and a
//! hand-written backward under autodiff.
//!
//! Composed of burn ops ([`reference::batch_norm`](super::reference::batch_norm), the
//! reference), a batch norm is a dozen tensor ops and as many temporaries forward and about
//! twice that backward: on the CPU that was half of a small subnet's training step, on a GPU
//! that many kernel launches. (burn's own `module::batch_norm_train`, one autodiff node over
//! backend ops, made the step slower on an H100: 420 against 325–343 ms for the largest subnet
//! at batch 512.)

use burn::backend::autodiff::{
    checkpoint::{base::Checkpointer, strategy::CheckpointStrategy},
    grads::Gradients,
    ops::{Backward, Ops, OpsKind},
    Autodiff,
};
use burn::backend::{backend_extension, tensor::FloatTensor, Dispatch, Flex};
use burn::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;

use super::batch_norm_cpu::{self, NormShape};
use super::flex::{tensor, values};
use super::{dims, non_empty, shape_error};
use crate::error::Result;

/// Batch norm over batch statistics.
#[backend_extension(Flex, Cube, Autodiff)]
pub trait NormOps: burn::backend::Backend {
    /// `x [N, C, H, W]`, `gamma`, `beta [C]` → `(y, mean, var)`: `y = γ (x − mean) /
    /// √(var + ε) + β` with the per-channel mean and biased variance over N, H, W. Only `y`
    /// carries a gradient (it includes the statistics' share).
    fn norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// Gradients `(dx, dγ, dβ)` of [`norm_train`](Self::norm_train)'s `y` from
    /// `dy`, given its `mean` and `var`.
    fn norm_grad(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        var: FloatTensor<Self>,
        dy: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

fn norm_shape(x: &FloatTensor<Flex>) -> NormShape {
    let [n, c, h, w] = dims::<4>(x);
    NormShape { n, c, p: h * w }
}

impl NormOps for Flex {
    fn norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let s = norm_shape(&x);
        let (y, mean, var) =
            batch_norm_cpu::forward(&s, &values(&x), &values(&gamma), &values(&beta));
        let shape = dims::<4>(&x);
        (tensor(y, shape), tensor(mean, [s.c]), tensor(var, [s.c]))
    }

    fn norm_grad(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        var: FloatTensor<Self>,
        dy: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let s = norm_shape(&x);
        let (dx, dgamma, dbeta) = batch_norm_cpu::backward(
            &s,
            &values(&x),
            &values(&gamma),
            &values(&mean),
            &values(&var),
            &values(&dy),
        );
        let shape = dims::<4>(&x);
        (
            tensor(dx, shape),
            tensor(dgamma, [s.c]),
            tensor(dbeta, [s.c]),
        )
    }
}

#[derive(Debug)]
struct BatchNormBackward;

impl<B: Backend + NormOps> Backward<B, 3> for BatchNormBackward {
    /// (x, gamma, mean, var)
    type State = (
        FloatTensor<B>,
        FloatTensor<B>,
        FloatTensor<B>,
        FloatTensor<B>,
    );

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let dy = grads.consume::<B>(&ops.node);
        let (x, gamma, mean, var) = ops.state;
        let (dx, dgamma, dbeta) = B::norm_grad(x, gamma, mean, var, dy);
        for (node, grad) in [(node_x, dx), (node_gamma, dgamma), (node_beta, dbeta)] {
            if let Some(node) = node {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

impl<B: Backend + NormOps, C: CheckpointStrategy> NormOps for Autodiff<B, C> {
    fn norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        match BatchNormBackward
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (xp, gp) = (x.primitive().clone(), gamma.primitive().clone());
                let (y, mean, var) = B::norm_train(xp.clone(), gp.clone(), beta.into_primitive());
                let state = (xp, gp, mean.clone(), var.clone());
                (
                    prep.finish(state, y),
                    Self::from_inner(mean),
                    Self::from_inner(var),
                )
            }
            OpsKind::UnTracked(prep) => {
                let (y, mean, var) = B::norm_train(
                    x.into_primitive(),
                    gamma.into_primitive(),
                    beta.into_primitive(),
                );
                (
                    prep.finish(y),
                    Self::from_inner(mean),
                    Self::from_inner(var),
                )
            }
        }
    }

    fn norm_grad(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        var: FloatTensor<Self>,
        dy: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (dx, dgamma, dbeta) = B::norm_grad(
            Self::inner(x),
            Self::inner(gamma),
            Self::inner(mean),
            Self::inner(var),
            Self::inner(dy),
        );
        (
            Self::from_inner(dx),
            Self::from_inner(dgamma),
            Self::from_inner(dbeta),
        )
    }
}

/// Batch norm of `x [N, C, H, W]` over its batch statistics with `gamma`, `beta [C]`: returns
/// `(y, mean, var)` (biased variance; only `y` carries gradients), by the fused op of this
/// module. Errors on an empty input or parameters of another width.
pub fn batch_norm(
    x: Tensor<4>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
) -> Result<(Tensor<4>, Tensor<1>, Tensor<1>)> {
    let [_, c, _, _] = x.dims();
    non_empty("batch norm", &x)?;
    for (what, t) in [("gamma", &gamma), ("beta", &beta)] {
        if t.dims()[0] != c {
            return Err(shape_error("batch norm", what, c, t.dims()[0]));
        }
    }
    let (y, mean, var) = <Dispatch as NormOps>::norm_train(
        x.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
    );
    Ok((
        Tensor::from_dispatch(y),
        Tensor::from_dispatch(mean),
        Tensor::from_dispatch(var),
    ))
}
