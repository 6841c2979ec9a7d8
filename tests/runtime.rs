//! The stage-wise pass with early exit against the all-exits pass: same logits for S = 1, 2, 3
//! and random configs; τ = 1 never exits early, τ = 0 always leaves at exit 1; MACs reported
//! equal the counter's; bad input is an error. The GPU stage-wise pass agrees with the CPU one
//! image after image (its activation buffers are reused).

mod common;

use common::{fresh_seed, gpu};
use enas4d::net::{forward_reference, NetWeights};
use enas4d::runtime::{exit_output, StageWiseCpu, StageWiseGpu};
use enas4d::selftest::{max_rel_err, random_vec};
use enas4d::space::{count, Plan, Preset, SubnetConfig};
use rand::rngs::SmallRng;
use rand::SeedableRng;

#[test]
fn should_match_the_all_exits_pass_and_honour_thresholds() {
    let mut rng = SmallRng::seed_from_u64(fresh_seed("runtime"));
    for stages in 1..=3 {
        let preset = Preset::tiny(stages, 10).unwrap();
        let mut configs = vec![
            SubnetConfig::largest(&preset),
            SubnetConfig::smallest(&preset),
        ];
        configs.extend((0..3).map(|_| SubnetConfig::random(&preset, &mut rng)));
        for config in configs {
            let plan = Plan::new(&preset, &config).unwrap();
            let weights = NetWeights::random(&plan, &mut rng);
            let r = plan.resolution;
            let image = random_vec(&mut rng, 3 * r * r);
            let all = forward_reference(&plan, &weights, &image, 1).unwrap();
            let cost = count(&preset, &config).unwrap();
            let runtime = StageWiseCpu::new(&preset, &config, weights).unwrap();

            let never = runtime.classify(&image, &vec![1.0; stages - 1]).unwrap();
            assert_eq!(never.exit, stages);
            assert_eq!(never.macs, cost.cum_macs[stages - 1]);
            assert_eq!(never.per_exit.len(), stages);
            let err = max_rel_err(&never.logits, &all.logits[stages - 1]);
            assert!(err <= 1e-4, "S{stages} last exit: {err:e}");
            for (s, out) in never.per_exit.iter().enumerate() {
                let want = exit_output(&all.logits[s]);
                assert_eq!(
                    out.class_index,
                    want.class_index,
                    "S{stages} exit {}",
                    s + 1
                );
                assert!((out.confidence - want.confidence).abs() <= 1e-4);
            }

            let always = runtime.classify(&image, &vec![0.0; stages - 1]).unwrap();
            assert_eq!(always.exit, 1);
            assert_eq!(always.macs, cost.cum_macs[0]);
            assert_eq!(always.per_exit.len(), 1);
            assert!(max_rel_err(&always.logits, &all.logits[0]) <= 1e-4);
        }
    }
}

#[test]
fn should_exit_at_the_first_confident_stage() {
    let mut rng = SmallRng::seed_from_u64(fresh_seed("runtime thresholds"));
    let preset = Preset::tiny(3, 10).unwrap();
    let config = SubnetConfig::random(&preset, &mut rng);
    let plan = Plan::new(&preset, &config).unwrap();
    let runtime = StageWiseCpu::new(&preset, &config, NetWeights::random(&plan, &mut rng)).unwrap();
    let r = plan.resolution;
    let image = random_vec(&mut rng, 3 * r * r);
    let full = runtime.classify(&image, &[1.0, 1.0]).unwrap();
    let c = [full.per_exit[0].confidence, full.per_exit[1].confidence];
    // Exit 2 when exit 1 is just below its threshold and exit 2 just above; strictly greater.
    let d = runtime.classify(&image, &[c[0], c[1] - 1e-6]).unwrap();
    assert_eq!(d.exit, 2);
    assert_eq!(d.macs, runtime.cum_macs()[1]);
    assert_eq!(d.per_exit[..], full.per_exit[..2]);
}

