//! Slicing whose gradient is one op (DESIGN §4).
//!
//! burn differentiates a slice into a zero-filled tensor of the full shape plus a slice
//! assignment: two kernel launches per slice, and a subnet's pass slices every weight it uses
//! from the supernet's (DESIGN §1). [`narrow`] keeps the forward a view and makes the backward
//! one pass that writes the padded gradient: [`pad_cpu`] on the CPU backend (also the
//! reference), `shaders/pad.wgsl` on wgpu.

use std::ops::Range;

use burn::backend::autodiff::{
    checkpoint::{base::Checkpointer, strategy::CheckpointStrategy},
    grads::Gradients,
    ops::{Backward, Ops, OpsKind},
    Autodiff,
};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::FloatTensorOps;
use burn::backend::{backend_extension, tensor::FloatTensor, Dispatch, Flex};
use burn::backend::{AutodiffBackend, Backend};
use burn::tensor::{Slice, Tensor, TensorData};

use super::flex::values;
use super::shape_error;
use crate::error::Result;

/// Where a slice sits in its source: the source's shape and the slice's start and length on
/// every axis (at most four).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    /// The source's shape.
    pub full: Vec<usize>,
    /// First index kept on each axis.
    pub start: Vec<usize>,
    /// Indices kept on each axis.
    pub count: Vec<usize>,
}

impl Window {
    /// burn's slices of the window.
    pub(crate) fn slices(&self) -> Vec<Slice> {
        self.start
            .iter()
            .zip(&self.count)
            .map(|(&s, &c)| Slice::new(s as isize, Some((s + c) as isize), 1))
            .collect()
    }

    /// The window's shape and start right-aligned to four axes.
    pub(crate) fn aligned(&self) -> [[u32; 4]; 3] {
        let mut out = [[1u32; 4], [0u32; 4], [1u32; 4]];
        let off = 4 - self.full.len();
        for d in 0..self.full.len() {
            out[0][off + d] = self.full[d] as u32;
            out[1][off + d] = self.start[d] as u32;
            out[2][off + d] = self.count[d] as u32;
        }
        out
    }
}

/// A slice with a one-pass gradient.
#[backend_extension(Flex, Cube, Autodiff)]
pub trait SliceOps: burn::backend::Backend {
    /// `x` restricted to `window`.
    fn narrow(x: FloatTensor<Self>, window: Window) -> FloatTensor<Self>;

    /// `dy` (of the window's shape) placed at the window in zeros of its full shape (not
    /// itself differentiable).
    fn pad(dy: FloatTensor<Self>, window: Window) -> FloatTensor<Self>;
}

/// `dy` (row-major, the window's shape) placed in zeros of the window's full shape.
pub fn pad_cpu(dy: &[f32], window: &Window) -> Vec<f32> {
    let [full, start, count] = window.aligned().map(|a| a.map(|v| v as usize));
    let mut out = vec![0f32; full.iter().product()];
    let mut src = 0;
    for a in 0..count[0] {
        for b in 0..count[1] {
            for c in 0..count[2] {
                let row = (((start[0] + a) * full[1] + start[1] + b) * full[2] + start[2] + c)
                    * full[3]
                    + start[3];
                out[row..row + count[3]].copy_from_slice(&dy[src..src + count[3]]);
                src += count[3];
            }
        }
    }
    out
}

impl SliceOps for Flex {
    fn narrow(x: FloatTensor<Self>, window: Window) -> FloatTensor<Self> {
        Self::float_slice(x, &window.slices())
    }

    fn pad(dy: FloatTensor<Self>, window: Window) -> FloatTensor<Self> {
        let out = pad_cpu(&values(&dy), &window);
        FlexTensor::from_data(TensorData::new(out, window.full.clone()))
    }
}

#[derive(Debug)]
struct NarrowBackward;

impl<B: Backend + SliceOps> Backward<B, 1> for NarrowBackward {
    type State = Window;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let dy = grads.consume::<B>(&ops.node);
        if let Some(node) = node {
            grads.register::<B>(node.id, B::pad(dy, ops.state));
        }
    }
}

impl<B: Backend + SliceOps, C: CheckpointStrategy> SliceOps for Autodiff<B, C> {
    fn narrow(x: FloatTensor<Self>, window: Window) -> FloatTensor<Self> {
        match NarrowBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = B::narrow(x.primitive().clone(), window.clone());
                prep.finish(window, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::narrow(x.into_primitive(), window)),
        }
    }

    fn pad(dy: FloatTensor<Self>, window: Window) -> FloatTensor<Self> {
        Self::from_inner(B::pad(Self::inner(dy), window))
    }
}

/// `x[ranges]` (rank ≤ 4), `x` itself when the ranges cover it; its gradient is one pass (see
/// [`SliceOps`]). Errors on an empty or out-of-bounds range.
pub fn narrow<const D: usize>(x: Tensor<D>, ranges: [Range<usize>; D]) -> Result<Tensor<D>> {
    let full = x.dims();
    if D > 4 {
        return Err(shape_error("slice", "rank (at most 4)", 4, D));
    }
    for (r, &n) in ranges.iter().zip(&full) {
        if r.start >= r.end || r.end > n {
            return Err(shape_error("slice", "range end within the axis", n, r.end));
        }
    }
    if ranges
        .iter()
        .zip(&full)
        .all(|(r, &n)| r.start == 0 && r.end == n)
    {
        return Ok(x);
    }
    let window = Window {
        full: full.to_vec(),
        start: ranges.iter().map(|r| r.start).collect(),
        count: ranges.iter().map(|r| r.len()).collect(),
    };
    Ok(Tensor::from_dispatch(<Dispatch as SliceOps>::narrow(
        x.into_dispatch(),
        window,
    )))
}
