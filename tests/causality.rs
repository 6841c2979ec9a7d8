//! Stage causality (DESIGN §2): one MBConv block with SE, S = 3 stages and per-stage depth
//! gating. Perturbing the inputs and weights that belong to stages > s — finite noise, NaN and
//! ±Inf — must leave every stage ≤ s output bit-for-bit unchanged, on the CPU reference and on
//! the GPU kernels; and the perturbation must show in the later stages' outputs.

mod common;

use common::{fresh_seed, gpu, perturb, Poison};
use enas4d::ops::mbconv::{encode_mbconv, mbconv_reference, MbConvSpec, MbConvWeights};
use enas4d::selftest::{random_mbconv_weights, random_vec, sample_block};
use rand::rngs::SmallRng;
use rand::SeedableRng;

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
