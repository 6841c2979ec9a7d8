//! [`ElasticOps`] on burn's wgpu backend: this crate's WGSL kernels, launched on burn's buffers.
//!
//! The forward passes run the runtime's own kernels (`gemm.wgsl`, `dwconv.wgsl`) in their
//! training form ([`Kernel::training_source`]: identity affine, no activation); the input
//! gradient of the 1×1 conv is the same GEMM with the masked weight transposed; the other
//! gradients have kernels of their own.

use burn::backend::wgpu::{
    into_contiguous, CubeBackend, CubeTensor, KernelSource, SourceKernel, SourceTemplate,
};
use burn::backend::{ops::FloatTensorOps, tensor::FloatTensor, DType};
use burn::cubecl::prelude::KernelId;
use burn::cubecl::server::{Handle, KernelArguments};
use burn::cubecl::{CubeCount, CubeDim};
use burn::tensor::{Shape, TensorData};
use bytemuck::{Pod, Zeroable};

use super::activation::ActOps;
use super::adamw::{AdamWStep, OptimOps};
use super::norm::NormOps;
use super::slice::{SliceOps, Window};
use super::soft_ce::SoftCeOps;
use super::{dims, ElasticOps, StageMask, BN_EPS};
use crate::gpu::{linear_groups_within, Kernel, LINEAR_WORKGROUP};
use crate::ops::dwconv::{dwconv_params, DwConvSpec};
use crate::ops::gemm::{gemm_launch, GemmSpec};
use crate::ops::Activation;
use crate::space::StageCuts;

/// Workgroups per grid dimension every WebGPU device supports.
const MAX_GROUPS: u32 = 65_535;

/// The WGSL kernels the training ops launch.
#[derive(Clone, Copy, Debug)]
enum TrainKernel {
    Gemm,
    DwConv,
    GemmWeightGrad,
    DwConvInputGrad,
    DwConvWeightGrad,
    AdamW,
    BatchNorm,
    BatchNormGrad,
    Activation,
    Pad,
    SoftCe,
    SoftCeGrad,
}

impl KernelSource for TrainKernel {
    fn source(&self) -> SourceTemplate {
        SourceTemplate::new(match self {
            TrainKernel::Gemm => Kernel::Gemm.training_source(),
            TrainKernel::DwConv => Kernel::DwConv.training_source(),
            TrainKernel::GemmWeightGrad => {
                include_str!("../../shaders/gemm_weight_grad.wgsl").into()
            }
            TrainKernel::DwConvInputGrad => {
                include_str!("../../shaders/dwconv_input_grad.wgsl").into()
            }
            TrainKernel::DwConvWeightGrad => {
                include_str!("../../shaders/dwconv_weight_grad.wgsl").into()
            }
            TrainKernel::AdamW => include_str!("../../shaders/adamw.wgsl").into(),
            TrainKernel::BatchNorm => include_str!("../../shaders/batch_norm.wgsl").into(),
            TrainKernel::BatchNormGrad => include_str!("../../shaders/batch_norm_grad.wgsl").into(),
            TrainKernel::Activation => ACTIVATION_SOURCE.into(),
            TrainKernel::Pad => include_str!("../../shaders/pad.wgsl").into(),
            TrainKernel::SoftCe => include_str!("../../shaders/soft_ce.wgsl").into(),
            TrainKernel::SoftCeGrad => include_str!("../../shaders/soft_ce_grad.wgsl").into(),
        })
    }

    fn id(&self) -> KernelId {
        KernelId::new::<Self>().info(*self as u32)
    }

    fn lang(&self) -> &'static str {
        "wgsl"
    }
}

impl TrainKernel {
    fn workgroup(self) -> CubeDim {
        match self {
            TrainKernel::Gemm | TrainKernel::GemmWeightGrad => CubeDim::new_2d(16, 16),
            TrainKernel::BatchNorm | TrainKernel::BatchNormGrad | TrainKernel::SoftCe => {
                CubeDim::new_1d(256)
            }
            _ => CubeDim::new_1d(LINEAR_WORKGROUP),
        }
    }
}

