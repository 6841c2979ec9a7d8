//! Stage causality (DESIGN §2): one MBConv block with SE, S = 3 stages and per-stage depth
//! gating. Perturbing the inputs and weights that belong to stages > s — finite noise, NaN and
//! ±Inf — must leave every stage ≤ s output bit-for-bit unchanged, on the CPU reference and on
//! the GPU kernels; and the perturbation must show in the later stages' outputs.

mod common;

use common::{fresh_seed, gpu};
use enas4d::ops::mbconv::{encode_mbconv, mbconv_reference, MbConvSpec, MbConvWeights, DW_STRIDE};
use enas4d::selftest::{random_mbconv_weights, random_vec, sample_block};
use enas4d::space::StageCuts;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

#[derive(Clone, Copy, Debug)]
enum Poison {
    Noise,
    Nan,
    Inf,
}

fn poison(v: &mut f32, kind: Poison, rng: &mut SmallRng) {
    *v = match kind {
        Poison::Noise => *v + rng.random_range(-10.0f32..10.0),
        Poison::Nan => f32::NAN,
        Poison::Inf => {
            if rng.random_bool(0.5) {
                f32::INFINITY
            } else {
                f32::NEG_INFINITY
            }
        }
    };
}

/// Perturbs the entries of a `[rows, cols]` matrix that a stage ≤ s row must not read: rows of
/// later stages, and the upper blocks (columns of later stages) of earlier rows.
fn poison_matrix(
    w: &mut [f32],
    rows: &StageCuts,
    cols: &StageCuts,
    s: usize,
    kind: Poison,
    rng: &mut SmallRng,
) {
    let n = cols.width() as usize;
    for (i, v) in w.iter_mut().enumerate() {
        if rows.stage_of(i / n) > s || cols.stage_of(i % n) > s {
            poison(v, kind, rng);
        }
    }
}

/// Perturbs per-channel tensors laid out `[.., C, stride]` (or affines `[scale(C), shift(C)]`).
fn poison_channels(
    v: &mut [f32],
    cuts: &StageCuts,
    per: usize,
    s: usize,
    kind: Poison,
    rng: &mut SmallRng,
) {
    let c = cuts.width() as usize;
    for (i, x) in v.iter_mut().enumerate() {
        if cuts.stage_of((i / per) % c) > s {
            poison(x, kind, rng);
        }
    }
}

fn poison_affine(a: &mut [f32], cuts: &StageCuts, s: usize, kind: Poison, rng: &mut SmallRng) {
    poison_channels(a, cuts, 1, s, kind, rng);
}

fn perturb(
    spec: &MbConvSpec,
    x: &[f32],
    w: &MbConvWeights<Vec<f32>>,
    s: usize,
    kind: Poison,
    rng: &mut SmallRng,
) -> (Vec<f32>, MbConvWeights<Vec<f32>>) {
    let mut x = x.to_vec();
    let mut w = w.clone();
    poison_channels(
        &mut x,
        &spec.in_cuts,
        spec.height * spec.width,
        s,
        kind,
        rng,
    );
    if let Some((ew, ea)) = w.expand.as_mut() {
        poison_matrix(ew, &spec.mid_cuts, &spec.in_cuts, s, kind, rng);
        poison_affine(ea, &spec.mid_cuts, s, kind, rng);
    }
    poison_channels(&mut w.dw.0, &spec.mid_cuts, DW_STRIDE, s, kind, rng);
    poison_affine(&mut w.dw.1, &spec.mid_cuts, s, kind, rng);
    if let (Some(se), Some(red)) = (w.se.as_mut(), spec.se_cuts.as_ref()) {
        poison_matrix(&mut se.reduce_w, red, &spec.mid_cuts, s, kind, rng);
        poison_affine(&mut se.reduce_affine, red, s, kind, rng);
        poison_matrix(&mut se.expand_w, &spec.mid_cuts, red, s, kind, rng);
        poison_affine(&mut se.expand_affine, &spec.mid_cuts, s, kind, rng);
    }
    poison_matrix(
        &mut w.project.0,
        &spec.out_cuts,
        &spec.mid_cuts,
        s,
        kind,
        rng,
    );
    poison_affine(&mut w.project.1, &spec.out_cuts, s, kind, rng);
    (x, w)
}

