//! [`ElasticOps`] on `Autodiff<B>`: the forward runs on `B`, the hand-written backward calls
//! `B`'s gradient ops. The gradient ops themselves are not tracked.

use burn::backend::autodiff::{
    checkpoint::{base::Checkpointer, strategy::CheckpointStrategy},
    grads::Gradients,
    ops::{Backward, Ops, OpsKind},
    Autodiff,
};
use burn::backend::{tensor::FloatTensor, AutodiffBackend, Backend, TensorMetadata};

use super::{ElasticOps, StageMask};

#[derive(Debug)]
struct PointwiseBackward;

impl<B: Backend + ElasticOps> Backward<B, 2> for PointwiseBackward {
    type State = (FloatTensor<B>, FloatTensor<B>, StageMask);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w] = ops.parents;
        let dy = grads.consume::<B>(&ops.node);
        let (x, w, mask) = ops.state;
        if let Some(node) = node_w {
            let dw = B::pointwise_weight_grad(x, dy.clone(), mask.clone());
            grads.register::<B>(node.id, dw);
        }
        if let Some(node) = node_x {
            grads.register::<B>(node.id, B::pointwise_input_grad(dy, w, mask));
        }
    }
}

#[derive(Debug)]
struct DepthwiseBackward;

impl<B: Backend + ElasticOps> Backward<B, 2> for DepthwiseBackward {
    /// (x, kernel, stride)
    type State = (FloatTensor<B>, FloatTensor<B>, usize);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_k] = ops.parents;
        let dy = grads.consume::<B>(&ops.node);
        let (x, kernel, stride) = ops.state;
        let xs = x.shape();
        let k = kernel.shape()[1];
        if let Some(node) = node_k {
            let dk = B::depthwise_weight_grad(x, dy.clone(), stride, k);
            grads.register::<B>(node.id, dk);
        }
        if let Some(node) = node_x {
            let dx = B::depthwise_input_grad(dy, kernel, stride, xs[2], xs[3]);
            grads.register::<B>(node.id, dx);
        }
    }
}

impl<B: Backend + ElasticOps, C: CheckpointStrategy> ElasticOps for Autodiff<B, C> {
    fn pointwise(x: FloatTensor<Self>, w: FloatTensor<Self>, mask: StageMask) -> FloatTensor<Self> {
        match PointwiseBackward
            .prepare::<C>([x.node(), w.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (xp, wp) = (x.primitive().clone(), w.primitive().clone());
                let y = B::pointwise(xp.clone(), wp.clone(), mask.clone());
                prep.finish((xp, wp, mask), y)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::pointwise(x.into_primitive(), w.into_primitive(), mask))
            }
        }
    }

    fn pointwise_input_grad(
        dy: FloatTensor<Self>,
        w: FloatTensor<Self>,
        mask: StageMask,
    ) -> FloatTensor<Self> {
        Self::from_inner(B::pointwise_input_grad(
            Self::inner(dy),
            Self::inner(w),
            mask,
        ))
    }

    fn pointwise_weight_grad(
        x: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        mask: StageMask,
    ) -> FloatTensor<Self> {
        Self::from_inner(B::pointwise_weight_grad(
            Self::inner(x),
            Self::inner(dy),
            mask,
        ))
    }

    fn depthwise(
        x: FloatTensor<Self>,
        kernel: FloatTensor<Self>,
        stride: usize,
    ) -> FloatTensor<Self> {
        match DepthwiseBackward
            .prepare::<C>([x.node(), kernel.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (xp, kp) = (x.primitive().clone(), kernel.primitive().clone());
                let y = B::depthwise(xp.clone(), kp.clone(), stride);
                prep.finish((xp, kp, stride), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::depthwise(
                x.into_primitive(),
                kernel.into_primitive(),
                stride,
            )),
        }
    }

    fn depthwise_input_grad(
        dy: FloatTensor<Self>,
        kernel: FloatTensor<Self>,
        stride: usize,
        height: usize,
        width: usize,
    ) -> FloatTensor<Self> {
        Self::from_inner(B::depthwise_input_grad(
            Self::inner(dy),
            Self::inner(kernel),
            stride,
            height,
            width,
        ))
    }

    fn depthwise_weight_grad(
        x: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        stride: usize,
        k: usize,
    ) -> FloatTensor<Self> {
        Self::from_inner(B::depthwise_weight_grad(
            Self::inner(x),
            Self::inner(dy),
            stride,
            k,
        ))
    }
}
