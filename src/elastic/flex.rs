//! [`ElasticOps`] on burn's `Flex` CPU backend: this crate's CPU kernels on the raw buffers.

use burn::backend::flex::FlexTensor;
use burn::backend::{tensor::FloatTensor, Flex};
use burn::tensor::{DType, TensorData};

use super::depthwise_cpu::{self, DepthwiseShape};
use super::pointwise_cpu::{self, PointwiseShape};
use super::{dims, ElasticOps, StageMask};
use crate::cpu::depthwise::PlaneConv;

/// The tensor's values, row-major (a view when already contiguous, else a copy).
pub(super) fn values(t: &FlexTensor) -> std::borrow::Cow<'_, [f32]> {
    assert_eq!(t.dtype(), DType::F32, "elastic ops take f32 tensors");
    match t.as_slice::<f32>() {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(
            t.to_contiguous()
                .as_slice::<f32>()
                .map(<[f32]>::to_vec)
                .unwrap_or_default(),
        ),
    }
}

pub(super) fn tensor<const D: usize>(values: Vec<f32>, shape: [usize; D]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

fn pw_shape<'a>(mask: &'a StageMask, n: usize, p: usize) -> PointwiseShape<'a> {
    PointwiseShape {
        n,
        p,
        out_cuts: &mask.out,
        in_cuts: &mask.inp,
    }
}

fn dw_shape(x: [usize; 4], k: usize, stride: usize) -> DepthwiseShape {
    DepthwiseShape {
        n: x[0],
        c: x[1],
        plane: PlaneConv {
            h: x[2],
            w: x[3],
            k,
            stride,
        },
    }
}

impl ElasticOps for Flex {
    fn pointwise(x: FloatTensor<Self>, w: FloatTensor<Self>, mask: StageMask) -> FloatTensor<Self> {
        let [n, i, h, wd] = dims::<4>(&x);
        let [o, wi] = dims::<2>(&w);
        assert!(
            wi == i && mask.in_width() == i && mask.out_width() == o,
            "pointwise: shapes"
        );
        let y = pointwise_cpu::forward(&pw_shape(&mask, n, h * wd), &values(&x), &values(&w));
        tensor(y, [n, o, h, wd])
    }

    fn pointwise_input_grad(
        dy: FloatTensor<Self>,
        w: FloatTensor<Self>,
        mask: StageMask,
    ) -> FloatTensor<Self> {
        let [n, _, h, wd] = dims::<4>(&dy);
        let i = mask.in_width();
        let dx =
            pointwise_cpu::backward_input(&pw_shape(&mask, n, h * wd), &values(&dy), &values(&w));
        tensor(dx, [n, i, h, wd])
    }

    fn pointwise_weight_grad(
        x: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        mask: StageMask,
    ) -> FloatTensor<Self> {
        let [n, i, h, wd] = dims::<4>(&x);
        let o = mask.out_width();
        let dw =
            pointwise_cpu::backward_weight(&pw_shape(&mask, n, h * wd), &values(&x), &values(&dy));
        tensor(dw, [o, i])
    }

    fn depthwise(
        x: FloatTensor<Self>,
        kernel: FloatTensor<Self>,
        stride: usize,
    ) -> FloatTensor<Self> {
        let xd = dims::<4>(&x);
        let [c, k, _] = dims::<3>(&kernel);
        assert_eq!(c, xd[1], "depthwise: channels");
        let s = dw_shape(xd, k, stride);
        let y = depthwise_cpu::forward(&s, &values(&x), &values(&kernel));
        tensor(y, [s.n, s.c, s.plane.out_h(), s.plane.out_w()])
    }

    fn depthwise_input_grad(
        dy: FloatTensor<Self>,
        kernel: FloatTensor<Self>,
        stride: usize,
        height: usize,
        width: usize,
    ) -> FloatTensor<Self> {
        let [n, c, _, _] = dims::<4>(&dy);
        let [_, k, _] = dims::<3>(&kernel);
        let s = dw_shape([n, c, height, width], k, stride);
        let dx = depthwise_cpu::backward_input(&s, &values(&dy), &values(&kernel));
        tensor(dx, [n, c, height, width])
    }

    fn depthwise_weight_grad(
        x: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        stride: usize,
        k: usize,
    ) -> FloatTensor<Self> {
        let s = dw_shape(dims::<4>(&x), k, stride);
        let dk = depthwise_cpu::backward_weight(&s, &values(&x), &values(&dy));
        tensor(dk, [s.c, k, k])
    }
}