#[test]
fn should_reject_bad_input() {
    let mut rng = SmallRng::seed_from_u64(1);
    let preset = Preset::tiny(3, 10).unwrap();
    let config = SubnetConfig::smallest(&preset);
    let plan = Plan::new(&preset, &config).unwrap();
    let weights = NetWeights::random(&plan, &mut rng);
    let mut poisoned = weights.clone();
    poisoned.layer_mut(&plan, "feature_mix").unwrap().0[3] = f32::NAN;
    assert!(StageWiseCpu::new(&preset, &config, poisoned).is_err());
    let mut short = weights.clone();
    short.layers.pop();
    assert!(StageWiseCpu::new(&preset, &config, short).is_err());
    let runtime = StageWiseCpu::new(&preset, &config, weights).unwrap();
    let r = plan.resolution;
    let mut image = random_vec(&mut rng, 3 * r * r);
    assert!(runtime.classify(&image[1..], &[0.5, 0.5]).is_err());
    assert!(runtime.classify(&image, &[0.5]).is_err());
    assert!(runtime
        .classify(&image, &[0.5, 1.5])
        .unwrap_err()
        .to_string()
        .contains("thresholds[1]"));
    image[7] = f32::NAN;
    assert!(runtime
        .classify(&image, &[0.5, 0.5])
        .unwrap_err()
        .to_string()
        .contains("NaN"));
}

#[test]
fn should_agree_on_the_gpu_image_after_image() {
    let ctx = gpu();
    let mut rng = SmallRng::seed_from_u64(fresh_seed("runtime gpu"));
    for stages in 1..=3 {
        let preset = Preset::tiny(stages, 10).unwrap();
        let mut configs = vec![SubnetConfig::largest(&preset)];
        configs.extend((0..3).map(|_| SubnetConfig::random(&preset, &mut rng)));
        for config in configs {
            let plan = Plan::new(&preset, &config).unwrap();
            let weights = NetWeights::random(&plan, &mut rng);
            let cpu = StageWiseCpu::new(&preset, &config, weights.clone()).unwrap();
            let gpu_rt = StageWiseGpu::new(ctx, &preset, &config, &weights).unwrap();
            let r = plan.resolution;
            for image_no in 0..3 {
                let image = random_vec(&mut rng, 3 * r * r);
                for t in [1.0f32, 0.0] {
                    let thresholds = vec![t; stages - 1];
                    let want = cpu.classify(&image, &thresholds).unwrap();
                    let got =
                        pollster::block_on(gpu_rt.classify(ctx, &image, &thresholds)).unwrap();
                    let what = format!("S{stages} image {image_no} τ={t}");
                    assert_eq!((got.exit, got.macs), (want.exit, want.macs), "{what}");
                    let err = max_rel_err(&got.logits, &want.logits);
                    assert!(err <= 1e-4, "{what}: logits {err:e}");
                    for (g, w) in got.per_exit.iter().zip(&want.per_exit) {
                        assert_eq!(g.class_index, w.class_index, "{what}");
                        assert!((g.confidence - w.confidence).abs() <= 1e-4, "{what}");
                    }
                }
            }
        }
    }
}

