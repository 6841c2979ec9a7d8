//! The training step's custom ops as burn backend extensions (DESIGN §1–2, §4): the supernet's
//! elastic convolutions, and the fused ops that keep a step's kernel launches few.
//!
//! Two ops carry almost all of a training step's arithmetic:
//! - [`pointwise`]: the stage-masked 1×1 conv (output channels of stage s read the input
//!   channels of stages ≤ s only);
//! - [`depthwise`]: the k×k depthwise conv of one kernel size (the supernet calls it once per
//!   run of stages that share a size).
//!
//! [`ElasticOps`] gives each a forward, an input gradient and a weight gradient, implemented
//! three times:
//! - on burn's `Flex` CPU backend by this crate's own CPU code ([`pointwise_cpu`],
//!   [`depthwise_cpu`]: the `gemm` crate over the stage blocks, the channel-last kernel of
//!   [`crate::cpu::depthwise`], rayon);
//! - on burn's wgpu backend by this crate's WGSL kernels (`shaders/gemm.wgsl`,
//!   `shaders/dwconv.wgsl` — the runtime's own kernels — and the gradient kernels
//!   `shaders/gemm_weight_grad.wgsl`, `shaders/dwconv_input_grad.wgsl`,
//!   `shaders/dwconv_weight_grad.wgsl`);
//! - on `Autodiff<_>` with a hand-written backward that calls the two gradients.
//!
//! The same pattern (a CPU loop that is also the reference, a WGSL kernel, a hand-written
//! backward) gives one op each way for what burn composes from many:
//! - [`batch_norm`] (module `norm`): batch norm over batch statistics ([`batch_norm_cpu`];
//!   `shaders/batch_norm.wgsl`, `batch_norm_grad.wgsl`);
//! - [`activation`](fn@activation), [`gated_activation`]: the activations, optionally times a
//!   block's depth gate (`shaders/activation_train.wgsl`);
//! - [`narrow`]: a slice whose gradient is one padding pass (`shaders/pad.wgsl`);
//! - [`soft_cross_entropy`]: the loss's cross-entropy against soft targets
//!   (`shaders/soft_ce.wgsl`, `soft_ce_grad.wgsl`);
//! - [`adamw`](fn@adamw): one AdamW update of a parameter tensor (`shaders/adamw.wgsl`; no
//!   backward).
//!
//! [`reference`](mod@reference) composes the same functions from plain burn tensor ops; the tests check the
//! ops, forward and gradients, against it and against finite differences on every backend.
//!
//! The tensors must be `f32` (the supernet's only float type); the gradient methods are not
//! themselves differentiable (no second derivatives).

pub mod activation;
pub mod adamw;
mod autodiff;
pub mod batch_norm_cpu;
mod cube;
pub mod depthwise_cpu;
mod flex;
mod norm;
pub mod pointwise_cpu;
pub mod reference;
pub mod slice;
pub mod soft_ce;

pub use activation::{activation, gated_activation, ActOps};
pub use adamw::{adamw, AdamWStep, OptimOps};
pub use norm::{batch_norm, NormOps};
pub use slice::{narrow, SliceOps, Window};
pub use soft_ce::{soft_cross_entropy, SoftCeOps};

use burn::backend::{backend_extension, tensor::FloatTensor, Dispatch};
use burn::tensor::Tensor;

use crate::error::{Error, Result};
use crate::space::StageCuts;

/// BN ε (DESIGN §1).
pub const BN_EPS: f64 = 1e-5;

/// Stage cut points of the output and input axes of a masked 1×1 conv (equal stage counts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageMask {
    /// Output cut points `o_0 = 0 … o_S = O`.
    pub out: Vec<u32>,
    /// Input cut points `i_0 = 0 … i_S = I`.
    pub inp: Vec<u32>,
}

impl StageMask {
    /// The mask of `(out, inp)`; with different stage counts (never in a valid plan) the
    /// layer is treated as one dense stage.
    pub fn new(out: &StageCuts, inp: &StageCuts) -> Self {
        if out.stages() == inp.stages() {
            StageMask {
                out: out.points().to_vec(),
                inp: inp.points().to_vec(),
            }
        } else {
            Self::dense(out.width() as usize, inp.width() as usize)
        }
    }

    /// One stage: every output reads every input.
    pub fn dense(out: usize, inp: usize) -> Self {
        StageMask {
            out: vec![0, out as u32],
            inp: vec![0, inp as u32],
        }
    }

    /// Output width O.
    pub fn out_width(&self) -> usize {
        self.out.last().copied().unwrap_or(0) as usize
    }

    /// Input width I.
    pub fn in_width(&self) -> usize {
        self.inp.last().copied().unwrap_or(0) as usize
    }

    /// Whether weight `(o, i)` is used.
    pub fn keeps(&self, o: usize, i: usize) -> bool {
        let s = (0..self.out.len().saturating_sub(1))
            .find(|&s| o < self.out[s + 1] as usize)
            .unwrap_or(self.out.len().saturating_sub(2));
        i < self.inp.get(s + 1).copied().unwrap_or(0) as usize
    }

    /// The 0/1 mask `[O, I]` row-major, or its transpose `[I, O]`.
    pub fn keep_matrix(&self, transposed: bool) -> Vec<f32> {
        let (o, i) = (self.out_width(), self.in_width());
        (0..o * i)
            .map(|j| {
                let (r, c) = if transposed {
                    (j % o, j / o)
                } else {
                    (j / i, j % i)
                };
                f32::from(u8::from(self.keeps(r, c)))
            })
            .collect()
    }
}

