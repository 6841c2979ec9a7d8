//! The fused AdamW update (`enas4d::elastic::adamw`, `shaders/adamw.wgsl`) against its
//! plain-Rust reference (`adamw_cpu`), and the trainer's `FusedAdamW` against burn's own AdamW
//! (whose optimizer state it must also resume from), on burn's CPU backend (`Flex`) and on
//! wgpu's CPU adapter (lavapipe; `ENAS4D_TEST_WGPU=gpu` for a real GPU).
//!
//! Inputs are fresh random numbers (seed printed), sizes odd, gradients whole or transposed
//! views. Bound: max |a − b| over max |b|
//! ≤ 1e-5 (one f32 update per element; only the WGSL path's rounding may differ).

mod common;

use burn::module::Param;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::{Device, DeviceKind, Tensor, TensorData};
use enas4d::elastic::adamw::adamw_cpu;
use enas4d::elastic::{adamw, AdamWStep};
use enas4d::supernet::{Bn, ConvBn};
use enas4d::train::{parse_device, FusedAdamW};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const TOL: f64 = 1e-5;

fn devices() -> Vec<(&'static str, Device)> {
    let wgpu = match std::env::var("ENAS4D_TEST_WGPU") {
        Ok(name) => parse_device(&name).expect("ENAS4D_TEST_WGPU").0,
        Err(_) => Device::wgpu(DeviceKind::Cpu),
    };
    vec![("flex", Device::flex()), ("wgpu", wgpu)]
}

fn random(rng: &mut SmallRng, len: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..len).map(|_| rng.random_range(lo..hi)).collect()
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec::<f32>().expect("f32 tensor")
}

fn check(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let scale = want.iter().fold(0f64, |m, v| m.max(v.abs() as f64));
    assert!(
        scale > 1e-3,
        "{what}: reference is ~zero, the test would prove nothing"
    );
    let diff = got
        .iter()
        .zip(want)
        .fold(0f64, |m, (a, b)| m.max((a - b).abs() as f64));
    assert!(
        diff / scale <= TOL,
        "{what}: relative error {:.2e} > {TOL:.0e}",
        diff / scale
    );
}

#[test]
fn the_fused_update_matches_its_reference() {
    let seed = common::fresh_seed("adamw");
    let mut rng = SmallRng::seed_from_u64(seed);
    for (name, device) in devices() {
        for _ in 0..3 {
            let shape = [
                rng.random_range(1..40) * 2 + 1,
                rng.random_range(1..9) * 2 + 1,
            ];
            let n = shape[0] * shape[1];
            let param = random(&mut rng, n, -1.0, 1.0);
            let grad = random(&mut rng, n, -0.5, 0.5);
            let m1 = random(&mut rng, n, -0.05, 0.05);
            let m2 = random(&mut rng, n, 0.0, 0.01);
            let t = rng.random_range(1..200);
            let step = AdamWStep::new(rng.random_range(1e-4..1e-2), 1e-4, 0.9, 0.999, 1e-5, t);
            let want = adamw_cpu(&step, &param, &grad, &m1, &m2);
            let tensor =
                |v: &[f32]| Tensor::<2>::from_data(TensorData::new(v.to_vec(), shape), &device);
            // The gradient as a transposed view (strided, as burn hands many over) or whole.
            let g = if rng.random_bool(0.5) {
                let mut t = vec![0.0; n];
                for (i, v) in grad.iter().enumerate() {
                    t[(i % shape[1]) * shape[0] + i / shape[1]] = *v;
                }
                let back =
                    Tensor::<2>::from_data(TensorData::new(t, [shape[1], shape[0]]), &device);
                back.transpose()
            } else {
                tensor(&grad)
            };
            let (p, a, b) =
                adamw(tensor(&param), g, tensor(&m1), tensor(&m2), step).expect("equal shapes");
            let what = format!("{name} {shape:?} t = {t}");
            check(&format!("{what} parameter"), &values(p), &want.0);
            check(&format!("{what} first moment"), &values(a), &want.1);
            check(&format!("{what} second moment"), &values(b), &want.2);
            // The update moved the parameter (the test compares more than a copy).
            assert!(
                want.0.iter().zip(&param).any(|(x, y)| x != y),
                "{what}: no update"
            );
        }
        let p = Tensor::<2>::from_data(TensorData::new(vec![1.0f32; 6], [2, 3]), &device);
        let g = Tensor::<2>::from_data(TensorData::new(vec![1.0f32; 6], [3, 2]), &device);
        let step = AdamWStep::new(1e-3, 0.0, 0.9, 0.999, 1e-5, 1);
        assert!(
            adamw(p.clone(), g, p.clone(), p, step).is_err(),
            "{name}: a gradient of another shape is refused"
        );
    }
}