/// A batch leaves sample by sample: `classify_batch` (threads, images packed together) agrees
/// with `classify` image by image, in order — same exits, classes and per-exit classes, logits
/// and confidences within 1e-5 (a batched matrix product may sum in another order) — with
/// different exits inside one batch.
#[test]
fn should_classify_batches_with_per_sample_exits() {
    // The shipped net on the gallery's test images: a random net's confidences differ only in
    // the 7th digit, where summation order would decide the exit.
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/tiny-s3/net.safetensors");
    let net = enas4d::format::ExportedNet::load(&path).unwrap();
    let runtime = StageWiseCpu::new(&net.preset, &net.config, net.weights.clone()).unwrap();
    let images = gallery(net.config.resolution as usize);
    let stages = net.preset.stages;
    assert!(stages >= 2, "the shipped net has early exits");
    // About half the images leave at exit 1.
    let at_exit1 = vec![0.0; stages - 1];
    let mut conf: Vec<f32> = images
        .iter()
        .map(|x| runtime.classify(x, &at_exit1).unwrap().confidence)
        .collect();
    conf.sort_by(f32::total_cmp);
    // Halfway across the widest gap between two images' confidences in the middle half.
    let n = conf.len();
    let m = (n / 4..3 * n / 4)
        .max_by(|&a, &b| (conf[a + 1] - conf[a]).total_cmp(&(conf[b + 1] - conf[b])))
        .unwrap();
    let tau = (conf[m] + conf[m + 1]) / 2.0;
    assert!(
        conf[m + 1] - conf[m] > 1e-4,
        "confidences too close: {conf:?}"
    );
    // Exits 2 … S − 1 never taken (no confidence exceeds 1), so none of their confidences meets
    // τ by chance.
    let mut thresholds = vec![1.0; stages - 1];
    thresholds[0] = tau;
    let batch = runtime.classify_batch(&images, &thresholds).unwrap();
    assert_eq!(batch.len(), images.len());
    let close = |a: f32, b: f32| (a - b).abs() <= 1e-5 * a.abs().max(b.abs()).max(1.0);
    for (x, d) in images.iter().zip(&batch) {
        let one = runtime.classify(x, &thresholds).unwrap();
        assert_eq!(
            (d.exit, d.class_index, d.macs),
            (one.exit, one.class_index, one.macs)
        );
        for (a, b) in d.per_exit.iter().zip(&one.per_exit) {
            assert_eq!(a.class_index, b.class_index);
            assert!(close(a.confidence, b.confidence), "{d:?} vs {one:?}");
        }
        assert_eq!(d.per_exit.len(), one.per_exit.len());
        assert!(
            d.logits.iter().zip(&one.logits).all(|(&a, &b)| close(a, b)),
            "{d:?} vs {one:?}"
        );
    }
    let exits: std::collections::HashSet<usize> = batch.iter().map(|d| d.exit).collect();
    assert!(exits.len() > 1, "one batch, several exits: {exits:?}");
    let mut bad = images.clone();
    bad[7].pop();
    assert!(runtime.classify_batch(&bad, &thresholds).is_err());
}

/// The gallery's images, preprocessed for `resolution`.
fn gallery(resolution: usize) -> Vec<Vec<f32>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web/gallery");
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let im = image::open(p).unwrap().to_luma8();
            let (w, h) = (im.width() as usize, im.height() as usize);
            enas4d::runtime::preprocess(im.as_raw(), w, h, 1, resolution).unwrap()
        })
        .collect()
}