fn run_gpu(spec: &MbConvSpec, x: &[f32], w: &MbConvWeights<Vec<f32>>) -> Vec<f32> {
    let ctx = gpu();
    let mut enc = ctx.encoder();
    let xb = ctx.upload_f32("x", x);
    let y = encode_mbconv(ctx, &mut enc, spec, &xb, &w.upload(ctx)).unwrap();
    ctx.submit(enc);
    pollster::block_on(ctx.read_f32(&y)).unwrap()
}

fn run_cpu(spec: &MbConvSpec, x: &[f32], w: &MbConvWeights<Vec<f32>>) -> Vec<f32> {
    mbconv_reference(spec, x, w).unwrap()
}

/// Checks causality for every stage boundary, perturbation kind and gating pattern.
/// Runs one block: the CPU reference or the GPU kernels.
type Runner = fn(&MbConvSpec, &[f32], &MbConvWeights<Vec<f32>>) -> Vec<f32>;

fn check(run: Runner, device: &str) {
    let seed = fresh_seed(device);
    let mut rng = SmallRng::seed_from_u64(seed);
    let patterns = [
        [true, true, true],
        [true, false, true],
        [false, true, true],
        [true, true, false],
    ];
    for active in patterns {
        let spec = sample_block(2, 7, active.to_vec()).unwrap();
        let plane = spec.out_height() * spec.out_width();
        let weights = random_mbconv_weights(&mut rng, &spec);
        let x = random_vec(&mut rng, spec.lens().0);
        let base = run(&spec, &x, &weights);
        assert!(
            base.iter().all(|v| v.is_finite()),
            "{device}: unperturbed output not finite"
        );
        for s in 0..2 {
            let keep = spec.out_cuts.end(s) as usize;
            for kind in [Poison::Noise, Poison::Nan, Poison::Inf] {
                let (px, pw) = perturb(&spec, &x, &weights, s, kind, &mut rng);
                let out = run(&spec, &px, &pw);
                let mut later_changed = false;
                for (i, (a, b)) in out.iter().zip(&base).enumerate() {
                    let channel = (i / plane) % spec.out_cuts.width() as usize;
                    if channel < keep {
                        assert_eq!(
                            a.to_bits(),
                            b.to_bits(),
                            "{device} seed {seed} active {active:?} s={} {kind:?}: output {i} (channel {channel}) changed {b} → {a}",
                            s + 1
                        );
                    } else if a.to_bits() != b.to_bits() {
                        later_changed = true;
                    }
                }
                assert!(
                    later_changed,
                    "{device} active {active:?} s={} {kind:?}: perturbation had no effect",
                    s + 1
                );
            }
        }
    }
}

#[test]
fn should_keep_earlier_stages_bit_exact_on_cpu() {
    check(run_cpu, "cpu");
}

#[test]
fn should_keep_earlier_stages_bit_exact_on_gpu() {
    check(run_gpu, "gpu");
}

#[test]
fn should_pass_inactive_stages_through_unchanged() {
    // Stage 2 inactive: its output slice is exactly the block's input slice.
    let mut rng = SmallRng::seed_from_u64(fresh_seed("pass-through"));
    let spec = sample_block(2, 5, vec![true, false, true]).unwrap();
    let w = random_mbconv_weights(&mut rng, &spec);
    let x = random_vec(&mut rng, spec.lens().0);
    let plane = spec.height * spec.width;
    let stage2 = spec.out_cuts.range(1);
    for (name, out) in [
        ("cpu", run_cpu(&spec, &x, &w)),
        ("gpu", run_gpu(&spec, &x, &w)),
    ] {
        for (i, (a, b)) in out.iter().zip(&x).enumerate() {
            if stage2.contains(&((i / plane) % 24)) {
                assert_eq!(a.to_bits(), b.to_bits(), "{name}: element {i}");
            }
        }
    }
}
