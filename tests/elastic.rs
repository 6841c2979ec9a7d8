//! The elastic ops (burn backend extension) against their composition of burn ops and against
//! finite differences, forward and gradients, on burn's CPU backend (`Flex`, this crate's CPU
//! kernels) and on wgpu's CPU adapter (lavapipe, this crate's WGSL kernels).
//!
//! Inputs are fresh random numbers (seed printed), sizes odd. Bound: max |a − b| over
//! max |b| ≤ 1e-4 for forward and gradients (f32, reductions of ≤ 10³ terms). The finite
//! differences are of L = Σ y ⊙ g, linear in each argument, so a central difference with step
//! 0.5 is exact up to rounding: bound 1e-3 relative to the largest gradient entry.

mod common;

use burn::tensor::{Device, DeviceKind, Tensor, TensorData};
use enas4d::elastic::{self, reference, StageMask};
use enas4d::train::parse_device;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const TOL: f64 = 1e-4;
const FD_TOL: f64 = 1e-3;

fn random(rng: &mut SmallRng, len: usize) -> Vec<f32> {
    (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec::<f32>().expect("f32 tensor")
}

/// max |a − b| / max |b|.
fn rel_err(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "lengths");
    let scale = b.iter().fold(0f64, |m, v| m.max(v.abs() as f64)).max(1e-12);
    let diff = a
        .iter()
        .zip(b)
        .fold(0f64, |m, (x, y)| m.max((x - y).abs() as f64));
    diff / scale
}

fn check(what: &str, got: &[f32], want: &[f32], tol: f64) {
    let e = rel_err(got, want);
    assert!(e <= tol, "{what}: relative error {e:.2e} > {tol:.0e}");
    assert!(
        want.iter().any(|v| v.abs() > 1e-3),
        "{what}: reference is all zeros, the test would prove nothing"
    );
}

/// burn's CPU backend and a wgpu device: lavapipe, or the `enas4d train --device` name in
/// `ENAS4D_TEST_WGPU` (e.g. `gpu`) to check the WGSL kernels on a real GPU.
fn devices() -> Vec<(&'static str, Device)> {
    let wgpu = match std::env::var("ENAS4D_TEST_WGPU") {
        Ok(name) => parse_device(&name).expect("ENAS4D_TEST_WGPU").0,
        Err(_) => Device::wgpu(DeviceKind::Cpu),
    };
    vec![("flex", Device::flex()), ("wgpu", wgpu)]
}

/// Random cut points of `width` into `stages` slices.
fn random_cuts(rng: &mut SmallRng, width: u32, stages: usize) -> Vec<u32> {
    let mut inner: Vec<u32> = Vec::new();
    while inner.len() + 1 < stages {
        let c = rng.random_range(1..width);
        if !inner.contains(&c) {
            inner.push(c);
        }
    }
    inner.sort_unstable();
    let mut points = vec![0];
    points.extend(inner);
    points.push(width);
    points
}

/// Central differences (step `step`) of `loss` at six random entries of `base`, against `grad`:
/// error ≤ `tol` relative to the largest gradient entry.
fn central_differences(
    what: &str,
    rng: &mut SmallRng,
    base: &TensorData,
    grad: &[f32],
    step: f32,
    tol: f64,
    loss: &mut dyn FnMut(TensorData) -> f64,
) {
    let scale = grad.iter().fold(0f64, |m, v| m.max(v.abs() as f64));
    let mut vals = base.try_to_vec::<f32>().expect("f32");
    for _ in 0..6 {
        let j = rng.random_range(0..vals.len());
        let orig = vals[j];
        let mut at = |v: f32| {
            vals[j] = v;
            loss(TensorData::new(vals.clone(), base.shape().clone()))
        };
        let fd = (at(orig + step) - at(orig - step)) / (2.0 * f64::from(step));
        vals[j] = orig;
        let err = (fd - grad[j] as f64).abs() / scale.max(1e-12);
        assert!(
            err <= tol,
            "{what}: d/d[{j}] finite difference {fd} vs gradient {} (rel {err:.2e})",
            grad[j]
        );
    }
}

