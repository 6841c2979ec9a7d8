//! The layers' activations as one op each way (DESIGN §1, §4).
//!
//! burn composes hswish and hsigmoid from a scale, a shift and a clamp (a compare and a mask
//! fill per bound), forward and backward: on a GPU, six to ten kernel launches per activation.
//! [`activation`] is one: `shaders/activation_train.wgsl` on wgpu (the runtime's own
//! `activate`, plus its derivative), [`activation_cpu`] on the CPU backend (also the
//! reference), and a hand-written backward under autodiff. [`gated_activation`] folds a block's
//! depth gate (a 0/1 channel mask, DESIGN §2) into the same pass, saving a multiplication
//! each way.

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

use rayon::prelude::*;

use super::flex::values;
use super::shape_error;
use crate::error::Result;
use crate::space::Activation;

/// Element-wise activations with their input gradient, optionally gated by a per-channel mask.
#[backend_extension(Flex, Cube, Autodiff)]
pub trait ActOps: burn::backend::Backend {
    /// `y = act(x)`, element by element.
    fn activate(x: FloatTensor<Self>, act: Activation) -> FloatTensor<Self>;

    /// `dx = dy · act'(x)`, element by element (not itself differentiable).
    fn activate_grad(
        x: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        act: Activation,
    ) -> FloatTensor<Self>;

    /// `y = act(x) · m[c]` for `x [N, C, H, W]` and a constant mask `m [C]` (no gradient).
    fn activate_gated(
        x: FloatTensor<Self>,
        mask: FloatTensor<Self>,
        act: Activation,
    ) -> FloatTensor<Self>;

    /// `dx = dy · act'(x) · m[c]` (not itself differentiable).
    fn activate_gated_grad(
        x: FloatTensor<Self>,
        mask: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        act: Activation,
    ) -> FloatTensor<Self>;
}

/// The CPU pass: `act(x)`, or `dy · act'(x)` with `dy`, times `mask[c]` with a mask (`plane`
/// values per channel); blocks of elements in parallel.
pub fn activation_cpu(
    x: &[f32],
    dy: Option<&[f32]>,
    mask: Option<(&[f32], usize)>,
    act: Activation,
) -> Vec<f32> {
    const BLOCK: usize = 4096;
    let mut out = vec![0f32; x.len()];
    out.par_chunks_mut(BLOCK).enumerate().for_each(|(b, o)| {
        let (start, len) = (b * BLOCK, o.len());
        let xs = &x[start..start + len];
        match dy {
            None => o
                .iter_mut()
                .zip(xs)
                .for_each(|(o, &v)| *o = act.apply_f32(v)),
            Some(dy) => o
                .iter_mut()
                .zip(xs.iter().zip(&dy[start..start + len]))
                .for_each(|(o, (&v, &g))| *o = g * act.slope_f32(v)),
        }
        if let Some((m, plane)) = mask {
            for (j, o) in o.iter_mut().enumerate() {
                *o *= m[((start + j) / plane) % m.len()];
            }
        }
    });
    out
}

fn flex_pass(
    x: &FlexTensor,
    dy: Option<&FlexTensor>,
    mask: Option<&FlexTensor>,
    act: Activation,
) -> FlexTensor {
    let shape = x.shape();
    let plane = if shape.num_dims() == 4 {
        shape[2] * shape[3]
    } else {
        1
    };
    let dy = dy.map(|d| values(d));
    let mask = mask.map(|m| values(m));
    let out = activation_cpu(
        &values(x),
        dy.as_deref(),
        mask.as_deref().map(|m| (m, plane)),
        act,
    );
    FlexTensor::from_data(TensorData::new(out, shape))
}

impl ActOps for Flex {
    fn activate(x: FloatTensor<Self>, act: Activation) -> FloatTensor<Self> {
        flex_pass(&x, None, None, act)
    }

    fn activate_grad(
        x: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        act: Activation,
    ) -> FloatTensor<Self> {
        flex_pass(&x, Some(&dy), None, act)
    }

