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
use burn::tensor::TensorData;
use bytemuck::{Pod, Zeroable};

use super::{dims, ElasticOps, StageMask};
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

fn empty<const D: usize>(like: &CubeTensor, shape: [usize; D]) -> CubeTensor {
    let n: usize = shape.iter().product();
    let handle = like.client.empty(n.max(1) * std::mem::size_of::<f32>());
    CubeTensor::new_contiguous(
        like.client.clone(),
        like.device.clone(),
        shape.into(),
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
}