/// Central differences of L at a few entries of `arg` (0: x, 1: w), against `grad`.
#[allow(clippy::too_many_arguments)]
fn finite_differences<const DW: usize>(
    what: &str,
    rng: &mut SmallRng,
    device: &Device,
    loss: &dyn Fn(Tensor<4>, Tensor<DW>) -> f64,
    x: &TensorData,
    w: &TensorData,
    arg: usize,
    grad: &[f32],
) {
    let base = if arg == 0 { x } else { w };
    central_differences(what, rng, base, grad, 0.5, FD_TOL, &mut |d| {
        let (xt, wt) = if arg == 0 {
            (d, w.clone())
        } else {
            (x.clone(), d)
        };
        loss(Tensor::from_data(xt, device), Tensor::from_data(wt, device))
    });
}

#[test]
fn pointwise_matches_composition_and_finite_differences() {
    let seed = common::fresh_seed("pointwise");
    let mut rng = SmallRng::seed_from_u64(seed);
    for (name, device) in devices() {
        for (n, i, o, h, w, stages) in [
            (3, 13, 11, 5, 7, 1),
            (2, 17, 23, 3, 5, 2),
            (3, 29, 19, 9, 9, 3),
            (5, 9, 7, 1, 1, 3),
        ] {
            let what = format!("{name} pointwise n{n} i{i} o{o} {h}x{w} S{stages}");
            let mask = StageMask {
                out: random_cuts(&mut rng, o as u32, stages),
                inp: random_cuts(&mut rng, i as u32, stages),
            };
            let xd = TensorData::new(random(&mut rng, n * i * h * w), [n, i, h, w]);
            let wd = TensorData::new(random(&mut rng, o * i), [o, i]);
            let gd = TensorData::new(random(&mut rng, n * o * h * w), [n, o, h, w]);
            let ad = device.clone().autodiff();
            let run = |custom: bool| {
                let x = Tensor::<4>::from_data(xd.clone(), &ad).require_grad();
                let wt = Tensor::<2>::from_data(wd.clone(), &ad).require_grad();
                let g = Tensor::<4>::from_data(gd.clone(), &ad);
                let y = if custom {
                    elastic::pointwise(x.clone(), wt.clone(), mask.clone()).expect("valid")
                } else {
                    reference::pointwise(x.clone(), wt.clone(), &mask)
                };
                let grads = (y.clone() * g).sum().backward();
                (
                    values(y),
                    values(x.grad(&grads).expect("dx")),
                    values(wt.grad(&grads).expect("dw")),
                )
            };
            let (y, dx, dw) = run(true);
            let (yr, dxr, dwr) = run(false);
            check(&format!("{what} forward"), &y, &yr, TOL);
            check(&format!("{what} dx"), &dx, &dxr, TOL);
            check(&format!("{what} dw"), &dw, &dwr, TOL);
            for (j, v) in dw.iter().enumerate() {
                if !mask.keeps(j / i, j % i) {
                    assert_eq!(
                        *v,
                        0.0,
                        "{what}: masked weight ({}, {}) has a gradient",
                        j / i,
                        j % i
                    );
                }
            }
            let loss = |x: Tensor<4>, wt: Tensor<2>| -> f64 {
                let g = Tensor::<4>::from_data(gd.clone(), &x.device());
                let y = elastic::pointwise(x, wt, mask.clone()).expect("valid");
                f64::from((y * g).sum().into_scalar::<f32>())
            };
            finite_differences(&what, &mut rng, &device, &loss, &xd, &wd, 0, &dx);
            finite_differences(&what, &mut rng, &device, &loss, &xd, &wd, 1, &dw);
        }
    }
}