/// Parameters of the depthwise gradient kernels.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct DwGradParams {
    batch: u32,
    channels: u32,
    height: u32,
    width: u32,
    out_height: u32,
    out_width: u32,
    stride: u32,
    k: u32,
}

/// Parameters of `gemm_weight_grad.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct WeightGradParams {
    rows: u32,
    depth: u32,
    cols: u32,
    batch: u32,
    stages: u32,
    pad: [u32; 3],
    out_cuts: [[u32; 4]; 2],
    in_cuts: [[u32; 4]; 2],
}

/// `activation_train.wgsl` after the runtime's `activate` (`activation.wgsl`).
const ACTIVATION_SOURCE: &str = concat!(
    include_str!("../../shaders/activation.wgsl"),
    include_str!("../../shaders/activation_train.wgsl")
);

/// Parameters of `activation_train.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct ActParams {
    len: u32,
    kind: u32,
    backward: u32,
    gated: u32,
    channels: u32,
    plane: u32,
}

/// One launch of `activation_train.wgsl`: `act(x)`, or `dy · act'(x)` when `dy` is given,
/// times `mask[c]` when a mask is given (`x` then `[N, C, H, W]`).
fn activation_pass(
    x: CubeTensor,
    dy: Option<CubeTensor>,
    mask: Option<CubeTensor>,
    act: Activation,
) -> CubeTensor {
    let x = into_contiguous(x);
    let dy = dy.map(into_contiguous);
    let mask = mask.map(into_contiguous);
    let shape = burn::backend::TensorMetadata::shape(&x);
    let len = shape.num_elements();
    let out = empty(&x, shape.clone());
    let (channels, plane) = match shape.num_dims() {
        4 => (shape[1], shape[2] * shape[3]),
        _ => (1, 1),
    };
    let params = ActParams {
        len: len as u32,
        kind: act.code(),
        backward: u32::from(dy.is_some()),
        gated: u32::from(mask.is_some()),
        channels: channels as u32,
        plane: plane as u32,
    };
    let params = upload(&x, &[params]);
    // Unused bindings take `x` (the kernel does not read them).
    let other = |t: &Option<CubeTensor>| {
        t.as_ref()
            .map_or_else(|| x.handle.clone(), |t| t.handle.clone())
    };
    launch(
        TrainKernel::Activation,
        &x,
        linear_groups_within(len, MAX_GROUPS),
        vec![
            x.handle.clone(),
            other(&dy),
            other(&mask),
            out.handle.clone(),
            params,
        ],
    );
    out
}

/// Parameters of `adamw.wgsl`: the step's scalars ([`AdamWStep`]), the tensor's shape and the
/// gradient's strides, right-aligned to four axes.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct AdamWParams {
    len: u32,
    beta1: f32,
    beta2: f32,
    one_minus_beta1: f32,
    one_minus_beta2: f32,
    corr1: f32,
    corr2: f32,
    eps: f32,
    lr: f32,
    decay: f32,
    shape: [u32; 4],
    grad_strides: [u32; 4],
}

/// Parameters of the cross-entropy kernels.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct SoftCeParams {
    rows: u32,
    classes: u32,
}

/// Parameters of `pad.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct PadParams {
    len: u32,
    full: [u32; 4],
    start: [u32; 4],
    count: [u32; 4],
}

/// Parameters of the batch-norm kernels.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct NormParams {
    batch: u32,
    channels: u32,
    plane: u32,
    eps: f32,
}

fn norm_params(x: &CubeTensor) -> (NormParams, [u32; 3]) {
    let [n, c, h, w] = dims::<4>(x);
    let params = NormParams {
        batch: n as u32,
        channels: c as u32,
        plane: (h * w) as u32,
        eps: BN_EPS as f32,
    };
    // One workgroup per channel, folded over x and y of the grid.
    let groups = if c as u32 <= MAX_GROUPS {
        [c as u32, 1, 1]
    } else {
        let y = (c as u32).div_ceil(MAX_GROUPS);
        [(c as u32).div_ceil(y), y, 1]
    };
    (params, groups)
}

