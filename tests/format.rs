//! The exported model file: round trip, folded BN, and hostile files (truncated, corrupted,
//! wrong version, missing or extra tensors, bad metadata) that must give an error, never a
//! panic.

mod common;

use std::collections::HashMap;

use common::fresh_seed;
use enas4d::format::ExportedNet;
use enas4d::net::NetWeights;
use enas4d::runtime::StageWiseCpu;
use enas4d::selftest::{max_rel_err, random_vec};
use enas4d::space::{Plan, Preset, SubnetConfig};
use enas4d::Error;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;

fn sample(stages: usize, rng: &mut SmallRng) -> ExportedNet {
    let preset = Preset::tiny(stages, 10).unwrap();
    // Random configs: depths differ per stage, so some blocks are inactive for some stages.
    let config = SubnetConfig::random(&preset, rng);
    let plan = Plan::new(&preset, &config).unwrap();
    let weights = NetWeights::random(&plan, rng);
    ExportedNet {
        preset,
        config,
        thresholds: vec![0.9; stages - 1],
        classes: (0..10).map(|i| format!("class {i}")).collect(),
        weights,
        operating: Vec::new(),
    }
}

#[test]
fn should_round_trip_with_bn_folded() {
    let mut rng = SmallRng::seed_from_u64(fresh_seed("format round trip"));
    for stages in 1..=3 {
        for _ in 0..2 {
            let net = sample(stages, &mut rng);
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("net.safetensors");
            net.save(&path).unwrap();
            let back = ExportedNet::load(&path).unwrap();
            assert_eq!(back.config, net.config);
            assert_eq!(back.preset, net.preset);
            assert_eq!(back.thresholds, net.thresholds);
            assert_eq!(back.classes, net.classes);
            assert!(
                back.weights.layers[0].1[..16].iter().all(|&v| v == 1.0),
                "scale folded into the weights"
            );
            let r = net.config.resolution as usize;
            let a = StageWiseCpu::new(&net.preset, &net.config, net.weights.clone()).unwrap();
            let b = StageWiseCpu::new(&back.preset, &back.config, back.weights.clone()).unwrap();
            for _ in 0..2 {
                let image = random_vec(&mut rng, 3 * r * r);
                let (da, db) = (
                    a.classify(&image, &vec![1.0; stages - 1]).unwrap(),
                    b.classify(&image, &vec![1.0; stages - 1]).unwrap(),
                );
                assert!(max_rel_err(&db.logits, &da.logits) <= 1e-5, "S{stages}");
                assert_eq!(db.class_index, da.class_index);
            }
        }
    }
}

/// Rebuilds a file with its metadata and tensors edited.
fn rewrite(
    bytes: &[u8],
    edit: impl FnOnce(&mut HashMap<String, String>, &mut Vec<(String, Vec<usize>, Vec<u8>)>),
) -> Vec<u8> {
    let st = SafeTensors::deserialize(bytes).unwrap();
    let (_, header) = SafeTensors::read_metadata(bytes).unwrap();
    let mut meta = header.metadata().clone().unwrap();
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.shape().to_vec(), v.data().to_vec()))
        .collect();
    edit(&mut meta, &mut tensors);
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(n, s, d)| {
            (
                n.clone(),
                TensorView::new(Dtype::F32, s.clone(), d).unwrap(),
            )
        })
        .collect();
    safetensors::serialize(views, Some(meta)).unwrap()
}

fn format_error(bytes: &[u8]) -> String {
    match ExportedNet::from_bytes(bytes) {
        Err(e @ (Error::Format(_) | Error::Config { .. })) => e.to_string(),
        other => panic!(
            "expected a format error, got {:?}",
            other.map(|_| "a model")
        ),
    }
}