#[test]
fn depthwise_matches_composition_and_finite_differences() {
    let seed = common::fresh_seed("depthwise");
    let mut rng = SmallRng::seed_from_u64(seed);
    for (name, device) in devices() {
        for (n, c, h, w, k, stride) in [
            (2, 5, 9, 7, 3, 1),
            (3, 7, 11, 11, 5, 2),
            (2, 3, 8, 9, 7, 1),
            (2, 6, 7, 5, 7, 2),
            (3, 4, 2, 3, 5, 1),
            // Wide enough for the CPU kernel's 32- and 8-channel register blocks and a tail.
            (2, 45, 6, 5, 7, 2),
            (3, 41, 2, 2, 7, 1),
        ] {
            let what = format!("{name} depthwise n{n} c{c} {h}x{w} k{k} s{stride}");
            let xd = TensorData::new(random(&mut rng, n * c * h * w), [n, c, h, w]);
            let kd = TensorData::new(random(&mut rng, c * k * k), [c, k, k]);
            let (oh, ow) = ((h - 1) / stride + 1, (w - 1) / stride + 1);
            let gd = TensorData::new(random(&mut rng, n * c * oh * ow), [n, c, oh, ow]);
            let ad = device.clone().autodiff();
            let run = |custom: bool| {
                let x = Tensor::<4>::from_data(xd.clone(), &ad).require_grad();
                let kt = Tensor::<3>::from_data(kd.clone(), &ad).require_grad();
                let g = Tensor::<4>::from_data(gd.clone(), &ad);
                let y = if custom {
                    elastic::depthwise(x.clone(), kt.clone(), stride).expect("valid")
                } else {
                    reference::depthwise(x.clone(), kt.clone(), stride)
                };
                assert_eq!(y.dims(), [n, c, oh, ow], "{what}: output shape");
                let grads = (y.clone() * g).sum().backward();
                (
                    values(y),
                    values(x.grad(&grads).expect("dx")),
                    values(kt.grad(&grads).expect("dk")),
                )
            };
            let (y, dx, dk) = run(true);
            let (yr, dxr, dkr) = run(false);
            check(&format!("{what} forward"), &y, &yr, TOL);
            check(&format!("{what} dx"), &dx, &dxr, TOL);
            check(&format!("{what} dk"), &dk, &dkr, TOL);
            let loss = |x: Tensor<4>, kt: Tensor<3>| -> f64 {
                let g = Tensor::<4>::from_data(gd.clone(), &x.device());
                let y = elastic::depthwise(x, kt, stride).expect("valid");
                f64::from((y * g).sum().into_scalar::<f32>())
            };
            finite_differences(&what, &mut rng, &device, &loss, &xd, &kd, 0, &dx);
            finite_differences(&what, &mut rng, &device, &loss, &xd, &kd, 1, &dk);
        }
    }
}

#[test]
fn bad_shapes_are_errors() {
    let device = Device::flex();
    let x = Tensor::<4>::ones([1, 4, 3, 3], &device);
    let w = Tensor::<2>::ones([5, 3], &device);
    assert!(elastic::pointwise(x.clone(), w, StageMask::dense(5, 3)).is_err());
    let w = Tensor::<2>::ones([5, 4], &device);
    assert!(elastic::pointwise(x.clone(), w, StageMask::dense(6, 4)).is_err());
    let k = Tensor::<3>::ones([4, 4, 4], &device);
    assert!(elastic::depthwise(x.clone(), k, 1).is_err());
    let k = Tensor::<3>::ones([3, 3, 3], &device);
    assert!(elastic::depthwise(x.clone(), k, 1).is_err());
    let k = Tensor::<3>::ones([4, 3, 3], &device);
    assert!(elastic::depthwise(x, k, 0).is_err());
}

/// L = Σ y ⊙ g of the fused batch norm, in f64.
fn norm_loss(x: &TensorData, gamma: &TensorData, beta: &TensorData, g: &TensorData) -> f64 {
    let device = Device::flex();
    let (y, _, _) = elastic::batch_norm(
        Tensor::from_data(x.clone(), &device),
        Tensor::from_data(gamma.clone(), &device),
        Tensor::from_data(beta.clone(), &device),
    )
    .expect("valid");
    let (y, g) = (values(y), g.try_to_vec::<f32>().expect("f32"));
    y.iter()
        .zip(&g)
        .map(|(a, b)| f64::from(*a) * f64::from(*b))
        .sum()
}