fn empty(like: &CubeTensor, shape: impl Into<Shape>) -> CubeTensor {
    let shape: Shape = shape.into();
    let n = shape.num_elements();
    let handle = like.client.empty(n.max(1) * std::mem::size_of::<f32>());
    CubeTensor::new_contiguous(
        like.client.clone(),
        like.device.clone(),
        shape,
        handle,
        DType::F32,
    )
}

/// Scale 1 and shift 0 for `n` channels: the kernels' affine, switched off.
fn identity_affine(n: usize) -> Vec<f32> {
    let mut a = vec![1.0; n];
    a.resize(2 * n, 0.0);
    a
}

fn upload<T: Pod>(like: &CubeTensor, value: &[T]) -> Handle {
    like.client.create_from_slice(bytemuck::cast_slice(value))
}

fn launch(kernel: TrainKernel, like: &CubeTensor, groups: [u32; 3], buffers: Vec<Handle>) {
    let args = buffers
        .into_iter()
        .fold(KernelArguments::new(), |a, h| a.with_buffer(h.binding()));
    like.client.launch(
        Box::new(SourceKernel::new(kernel, kernel.workgroup())),
        CubeCount::Static(groups[0], groups[1], groups[2]),
        args,
    );
}

fn cuts(points: &[u32]) -> StageCuts {
    StageCuts::new(points.to_vec())
        .or_else(|_| StageCuts::single(points.last().copied().unwrap_or(1)))
        .expect("a single stage of positive width")
}

/// `y [n, o, p] = W[o, ..lim(o)] · x[n, ..lim(o), p]` with the runtime's GEMM.
fn masked_gemm(x: CubeTensor, w: CubeTensor, mask: &StageMask, n: usize, p: usize) -> CubeTensor {
    let (o, i) = (mask.out_width(), mask.in_width());
    let out_cuts = cuts(&mask.out);
    let stages = out_cuts.stages();
    let spec = GemmSpec {
        batch: n,
        rows: o,
        depth: i,
        in_width: i,
        out_width: o,
        out_offset: 0,
        cols: p,
        out_cuts,
        in_cuts: cuts(&mask.inp),
        act: Activation::None,
        residual: false,
        active: vec![true; stages],
        pass_through: false,
    };
    let (_, groups, params) =
        gemm_launch(&spec, MAX_GROUPS, false).expect("pointwise: shapes checked by the caller");
    let y = empty(&x, [n, o, p]);
    let affine = upload(&x, &identity_affine(o));
    let params = upload(&x, &[params]);
    launch(
        TrainKernel::Gemm,
        &x,
        groups,
        vec![
            x.handle.clone(),
            w.handle.clone(),
            affine.clone(),
            affine,
            y.handle.clone(),
            params,
        ],
    );
    y
}

impl ElasticOps for CubeBackend {
    fn pointwise(x: FloatTensor<Self>, w: FloatTensor<Self>, mask: StageMask) -> FloatTensor<Self> {
        let [n, _, h, wd] = dims::<4>(&x);
        let y = masked_gemm(into_contiguous(x), into_contiguous(w), &mask, n, h * wd);
        let o = mask.out_width();
        Self::float_reshape(y, [n, o, h, wd].into())
    }

    fn pointwise_input_grad(
        dy: FloatTensor<Self>,
        w: FloatTensor<Self>,
        mask: StageMask,
    ) -> FloatTensor<Self> {
        let [n, o, h, wd] = dims::<4>(&dy);
        let i = mask.in_width();
        // dx = (W ⊙ M)ᵀ · dy: one dense GEMM with the masked weight transposed.
        let keep = mask.keep_matrix(true);
        let device = w.device.clone();
        let keep = Self::float_from_data(TensorData::new(keep, [i, o]), &device);
        let wt = Self::float_mul(Self::float_transpose(w), keep);
        let dense = StageMask::dense(i, o);
        let dx = masked_gemm(into_contiguous(dy), into_contiguous(wt), &dense, n, h * wd);
        Self::float_reshape(dx, [n, i, h, wd].into())
    }