#[test]
fn should_reject_hostile_files_with_clear_errors() {
    let mut rng = SmallRng::seed_from_u64(fresh_seed("format hostile"));
    let bytes = sample(3, &mut rng).to_bytes().unwrap();

    let e = format_error(&rewrite(&bytes, |m, _| {
        m.insert("format_version".into(), "99".into());
    }));
    assert!(e.contains("version 99"), "{e}");
    let mut removed = String::new();
    let e = format_error(&rewrite(&bytes, |_, t| {
        let i = t
            .iter()
            .position(|(n, _, _)| n.ends_with("project.s2.weight"))
            .unwrap();
        removed = t.remove(i).0;
    }));
    assert!(e.contains(&removed), "{e}");
    let e = format_error(&rewrite(&bytes, |_, t| {
        t.push(("stowaway".into(), vec![1], vec![0; 4]));
    }));
    assert!(e.contains("tensors in the file"), "{e}");
    let e = format_error(&rewrite(&bytes, |_, t| {
        let (_, _, d) = t
            .iter_mut()
            .find(|(n, _, _)| n == "classifier.s1.bias")
            .unwrap();
        d[..4].copy_from_slice(&f32::NAN.to_le_bytes());
    }));
    assert!(e.contains("NaN"), "{e}");
    let e = format_error(&rewrite(&bytes, |_, t| {
        let (_, s, d) = t.iter_mut().find(|(n, _, _)| n == "stem.s1.bias").unwrap();
        s[0] += 1;
        d.extend([0; 4]);
    }));
    assert!(e.contains("shape"), "{e}");
    let e = format_error(&rewrite(&bytes, |m, _| {
        m.insert("thresholds".into(), "[0.5, 7]".into());
    }));
    assert!(e.contains("thresholds[1]"), "{e}");
    let e = format_error(&rewrite(&bytes, |m, _| {
        let c = m["config"].replacen('{', "{\"surprise\": 1, ", 1);
        m.insert("config".into(), c);
    }));
    assert!(e.contains("surprise"), "{e}");
    let e = format_error(&rewrite(&bytes, |m, _| {
        m.remove("preset");
    }));
    assert!(e.contains("preset"), "{e}");
    assert!(format_error(b"definitely not a model").contains("safetensors"));
}

/// Metadata alone can ask for any size; what it asks for is bounded before allocating.
#[test]
fn should_bound_what_metadata_asks_for() {
    let mut rng = SmallRng::seed_from_u64(fresh_seed("format metadata bounds"));
    let net = sample(3, &mut rng);
    let bytes = net.to_bytes().unwrap();
    let set_resolution = |r: u32| {
        rewrite(&bytes, |m, _| {
            let mut preset: serde_json::Value = serde_json::from_str(&m["preset"]).unwrap();
            let mut config: serde_json::Value = serde_json::from_str(&m["config"]).unwrap();
            preset["resolutions"] = serde_json::json!([r]);
            config["resolution"] = serde_json::json!(r);
            m.insert("preset".into(), preset.to_string());
            m.insert("config".into(), config.to_string());
        })
    };
    for r in [4096, 2048] {
        let e = format_error(&set_resolution(r));
        assert!(
            e.contains("resolution") && e.contains(&r.to_string()),
            "{e}"
        );
    }
    let e = format_error(&rewrite(&bytes, |m, _| {
        let mut c: serde_json::Value = serde_json::from_str(&m["preset"]).unwrap();
        c["classes"] = serde_json::json!(1u64 << 40);
        m.insert("preset".into(), c.to_string());
    }));
    assert!(e.contains("classes"), "{e}");
    // Operating points that these MACs cannot produce.
    let stages = net.config.p.len() + 1;
    let mut shares = vec![0.0; stages];
    shares[0] = 1.0;
    let point = |avg_macs: f64, shares: &[f64]| {
        serde_json::json!([{
            "thresholds": vec![0.5; stages - 1],
            "accuracy": 0.9,
            "avg_macs": avg_macs,
            "exit_shares": shares,
        }])
        .to_string()
    };
    let first = enas4d::space::count(&net.preset, &net.config)
        .unwrap()
        .cum_macs[0] as f64;
    let ok = rewrite(&bytes, |m, _| {
        m.insert("operating_points".into(), point(first, &shares));
    });
    ExportedNet::from_bytes(&ok).unwrap();
    let e = format_error(&rewrite(&bytes, |m, _| {
        m.insert("operating_points".into(), point(first * 3.0, &shares));
    }));
    assert!(
        e.contains("operating_points[0]") && e.contains("MACs"),
        "{e}"
    );
    let e = format_error(&rewrite(&bytes, |m, _| {
        m.insert("operating_points".into(), point(first, &shares[1..]));
    }));
    assert!(e.contains("exit shares"), "{e}");
}

#[test]
fn should_never_panic_on_truncated_or_corrupted_files() {
    let mut rng = SmallRng::seed_from_u64(fresh_seed("format fuzz"));
    let bytes = sample(2, &mut rng).to_bytes().unwrap();
    let cuts = (0..200).chain((0..100).map(|i| i * bytes.len() / 100));
    for cut in cuts {
        assert!(ExportedNet::from_bytes(&bytes[..cut.min(bytes.len() - 1)]).is_err());
    }
    for _ in 0..300 {
        let mut b = bytes.clone();
        for _ in 0..rng.random_range(1..8) {
            let i = if rng.random_bool(0.5) {
                rng.random_range(0..2000.min(b.len()))
            } else {
                rng.random_range(0..b.len())
            };
            b[i] ^= 1 << rng.random_range(0..8);
        }
        let _ = ExportedNet::from_bytes(&b);
    }
}