/// The GPU batch leaves image by image too: on the shipped net and the gallery's images,
/// `classify_batch` equals the CPU runtime's `classify` for every image, with images leaving
/// at every exit of one batch (packed between stages), in chunks of `GPU_MAX_BATCH` and in one.
#[test]
fn should_classify_gpu_batches_with_per_sample_exits() {
    let ctx = gpu();
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/tiny-s3/net.safetensors");
    let net = enas4d::format::ExportedNet::load(&path).unwrap();
    let stages = net.preset.stages;
    let cpu = StageWiseCpu::new(&net.preset, &net.config, net.weights.clone()).unwrap();
    let gpu_rt = StageWiseGpu::new(ctx, &net.preset, &net.config, &net.weights).unwrap();
    let mut images = gallery(net.config.resolution as usize);
    // Longer than one GPU pass: the second chunk is short.
    let first = images.clone();
    let more = enas4d::runtime::GPU_MAX_BATCH + 5 - first.len();
    images.extend(first.iter().cycle().take(more).cloned());
    assert!(images.len() > enas4d::runtime::GPU_MAX_BATCH);
    // Per exit, a threshold midway in a gap (wider than the GPU's rounding) near the median
    // confidence of the images still inside: images leave at every exit.
    let full: Vec<_> = first
        .iter()
        .map(|x| cpu.classify(x, &vec![1.0; stages - 1]).unwrap())
        .collect();
    let mut inside: Vec<_> = full.iter().collect();
    let mut thresholds = Vec::new();
    for s in 0..stages - 1 {
        let mut c: Vec<f32> = inside.iter().map(|d| d.per_exit[s].confidence).collect();
        c.sort_by(f32::total_cmp);
        let k = (1..c.len())
            .filter(|&k| c[k] - c[k - 1] > 1e-3)
            .min_by_key(|&k| k.abs_diff(c.len() / 2))
            .unwrap_or_else(|| panic!("no gap in {c:?}"));
        let t = 0.5 * (c[k - 1] + c[k]);
        inside.retain(|d| d.per_exit[s].confidence <= t);
        thresholds.push(t);
    }
    for batch in [&first[..], &images[..]] {
        let got = pollster::block_on(gpu_rt.classify_batch(ctx, batch, &thresholds)).unwrap();
        assert_eq!(got.len(), batch.len());
        for (i, (x, g)) in batch.iter().zip(&got).enumerate() {
            let want = cpu.classify(x, &thresholds).unwrap();
            let what = format!("image {i} of {}", batch.len());
            assert_eq!((g.exit, g.macs), (want.exit, want.macs), "{what}");
            assert!(max_rel_err(&g.logits, &want.logits) <= 1e-4, "{what}");
            assert_eq!(g.per_exit.len(), want.per_exit.len(), "{what}");
            for (a, b) in g.per_exit.iter().zip(&want.per_exit) {
                assert_eq!(a.class_index, b.class_index, "{what}");
                assert!((a.confidence - b.confidence).abs() <= 1e-4, "{what}");
            }
        }
        let exits: std::collections::HashSet<usize> = got.iter().map(|d| d.exit).collect();
        assert_eq!(
            exits.len(),
            stages,
            "every exit taken in one batch: {exits:?}"
        );
    }
    let mut bad = first.clone();
    bad[3][5] = f32::NAN;
    assert!(pollster::block_on(gpu_rt.classify_batch(ctx, &bad, &thresholds)).is_err());
}

/// Overlapping `classify` calls on one GPU net (threads here; `Promise.all` in a browser) give
/// each image its own answer: the same as one call after another.
#[test]
fn should_classify_concurrently_on_the_gpu() {
    let ctx = gpu();
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/tiny-s3/net.safetensors");
    let net = enas4d::format::ExportedNet::load(&path).unwrap();
    let gpu_rt = StageWiseGpu::new(ctx, &net.preset, &net.config, &net.weights).unwrap();
    let images = gallery(net.config.resolution as usize);
    let thresholds = vec![1.0; net.preset.stages - 1];
    let one_by_one: Vec<_> = images
        .iter()
        .map(|x| pollster::block_on(gpu_rt.classify(ctx, x, &thresholds)).unwrap())
        .collect();
    let classes: std::collections::HashSet<usize> =
        one_by_one.iter().map(|d| d.class_index).collect();
    assert!(
        classes.len() > 1,
        "the gallery needs images of different classes"
    );
    let overlapping: Vec<Vec<_>> = std::thread::scope(|scope| {
        let workers: Vec<_> = images
            .iter()
            .map(|x| {
                let (rt, thresholds) = (&gpu_rt, &thresholds);
                scope.spawn(move || {
                    (0..2)
                        .map(|_| pollster::block_on(rt.classify(ctx, x, thresholds)).unwrap())
                        .collect()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    for (i, (want, got)) in one_by_one.iter().zip(&overlapping).enumerate() {
        for g in got {
            assert_eq!(g.class_index, want.class_index, "image {i}");
            assert!(max_rel_err(&g.logits, &want.logits) <= 1e-5, "image {i}");
        }
    }
}