    fn activate_gated(
        x: FloatTensor<Self>,
        mask: FloatTensor<Self>,
        act: Activation,
    ) -> FloatTensor<Self> {
        flex_pass(&x, None, Some(&mask), act)
    }

    fn activate_gated_grad(
        x: FloatTensor<Self>,
        mask: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        act: Activation,
    ) -> FloatTensor<Self> {
        flex_pass(&x, Some(&dy), Some(&mask), act)
    }
}

#[derive(Debug)]
struct ActivationBackward;

impl<B: Backend + ActOps> Backward<B, 1> for ActivationBackward {
    /// (x, the gate's mask, activation)
    type State = (FloatTensor<B>, Option<FloatTensor<B>>, Activation);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let dy = grads.consume::<B>(&ops.node);
        let (x, mask, act) = ops.state;
        if let Some(node) = node {
            let dx = match mask {
                Some(m) => B::activate_gated_grad(x, m, dy, act),
                None => B::activate_grad(x, dy, act),
            };
            grads.register::<B>(node.id, dx);
        }
    }
}

/// The tracked activation, gated or not (the mask is a constant: it takes no gradient).
fn tracked_activation<B: Backend + ActOps, C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<B, C>>,
    mask: Option<FloatTensor<Autodiff<B, C>>>,
    act: Activation,
) -> FloatTensor<Autodiff<B, C>> {
    {
        let mask = mask.map(Autodiff::<B, C>::inner);
        let run = |x: FloatTensor<B>, mask: Option<FloatTensor<B>>| match mask {
            Some(m) => B::activate_gated(x, m, act),
            None => B::activate(x, act),
        };
        match ActivationBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let xp = x.primitive().clone();
                let y = run(xp.clone(), mask.clone());
                prep.finish((xp, mask, act), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(run(x.into_primitive(), mask)),
        }
    }
}

impl<B: Backend + ActOps, C: CheckpointStrategy> ActOps for Autodiff<B, C> {
    fn activate(x: FloatTensor<Self>, act: Activation) -> FloatTensor<Self> {
        tracked_activation::<B, C>(x, None, act)
    }

    fn activate_grad(
        x: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        act: Activation,
    ) -> FloatTensor<Self> {
        Self::from_inner(B::activate_grad(Self::inner(x), Self::inner(dy), act))
    }

    fn activate_gated(
        x: FloatTensor<Self>,
        mask: FloatTensor<Self>,
        act: Activation,
    ) -> FloatTensor<Self> {
        tracked_activation::<B, C>(x, Some(mask), act)
    }

    fn activate_gated_grad(
        x: FloatTensor<Self>,
        mask: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        act: Activation,
    ) -> FloatTensor<Self> {
        Self::from_inner(B::activate_gated_grad(
            Self::inner(x),
            Self::inner(mask),
            Self::inner(dy),
            act,
        ))
    }
}

/// `act(x)` element by element as one op (see [`ActOps`]); the identity returns `x`.
pub fn activation<const D: usize>(x: Tensor<D>, act: Activation) -> Tensor<D> {
    if act == Activation::None {
        return x;
    }
    Tensor::from_dispatch(<Dispatch as ActOps>::activate(x.into_dispatch(), act))
}

/// `act(x) · m[c]` for `x [N, C, H, W]` and a 0/1 channel mask `m [C]` (a constant) as one op;
/// without a mask, [`activation`]. Errors when the mask's width is not C.
pub fn gated_activation(
    x: Tensor<4>,
    mask: Option<Tensor<1>>,
    act: Activation,
) -> Result<Tensor<4>> {
    let Some(mask) = mask else {
        return Ok(activation(x, act));
    };
    let c = x.dims()[1];
    if mask.dims()[0] != c {
        return Err(shape_error(
            "gated activation",
            "mask width",
            c,
            mask.dims()[0],
        ));
    }
    Ok(Tensor::from_dispatch(<Dispatch as ActOps>::activate_gated(
        x.into_dispatch(),
        mask.into_dispatch(),
        act,
    )))
}