#[test]
fn batch_norm_matches_composition_and_finite_differences() {
    let seed = common::fresh_seed("batch_norm");
    let mut rng = SmallRng::seed_from_u64(seed);
    for (n, c, h, w) in [
        (3, 5, 7, 9),
        (4, 13, 1, 1),
        (1, 7, 3, 5),
        (5, 11, 4, 4),
        (2, 3, 9, 7),
    ] {
        let what = format!("batch norm n{n} c{c} {h}x{w}");
        // Per-channel offsets and scales, so that centring and scaling matter.
        let offset = random(&mut rng, c);
        let spread: Vec<f32> = (0..c).map(|_| rng.random_range(0.2f32..3.0)).collect();
        let xv: Vec<f32> = (0..n * c * h * w)
            .map(|j| {
                let ch = (j / (h * w)) % c;
                offset[ch] * 4.0 + spread[ch] * rng.random_range(-1.0f32..1.0)
            })
            .collect();
        let xd = TensorData::new(xv, [n, c, h, w]);
        let gammad = TensorData::new(random(&mut rng, c), [c]);
        let betad = TensorData::new(random(&mut rng, c), [c]);
        let gd = TensorData::new(random(&mut rng, n * c * h * w), [n, c, h, w]);
        // `elastic::batch_norm` (the fused op: CPU kernels on flex, WGSL kernels on wgpu) or
        // the composition.
        let run = |device: &Device, fused: bool| {
            let ad = device.clone().autodiff();
            let x = Tensor::<4>::from_data(xd.clone(), &ad).require_grad();
            let gamma = Tensor::<1>::from_data(gammad.clone(), &ad).require_grad();
            let beta = Tensor::<1>::from_data(betad.clone(), &ad).require_grad();
            let (y, mean, var) = if fused {
                elastic::batch_norm(x.clone(), gamma.clone(), beta.clone()).expect("valid")
            } else {
                reference::batch_norm(x.clone(), gamma.clone(), beta.clone())
            };
            let g = Tensor::<4>::from_data(gd.clone(), &ad);
            let grads = (y.clone() * g).sum().backward();
            [
                values(y),
                values(mean),
                values(var),
                values(x.grad(&grads).expect("dx")),
                values(gamma.grad(&grads).expect("dgamma")),
                values(beta.grad(&grads).expect("dbeta")),
            ]
        };
        let want = run(&Device::flex(), false);
        for (name, device) in devices() {
            let got = run(&device, true);
            for (k, out) in ["y", "mean", "var", "dx", "dgamma", "dbeta"]
                .iter()
                .enumerate()
            {
                check(&format!("{name} {what} {out}"), &got[k], &want[k], TOL);
            }
        }
        let got = run(&Device::flex(), true);
        // Central differences of L in x and in γ and β (L is linear in them). In x the
        // truncation error grows as (step / σ)², σ a channel's spread over as few as four
        // values (n4 1×1, σ down to ~0.05): step 1e-3 keeps it, and the f32 rounding of L
        // (~1e-6 / step), well below the bound.
        let args = [
            (&xd, &got[3], 1e-3f32),
            (&gammad, &got[4], 0.5),
            (&betad, &got[5], 0.5),
        ];
        for (arg, (base, grad, step)) in args.into_iter().enumerate() {
            let what = format!("{what} argument {arg}");
            central_differences(
                &what,
                &mut rng,
                base,
                grad,
                step,
                5e-3,
                &mut |d| match arg {
                    0 => norm_loss(&d, &gammad, &betad, &gd),
                    1 => norm_loss(&xd, &d, &betad, &gd),
                    _ => norm_loss(&xd, &gammad, &d, &gd),
                },
            );
        }
    }
}