    fn pointwise_weight_grad(
        x: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        mask: StageMask,
    ) -> FloatTensor<Self> {
        let [n, i, h, wd] = dims::<4>(&x);
        let o = mask.out_width();
        let (x, dy) = (into_contiguous(x), into_contiguous(dy));
        let dw = empty(&x, [o, i]);
        let params = WeightGradParams {
            rows: o as u32,
            depth: i as u32,
            cols: (h * wd) as u32,
            batch: n as u32,
            stages: (mask.out.len() - 1) as u32,
            pad: [0; 3],
            out_cuts: cuts(&mask.out).padded(),
            in_cuts: cuts(&mask.inp).padded(),
        };
        let groups = [i.div_ceil(16) as u32, o.div_ceil(16) as u32, 1];
        let params = upload(&x, &[params]);
        launch(
            TrainKernel::GemmWeightGrad,
            &x,
            groups,
            vec![
                x.handle.clone(),
                dy.handle.clone(),
                dw.handle.clone(),
                params,
            ],
        );
        dw
    }

    fn depthwise(
        x: FloatTensor<Self>,
        kernel: FloatTensor<Self>,
        stride: usize,
    ) -> FloatTensor<Self> {
        let [n, c, h, wd] = dims::<4>(&x);
        let [_, k, _] = dims::<3>(&kernel);
        let spec = DwConvSpec {
            batch: n,
            channels: c,
            height: h,
            width: wd,
            stride,
            cuts: cuts(&[0, c as u32]),
            kernels: vec![k],
            w_stride: k * k,
            act: Activation::None,
            active: vec![true],
            channel_offset: 0,
            channel_total: c,
        };
        let params = dwconv_params(&spec).expect("depthwise: shapes checked by the caller");
        let (x, kernel) = (into_contiguous(x), into_contiguous(kernel));
        let y = empty(&x, [n, c, spec.out_height(), spec.out_width()]);
        let groups = linear_groups_within(n * c * spec.out_height() * spec.out_width(), MAX_GROUPS);
        let (affine, params) = (upload(&x, &identity_affine(c)), upload(&x, &[params]));
        launch(
            TrainKernel::DwConv,
            &x,
            groups,
            vec![
                x.handle.clone(),
                kernel.handle.clone(),
                affine,
                y.handle.clone(),
                params,
            ],
        );
        y
    }

    fn depthwise_input_grad(
        dy: FloatTensor<Self>,
        kernel: FloatTensor<Self>,
        stride: usize,
        height: usize,
        width: usize,
    ) -> FloatTensor<Self> {
        let [n, c, oh, ow] = dims::<4>(&dy);
        let [_, k, _] = dims::<3>(&kernel);
        let (dy, kernel) = (into_contiguous(dy), into_contiguous(kernel));
        let dx = empty(&dy, [n, c, height, width]);
        let params = dw_grad_params([n, c, height, width], [oh, ow], stride, k);
        let groups = linear_groups_within(n * c * height * width, MAX_GROUPS);
        let params = upload(&dy, &[params]);
        launch(
            TrainKernel::DwConvInputGrad,
            &dy,
            groups,
            vec![
                dy.handle.clone(),
                kernel.handle.clone(),
                dx.handle.clone(),
                params,
            ],
        );
        dx
    }

    fn depthwise_weight_grad(
        x: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        stride: usize,
        k: usize,
    ) -> FloatTensor<Self> {
        let xs = dims::<4>(&x);
        let [_, _, oh, ow] = dims::<4>(&dy);
        let (x, dy) = (into_contiguous(x), into_contiguous(dy));
        let dk = empty(&x, [xs[1], k, k]);
        let params = upload(&x, &[dw_grad_params(xs, [oh, ow], stride, k)]);
        launch(
            TrainKernel::DwConvWeightGrad,
            &x,
            [(k * k) as u32, xs[1] as u32, 1],
            vec![
                x.handle.clone(),
                dy.handle.clone(),
                dk.handle.clone(),
                params,
            ],
        );
        dk
    }
}