fn conv_bn(rng: &mut SmallRng, device: &Device, out: usize, inp: usize) -> ConvBn {
    let w = random(rng, out * inp, -1.0, 1.0);
    let gamma = random(rng, out, 0.5, 1.5);
    let beta = random(rng, out, -0.5, 0.5);
    let vector =
        |v: Vec<f32>| Param::from_tensor(Tensor::from_data(TensorData::new(v, [out]), device));
    ConvBn {
        weight: Param::from_tensor(Tensor::from_data(TensorData::new(w, [out, inp]), device)),
        bn: Bn {
            gamma: vector(gamma),
            beta: vector(beta),
        },
    }
}

/// The same random gradients for every parameter of `m`, twice (one set per optimizer).
fn gradients(rng: &mut SmallRng, m: &ConvBn, device: &Device) -> [GradientsParams; 2] {
    let [o, i] = m.weight.dims();
    let w = TensorData::new(random(rng, o * i, -1.0, 1.0), [o, i]);
    let gamma = TensorData::new(random(rng, o, -1.0, 1.0), [o]);
    let beta = TensorData::new(random(rng, o, -1.0, 1.0), [o]);
    [(); 2].map(|_| {
        let mut grads = GradientsParams::new();
        grads.register(m.weight.id, Tensor::<2>::from_data(w.clone(), device));
        grads.register(m.bn.gamma.id, Tensor::<1>::from_data(gamma.clone(), device));
        grads.register(m.bn.beta.id, Tensor::<1>::from_data(beta.clone(), device));
        grads
    })
}

fn all_values(m: &ConvBn) -> Vec<f32> {
    let mut v = values(m.weight.val());
    v.extend(values(m.bn.gamma.val()));
    v.extend(values(m.bn.beta.val()));
    v
}

#[test]
fn fused_adamw_follows_burns_adamw_and_resumes_its_state() {
    let seed = common::fresh_seed("fused_adamw");
    let mut rng = SmallRng::seed_from_u64(seed);
    for (name, device) in devices() {
        let (o, i) = (
            rng.random_range(2..20) * 2 + 1,
            rng.random_range(2..20) * 2 + 1,
        );
        // Parameters live on the autodiff device, gradients on the inner one (as in training).
        let start = conv_bn(&mut rng, &device.clone().autodiff(), o, i);
        let wd = 0.05;
        let mut burn_optim = AdamWConfig::new().with_weight_decay(wd).init();
        let mut fused_optim = FusedAdamW::new(wd).init();
        let (mut a, mut b) = (start.clone(), start);
        let lr = 1e-2;
        for step in 0..4 {
            let [grads, same] = gradients(&mut rng, &a, &device);
            a = burn_optim.step(lr, a, grads);
            b = fused_optim.step(lr, b, same);
            check(
                &format!("{name} step {step}"),
                &all_values(&b),
                &all_values(&a),
            );
        }
        // burn's AdamW state, saved, resumes in the fused optimizer.
        let bytes = burn_optim.into_bytes().expect("optimizer state");
        let mut resumed = FusedAdamW::new(wd).init().from_bytes(bytes).expect("loads");
        let mut c = b.clone();
        for step in 4..7 {
            let [grads, same] = gradients(&mut rng, &a, &device);
            a = burn_optim.step(lr, a, grads);
            c = resumed.step(lr, c, same);
            check(
                &format!("{name} resumed step {step}"),
                &all_values(&c),
                &all_values(&a),
            );
        }
    }
}