/// The fused activations (`elastic::activation`, and `gated_activation` with a channel mask:
/// CPU loops on flex, `activation_train.wgsl` on wgpu) against burn's own activations (times
/// the mask), value and input gradient of L = Σ act(x) ⊙ g, on
/// fresh random inputs of odd size spanning every piece (−5 … 5). Bound 1e-5 relative (one
/// rounding apart: the two forms of hswish round differently).
#[test]
fn activations_match_burns_and_their_gradients() {
    use enas4d::space::Activation;
    let seed = common::fresh_seed("activations");
    let mut rng = SmallRng::seed_from_u64(seed);
    for act in [Activation::Relu, Activation::Hswish, Activation::Hsigmoid] {
        let d2 = [
            rng.random_range(1..6) * 2 + 1,
            rng.random_range(3..40) * 2 + 1,
        ];
        activation_case(&mut rng, act, d2, false);
        // Gated by a 0/1 channel mask (a block's depth gate) on x [N, C, H, W].
        let d4 = [3, rng.random_range(2..6) * 2 + 1, 5, 3];
        activation_case(&mut rng, act, d4, true);
    }
    let x = Tensor::<4>::ones([1, 3, 2, 2], &Device::flex());
    let m = Tensor::<1>::ones([4], &Device::flex());
    assert!(elastic::gated_activation(x, Some(m), Activation::Relu).is_err());
}

fn activation_case<const D: usize>(
    rng: &mut SmallRng,
    act: enas4d::space::Activation,
    dims: [usize; D],
    gated: bool,
) {
    use burn::tensor::activation::{hard_sigmoid, hard_swish, relu};
    use enas4d::space::Activation;
    let n = dims.iter().product();
    let xd = TensorData::new(
        (0..n)
            .map(|_| rng.random_range(-5.0f32..5.0))
            .collect::<Vec<_>>(),
        dims,
    );
    let gd = TensorData::new(random(rng, n), dims);
    let channels = dims[1];
    let cut = rng.random_range(1..channels);
    let md = TensorData::new(
        (0..channels)
            .map(|c| f32::from(u8::from(c < cut)))
            .collect::<Vec<_>>(),
        [channels],
    );
    let run = |device: &Device, fused: bool| {
        let ad = device.clone().autodiff();
        let x = Tensor::<D>::from_data(xd.clone(), &ad).require_grad();
        let mask = Tensor::<1>::from_data(md.clone(), &ad);
        let y = match (fused, gated) {
            (true, false) => elastic::activation(x.clone(), act),
            (true, true) => {
                let d4: [usize; 4] = dims.as_slice().try_into().expect("gated cases are 4-D");
                let x4: Tensor<4> = x.clone().reshape(d4);
                elastic::gated_activation(x4, Some(mask), act)
                    .expect("widths agree")
                    .reshape(dims)
            }
            (false, _) => {
                let y = match act {
                    Activation::Relu => relu(x.clone()),
                    Activation::Hswish => hard_swish(x.clone()),
                    _ => hard_sigmoid(x.clone(), 1.0 / 6.0, 0.5),
                };
                if gated {
                    let mut shape = [1; D];
                    shape[1] = channels;
                    y * mask.reshape(shape)
                } else {
                    y
                }
            }
        };
        let grads = (y.clone() * Tensor::from_data(gd.clone(), &ad))
            .sum()
            .backward();
        [values(y), values(x.grad(&grads).expect("dx"))]
    };
    let want = run(&Device::flex(), false);
    for (name, device) in devices() {
        let got = run(&device, true);
        let what = format!("{name} {act:?} {dims:?} gated {gated}");
        check(&format!("{what} y"), &got[0], &want[0], 1e-5);
        check(&format!("{what} dx"), &got[1], &want[1], 1e-5);
    }
}

/// `elastic::narrow` (a view forward, one-pass padded gradient: `pad_cpu` on flex, `pad.wgsl`
/// on wgpu) against burn's own slice, value and gradient of L = Σ x[window] ⊙ g, for random
/// windows of fresh random tensors of rank 2 to 4 with odd sizes. Exact (copies only).
#[test]
fn narrow_matches_burns_slice_and_its_gradient() {
    let seed = common::fresh_seed("narrow");
    let mut rng = SmallRng::seed_from_u64(seed);
    for _ in 0..3 {
        let d4 = [0; 4].map(|_| rng.random_range(1..5) * 2 + 1);
        let d3 = [0; 3].map(|_| rng.random_range(1..5) * 2 + 1);
        let d2 = [0; 2].map(|_| rng.random_range(1..9) * 2 + 1);
        narrow_case(&mut rng, d4);
        narrow_case(&mut rng, d3);
        narrow_case(&mut rng, d2);
    }
    let x = Tensor::<2>::ones([3, 5], &Device::flex());
    assert!(
        elastic::narrow(x.clone(), [0..4, 0..5]).is_err(),
        "past the end"
    );
    assert!(elastic::narrow(x, [1..1, 0..5]).is_err(), "empty");
}