impl OptimOps for CubeBackend {
    fn adamw(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        m1: FloatTensor<Self>,
        m2: FloatTensor<Self>,
        step: AdamWStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        // The gradient is read through its strides (burn often hands over a transposed
        // view); the moments are this op's own outputs, the parameter a whole tensor.
        let [param, m1, m2] = [param, m1, m2].map(into_contiguous);
        let grad = if grad.meta.shape().num_dims() <= 4 {
            grad
        } else {
            into_contiguous(grad)
        };
        let shape = burn::backend::TensorMetadata::shape(&param);
        let len = shape.num_elements();
        let out = || empty(&param, shape.clone());
        let (p_out, m1_out, m2_out) = (out(), out(), out());
        let (gshape, gstrides) = (grad.meta.shape(), grad.meta.strides());
        let mut params = AdamWParams {
            len: len as u32,
            beta1: step.beta1,
            beta2: step.beta2,
            one_minus_beta1: step.one_minus_beta1,
            one_minus_beta2: step.one_minus_beta2,
            corr1: step.corr1,
            corr2: step.corr2,
            eps: step.eps,
            lr: step.lr,
            decay: step.decay,
            shape: [1; 4],
            grad_strides: [0; 4],
        };
        let off = 4 - gshape.num_dims();
        for d in 0..gshape.num_dims() {
            params.shape[off + d] = gshape[d] as u32;
            params.grad_strides[off + d] = gstrides[d] as u32;
        }
        let params = upload(&param, &[params]);
        launch(
            TrainKernel::AdamW,
            &param,
            linear_groups_within(len, MAX_GROUPS),
            vec![
                param.handle.clone(),
                grad.handle.clone(),
                m1.handle.clone(),
                m2.handle.clone(),
                p_out.handle.clone(),
                m1_out.handle.clone(),
                m2_out.handle.clone(),
                params,
            ],
        );
        (p_out, m1_out, m2_out)
    }
}

impl SoftCeOps for CubeBackend {
    fn soft_ce(z: FloatTensor<Self>, t: FloatTensor<Self>) -> FloatTensor<Self> {
        let [z, t] = [z, t].map(into_contiguous);
        let [rows, classes] = dims::<2>(&z);
        let loss = empty(&z, [1]);
        let params = upload(
            &z,
            &[SoftCeParams {
                rows: rows as u32,
                classes: classes as u32,
            }],
        );
        launch(
            TrainKernel::SoftCe,
            &z,
            [1, 1, 1],
            vec![
                z.handle.clone(),
                t.handle.clone(),
                loss.handle.clone(),
                params,
            ],
        );
        loss
    }

    fn soft_ce_grad(
        z: FloatTensor<Self>,
        t: FloatTensor<Self>,
        dy: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let [z, t, dy] = [z, t, dy].map(into_contiguous);
        let [rows, classes] = dims::<2>(&z);
        let dz = empty(&z, [rows, classes]);
        let params = upload(
            &z,
            &[SoftCeParams {
                rows: rows as u32,
                classes: classes as u32,
            }],
        );
        launch(
            TrainKernel::SoftCeGrad,
            &z,
            linear_groups_within(rows * classes, MAX_GROUPS),
            vec![
                z.handle.clone(),
                t.handle.clone(),
                dy.handle.clone(),
                dz.handle.clone(),
                params,
            ],
        );
        dz
    }
}

impl SliceOps for CubeBackend {
    fn narrow(x: FloatTensor<Self>, window: Window) -> FloatTensor<Self> {
        Self::float_slice(x, &window.slices())
    }

    fn pad(dy: FloatTensor<Self>, window: Window) -> FloatTensor<Self> {
        let dy = into_contiguous(dy);
        let len: usize = window.full.iter().product();
        let out = empty(&dy, window.full.clone());
        let [full, start, count] = window.aligned();
        let params = upload(
            &dy,
            &[PadParams {
                len: len as u32,
                full,
                start,
                count,
            }],
        );
        launch(
            TrainKernel::Pad,
            &dy,
            linear_groups_within(len, MAX_GROUPS),
            vec![dy.handle.clone(), out.handle.clone(), params],
        );
        out
    }
}

impl ActOps for CubeBackend {
    fn activate(x: FloatTensor<Self>, act: Activation) -> FloatTensor<Self> {
        activation_pass(x, None, None, act)
    }

    fn activate_grad(
        x: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        act: Activation,
    ) -> FloatTensor<Self> {
        activation_pass(x, Some(dy), None, act)
    }

