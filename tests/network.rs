//! A whole subnet's all-exits pass: the GPU kernels against the CPU reference for S = 1, 2, 3
//! and random configs, the MACs it performs against the counter, and stage causality at the
//! level of exits: perturbing everything that belongs to stages > s leaves exits ≤ s bit-exact.

mod common;

use common::{fresh_seed, gpu, poison_affine, poison_channels, poison_matrix, Poison};
use enas4d::net::{forward_gpu, forward_reference, NetWeights};
use enas4d::selftest::{max_rel_err, random_vec};
use enas4d::space::{count, LayerKind, Plan, Preset, SubnetConfig};
use rand::rngs::SmallRng;
use rand::SeedableRng;

/// f32 kernels against the f64 reference through ~20 layers.
const BOUND: f64 = 1e-4;

fn configs(preset: &Preset, rng: &mut SmallRng) -> Vec<(String, SubnetConfig)> {
    let mut out = vec![
        ("largest".to_string(), SubnetConfig::largest(preset)),
        ("smallest".to_string(), SubnetConfig::smallest(preset)),
    ];
    for i in 0..3 {
        out.push((format!("random {i}"), SubnetConfig::random(preset, rng)));
    }
    out
}

#[test]
fn should_match_the_reference_on_the_gpu_for_one_to_three_stages() {
    let ctx = gpu();
    let mut rng = SmallRng::seed_from_u64(fresh_seed("network"));
    for stages in 1..=3 {
        let preset = Preset::tiny(stages, 10).unwrap();
        for (name, config) in configs(&preset, &mut rng) {
            let plan = Plan::new(&preset, &config).unwrap();
            let weights = NetWeights::random(&plan, &mut rng);
            let batch = 2;
            let r = plan.resolution;
            let images = random_vec(&mut rng, batch * 3 * r * r);
            let want = forward_reference(&plan, &weights, &images, batch).unwrap();
            let cost = count(&preset, &config).unwrap();
            assert_eq!(
                want.macs,
                cost.cum_macs[stages - 1],
                "S{stages} {name}: MACs performed vs counted"
            );
            let gpu_w = weights.upload(ctx);
            let img = ctx.upload_f32("images", &images);
            let got = pollster::block_on(forward_gpu(ctx, &plan, &gpu_w, &img, batch)).unwrap();
            for (s, (g, w)) in got.iter().zip(&want.logits).enumerate() {
                let err = max_rel_err(g, w);
                println!("S{stages} {name} exit {}: max rel err {err:.2e}", s + 1);
                assert!(
                    err <= BOUND,
                    "S{stages} {name} exit {}: {err:.2e} > {BOUND:e}",
                    s + 1
                );
            }
        }
    }
}

/// Perturbs every weight of the network a stage ≤ s must not read, layer by layer: rows of
/// later stages, the upper blocks (inputs of later stages) of earlier rows, the affines of later
/// stages' channels, and the later exits' classifiers.
fn perturb_net(
    plan: &Plan,
    w: &NetWeights<Vec<f32>>,
    s: usize,
    kind: Poison,
    rng: &mut SmallRng,
) -> NetWeights<Vec<f32>> {
    let mut p = w.clone();
    for (layer, (weight, affine)) in plan.layers().iter().zip(p.layers.iter_mut()) {
        match layer.kind {
            LayerKind::Classifier { stage } => {
                if stage > s {
                    weight
                        .iter_mut()
                        .chain(affine.iter_mut())
                        .for_each(|v| common::poison(v, kind, rng));
                }
                continue;
            }
            // Per-channel weights (the image's channels belong to every stage).
            LayerKind::Stem | LayerKind::Depthwise { .. } => {
                poison_channels(weight, &layer.rows, layer.row_stride(), s, kind, rng);
            }
            _ => poison_matrix(weight, &layer.rows, &layer.cols, s, kind, rng),
        }
        poison_affine(affine, &layer.rows, s, kind, rng);
    }
    p
}

#[test]
fn should_keep_earlier_exits_bit_exact_when_later_stages_are_poisoned() {
    let ctx = gpu();
    let mut rng = SmallRng::seed_from_u64(fresh_seed("network causality"));
    let preset = Preset::tiny(3, 10).unwrap();
    for (name, config) in configs(&preset, &mut rng).into_iter().skip(1).take(2) {
        let plan = Plan::new(&preset, &config).unwrap();
        let weights = NetWeights::random(&plan, &mut rng);
        let r = plan.resolution;
        let images = random_vec(&mut rng, 2 * 3 * r * r);
        let img = ctx.upload_f32("images", &images);
        let base_cpu = forward_reference(&plan, &weights, &images, 2)
            .unwrap()
            .logits;
        let base_gpu =
            pollster::block_on(forward_gpu(ctx, &plan, &weights.upload(ctx), &img, 2)).unwrap();
        for s in 0..2 {
            for kind in [Poison::Noise, Poison::Nan, Poison::Inf] {
                let poisoned = perturb_net(&plan, &weights, s, kind, &mut rng);
                let cpu_out = forward_reference(&plan, &poisoned, &images, 2)
                    .unwrap()
                    .logits;
                assert!(poisoned.check_finite().is_err() || kind == Poison::Noise);
                let gpu_out =
                    pollster::block_on(forward_gpu(ctx, &plan, &poisoned.upload(ctx), &img, 2))
                        .unwrap();
                for (device, out, base) in
                    [("cpu", &cpu_out, &base_cpu), ("gpu", &gpu_out, &base_gpu)]
                {
                    for e in 0..=s {
                        let same = out[e]
                            .iter()
                            .zip(&base[e])
                            .all(|(a, b)| a.to_bits() == b.to_bits());
                        assert!(same, "{device} {name} exit {} changed when stages > {} were poisoned ({kind:?})", e + 1, s + 1);
                    }
                    assert!(
                        out[2]
                            .iter()
                            .zip(&base[2])
                            .any(|(a, b)| a.to_bits() != b.to_bits()),
                        "{device} {name}: poisoning stage 3 had no effect"
                    );
                }
            }
        }
    }
}