fn narrow_case<const D: usize>(rng: &mut SmallRng, dims: [usize; D]) {
    let ranges = dims.map(|n| {
        let a = rng.random_range(0..n);
        a..rng.random_range(a + 1..=n)
    });
    let xd = TensorData::new(random(rng, dims.iter().product()), dims);
    let counts: Vec<usize> = ranges.iter().map(|r| r.len()).collect();
    let gd = TensorData::new(random(rng, counts.iter().product()), counts);
    let run = |device: &Device, fused: bool| {
        let ad = device.clone().autodiff();
        let x = Tensor::<D>::from_data(xd.clone(), &ad).require_grad();
        let y = if fused {
            elastic::narrow(x.clone(), ranges.clone()).expect("in bounds")
        } else {
            x.clone().slice(ranges.clone())
        };
        let grads = (y.clone() * Tensor::from_data(gd.clone(), &ad))
            .sum()
            .backward();
        [values(y), values(x.grad(&grads).expect("dx"))]
    };
    let want = run(&Device::flex(), false);
    assert!(
        want[0].iter().any(|v| v.abs() > 1e-3),
        "a window of zeros proves nothing"
    );
    for (name, device) in devices() {
        let got = run(&device, true);
        assert_eq!(got[0], want[0], "{name} {dims:?} {ranges:?}: values");
        assert_eq!(got[1], want[1], "{name} {dims:?} {ranges:?}: gradient");
    }
}

/// The fused soft-target cross-entropy (`elastic::soft_cross_entropy`: CPU loops on flex,
/// `soft_ce.wgsl` / `soft_ce_grad.wgsl` on wgpu) against burn's composition (log-softmax,
/// product, sums, mean), loss and gradient with respect to the logits, on fresh random logits
/// (±6) and soft targets of odd sizes. Bound 1e-5 relative.
#[test]
fn soft_cross_entropy_matches_the_composition() {
    use burn::tensor::activation::log_softmax;
    let seed = common::fresh_seed("soft_ce");
    let mut rng = SmallRng::seed_from_u64(seed);
    for _ in 0..3 {
        let (n, k) = (
            rng.random_range(1..150) * 2 + 1,
            rng.random_range(1..8) * 2 + 1,
        );
        let z = TensorData::new(
            (0..n * k)
                .map(|_| rng.random_range(-6.0f32..6.0))
                .collect::<Vec<_>>(),
            [n, k],
        );
        // Rows of positive weights (not all summing to 1: the op must not assume it).
        let t = TensorData::new(
            (0..n * k)
                .map(|_| rng.random_range(0.0f32..0.3))
                .collect::<Vec<_>>(),
            [n, k],
        );
        let scale = rng.random_range(0.5f32..2.0);
        let run = |device: &Device, fused: bool| {
            let ad = device.clone().autodiff();
            let zt = Tensor::<2>::from_data(z.clone(), &ad).require_grad();
            let tt = Tensor::<2>::from_data(t.clone(), &ad);
            let loss = if fused {
                elastic::soft_cross_entropy(zt.clone(), tt).expect("same shapes")
            } else {
                (tt * log_softmax(zt.clone(), 1)).sum_dim(1).mean().neg()
            };
            let grads = (loss.clone() * scale).backward();
            [values(loss), values(zt.grad(&grads).expect("dz"))]
        };
        let want = run(&Device::flex(), false);
        for (name, device) in devices() {
            let got = run(&device, true);
            check(&format!("{name} [{n}, {k}] loss"), &got[0], &want[0], 1e-5);
            check(&format!("{name} [{n}, {k}] dz"), &got[1], &want[1], 1e-5);
        }
    }
    let device = Device::flex();
    let (z, t) = (
        Tensor::<2>::ones([3, 4], &device),
        Tensor::<2>::ones([3, 5], &device),
    );
    assert!(elastic::soft_cross_entropy(z, t).is_err());
}