    fn activate_gated(
        x: FloatTensor<Self>,
        mask: FloatTensor<Self>,
        act: Activation,
    ) -> FloatTensor<Self> {
        activation_pass(x, None, Some(mask), act)
    }

    fn activate_gated_grad(
        x: FloatTensor<Self>,
        mask: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        act: Activation,
    ) -> FloatTensor<Self> {
        activation_pass(x, Some(dy), Some(mask), act)
    }
}

/// One launch of a batch-norm kernel over `inputs` (`inputs[0]` is x `[N, C, H, W]`): returns
/// its three outputs, one shaped like x and two `[C]`.
fn norm_launch(kernel: TrainKernel, inputs: Vec<CubeTensor>) -> [CubeTensor; 3] {
    let inputs: Vec<CubeTensor> = inputs.into_iter().map(into_contiguous).collect();
    let x = &inputs[0];
    let shape = dims::<4>(x);
    let (params, groups) = norm_params(x);
    let outputs = [empty(x, shape), empty(x, [shape[1]]), empty(x, [shape[1]])];
    let mut buffers: Vec<Handle> = inputs.iter().map(|t| t.handle.clone()).collect();
    buffers.extend(outputs.iter().map(|t| t.handle.clone()));
    buffers.push(upload(x, &[params]));
    launch(kernel, x, groups, buffers);
    outputs
}

impl NormOps for CubeBackend {
    fn norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let [y, mean, var] = norm_launch(TrainKernel::BatchNorm, vec![x, gamma, beta]);
        (y, mean, var)
    }

    fn norm_grad(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        var: FloatTensor<Self>,
        dy: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let [dx, dgamma, dbeta] =
            norm_launch(TrainKernel::BatchNormGrad, vec![x, gamma, mean, var, dy]);
        (dx, dgamma, dbeta)
    }
}

fn dw_grad_params(x: [usize; 4], out: [usize; 2], stride: usize, k: usize) -> DwGradParams {
    DwGradParams {
        batch: x[0] as u32,
        channels: x[1] as u32,
        height: x[2] as u32,
        width: x[3] as u32,
        out_height: out[0] as u32,
        out_width: out[1] as u32,
        stride: stride as u32,
        k: k as u32,
    }
}

crate::ops::wgsl_mirror_tests! {
    weight_grad_params_mirror_the_wgsl: WeightGradParams =
        include_str!("../../shaders/gemm_weight_grad.wgsl"),
        [rows, depth, cols, batch, stages, pad, out_cuts, in_cuts];
    dw_input_grad_params_mirror_the_wgsl: DwGradParams =
        include_str!("../../shaders/dwconv_input_grad.wgsl"),
        [batch, channels, height, width, out_height, out_width, stride, k];
    dw_weight_grad_params_mirror_the_wgsl: DwGradParams =
        include_str!("../../shaders/dwconv_weight_grad.wgsl"),
        [batch, channels, height, width, out_height, out_width, stride, k];
    norm_params_mirror_the_wgsl: NormParams = include_str!("../../shaders/batch_norm.wgsl"),
        [batch, channels, plane, eps];
    norm_grad_params_mirror_the_wgsl: NormParams =
        include_str!("../../shaders/batch_norm_grad.wgsl"),
        [batch, channels, plane, eps];
    soft_ce_params_mirror_the_wgsl: SoftCeParams = include_str!("../../shaders/soft_ce.wgsl"),
        [rows, classes];
    soft_ce_grad_params_mirror_the_wgsl: SoftCeParams =
        include_str!("../../shaders/soft_ce_grad.wgsl"),
        [rows, classes];
    pad_params_mirror_the_wgsl: PadParams = include_str!("../../shaders/pad.wgsl"),
        [len, full, start, count];
    act_params_mirror_the_wgsl: ActParams = ACTIVATION_SOURCE,
        [len, kind, backward, gated, channels, plane];
    adamw_params_mirror_the_wgsl: AdamWParams = include_str!("../../shaders/adamw.wgsl"),
        [len, beta1, beta2, one_minus_beta1, one_minus_beta2, corr1, corr2, eps, lr, decay,
         shape, grad_strides];
}