/// The elastic ops, on every backend the supernet trains on.
#[backend_extension(Flex, Cube, Autodiff)]
pub trait ElasticOps: burn::backend::Backend {
    /// Masked 1×1 conv: `x [N, I, H, W]`, `w [O, I]` → `[N, O, H, W]`, output channel o of
    /// stage s summing over input channels `< mask.inp[s + 1]`.
    fn pointwise(x: FloatTensor<Self>, w: FloatTensor<Self>, mask: StageMask) -> FloatTensor<Self>;

    /// Gradient of [`pointwise`](Self::pointwise) with respect to `x`, from `dy [N, O, H, W]`.
    fn pointwise_input_grad(
        dy: FloatTensor<Self>,
        w: FloatTensor<Self>,
        mask: StageMask,
    ) -> FloatTensor<Self>;

    /// Gradient of [`pointwise`](Self::pointwise) with respect to `w` (zero where masked).
    fn pointwise_weight_grad(
        x: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        mask: StageMask,
    ) -> FloatTensor<Self>;

    /// Depthwise conv: `x [N, C, H, W]`, `kernel [C, k, k]`, padding k/2 → `[N, C, Ho, Wo]`.
    fn depthwise(
        x: FloatTensor<Self>,
        kernel: FloatTensor<Self>,
        stride: usize,
    ) -> FloatTensor<Self>;

    /// Gradient of [`depthwise`](Self::depthwise) with respect to `x` (`[N, C, height, width]`).
    fn depthwise_input_grad(
        dy: FloatTensor<Self>,
        kernel: FloatTensor<Self>,
        stride: usize,
        height: usize,
        width: usize,
    ) -> FloatTensor<Self>;

    /// Gradient of [`depthwise`](Self::depthwise) with respect to the kernel (`[C, k, k]`).
    fn depthwise_weight_grad(
        x: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        stride: usize,
        k: usize,
    ) -> FloatTensor<Self>;
}

/// The dimensions of a rank-`D` backend tensor (rank checked by the public wrappers).
fn dims<const D: usize>(t: &impl burn::backend::TensorMetadata) -> [usize; D] {
    let shape = t.shape();
    assert_eq!(shape.num_dims(), D, "elastic op: tensor rank");
    let mut out = [0; D];
    for (o, d) in out.iter_mut().zip(shape.iter()) {
        *o = *d;
    }
    out
}

fn shape_error(op: &'static str, what: &'static str, expected: usize, got: usize) -> Error {
    Error::Shape {
        op,
        what,
        expected,
        got,
    }
}

fn non_empty(op: &'static str, x: &Tensor<4>) -> Result<()> {
    match x.dims().iter().position(|&d| d == 0) {
        Some(_) => Err(shape_error(op, "input (no empty axis)", 1, 0)),
        None => Ok(()),
    }
}

/// Masked 1×1 conv of `x [N, I, H, W]` by `w [O, I]` (see [`ElasticOps::pointwise`]).
/// Errors when the widths disagree with each other or with `mask`.
pub fn pointwise(x: Tensor<4>, w: Tensor<2>, mask: StageMask) -> Result<Tensor<4>> {
    let [_, i, _, _] = x.dims();
    let [o, wi] = w.dims();
    non_empty("pointwise", &x)?;
    if wi != i {
        return Err(shape_error("pointwise", "weight columns", i, wi));
    }
    if mask.in_width() != i {
        return Err(shape_error(
            "pointwise",
            "mask input width",
            i,
            mask.in_width(),
        ));
    }
    if mask.out_width() != o {
        return Err(shape_error(
            "pointwise",
            "mask output width",
            o,
            mask.out_width(),
        ));
    }
    StageCuts::new(mask.out.clone())?;
    StageCuts::new(mask.inp.clone())?;
    if mask.out.len() != mask.inp.len() {
        return Err(shape_error(
            "pointwise",
            "mask stages",
            mask.out.len(),
            mask.inp.len(),
        ));
    }
    Ok(Tensor::from_dispatch(<Dispatch as ElasticOps>::pointwise(
        x.into_dispatch(),
        w.into_dispatch(),
        mask,
    )))
}

/// Depthwise conv of `x [N, C, H, W]` by `kernel [C, k, k]` (k = 3, 5 or 7), padding k/2,
/// stride 1 or 2.
pub fn depthwise(x: Tensor<4>, kernel: Tensor<3>, stride: usize) -> Result<Tensor<4>> {
    let [_, c, _, _] = x.dims();
    let [kc, k, k2] = kernel.dims();
    non_empty("depthwise", &x)?;
    if kc != c {
        return Err(shape_error("depthwise", "kernel channels", c, kc));
    }
    if k2 != k || ![3, 5, 7].contains(&k) {
        return Err(Error::config(
            "depthwise.kernel",
            format!("{k}×{k2}: expected 3×3, 5×5 or 7×7"),
        ));
    }
    if ![1, 2].contains(&stride) {
        return Err(Error::config(
            "depthwise.stride",
            format!("{stride}: expected 1 or 2"),
        ));
    }
    Ok(Tensor::from_dispatch(<Dispatch as ElasticOps>::depthwise(
        x.into_dispatch(),
        kernel.into_dispatch(),
        stride,
    )))
}
