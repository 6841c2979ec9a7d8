//! `enas4d train` end to end on a small synthetic IDX data set: SIGKILL mid-run, `--resume`,
//! then `enas4d eval --json` on the result.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const BIN: &str = env!("CARGO_BIN_EXE_enas4d");

fn write_idx(dir: &Path, prefix: &str, n: usize, rng: &mut SmallRng) {
    let mut images = vec![0, 0, 8, 3];
    for d in [n as u32, 28, 28] {
        images.extend_from_slice(&d.to_be_bytes());
    }
    let mut labels = vec![0, 0, 8, 1];
    labels.extend_from_slice(&(n as u32).to_be_bytes());
    for _ in 0..n {
        // Class c: a bright 8×8 patch at one of ten places, on noise.
        let c: u8 = rng.random_range(0..10);
        let (py, px) = (4 + (c as usize / 5) * 12, 2 + (c as usize % 5) * 5);
        for y in 0..28 {
            for x in 0..28 {
                let on = (py..py + 8).contains(&y) && (px..px + 6).contains(&x);
                images.push(if on { 200 } else { rng.random_range(0..60) });
            }
        }
        labels.push(c);
    }
    std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte")), images).unwrap();
    std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte")), labels).unwrap();
}

/// A temporary folder holding a synthetic IDX data set in `data/` (`train` and `test`
/// images), and the generator that drew it, for drawing more.
fn synthetic_data(
    seed: u64,
    train: usize,
    test: usize,
) -> (tempfile::TempDir, std::path::PathBuf, SmallRng) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let mut rng = SmallRng::seed_from_u64(seed);
    write_idx(&data, "train", train, &mut rng);
    write_idx(&data, "t10k", test, &mut rng);
    (tmp, data, rng)
}

/// Runs `cmd`, which must fail with exit status 2 (a usage or input error): its stderr.
fn rejected(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(2), "{err}");
    err
}

/// `enas4d train --config DIR/NAME.json` (`cfg` written there) on the IDX data in `data` into
/// `DIR/NAME`, with `extra` flags.
fn train(
    dir: &Path,
    data: &Path,
    cfg: &serde_json::Value,
    name: &str,
    extra: &[&str],
) -> std::process::Output {
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, cfg.to_string()).unwrap();
    Command::new(BIN)
        .args(["train", "--quiet", "--device", "cpu", "--config"])
        .arg(&path)
        .args(extra)
        .arg("--data")
        .arg(format!("idx:{}", data.display()))
        .arg("--out")
        .arg(dir.join(name))
        .output()
        .unwrap()
}

fn config() -> serde_json::Value {
    let phase = |p: &str| serde_json::json!({"phase": p, "steps": 4, "lr": 3e-3});
    serde_json::json!({
        "preset": "tiny", "stages": 3, "batch": 16, "random_subnets": 1,
        "phases": [phase("full"), phase("kernel"), phase("depth"), phase("expand")],
        "weight_decay": 1e-4, "label_smoothing": 0.1, "distill": 1.0, "dropout": 0.1,
        "val_size": 40, "bn_images": 40, "checkpoint_every": 3, "seed": 7
    })
}

fn logged_steps(out: &Path) -> Vec<usize> {
    std::fs::read_to_string(out.join("log.csv"))
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next()?.parse().ok())
        .collect()
}

fn checkpoint_step(out: &Path) -> usize {
    let bytes = std::fs::read(out.join("checkpoint.bin")).unwrap();
    let len = u64::from_le_bytes(bytes[8..16].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[16..16 + len]).unwrap();
    header["step"].as_u64().unwrap() as usize
}

#[test]
fn sigkill_then_resume_then_eval() {
    let (tmp, data, _) = synthetic_data(3, 240, 60);
    let cfg = tmp.path().join("config.json");
    std::fs::write(&cfg, config().to_string()).unwrap();
    let out = tmp.path().join("run");
    let args = |resume: bool| {
        let mut c = Command::new(BIN);
        c.args(["train", "--quiet", "--device", "cpu"]);
        if !resume {
            c.arg("--config").arg(&cfg);
        }
        c.arg("--data")
            .arg(format!("idx:{}", data.display()))
            .arg("--out")
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if resume {
            c.arg("--resume");
        }
        c
    };

    // Kill it with SIGKILL once a checkpoint exists and at least one more step was logged.
    let mut child = args(false).spawn().unwrap();
    let start = Instant::now();
    loop {
        let steps = logged_steps(&out);
        if out.join("checkpoint.bin").exists() && steps.len() >= 4 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "training ended before it could be killed"
        );
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "no checkpoint after 10 min"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let done = *logged_steps(&out).last().unwrap();
    let saved = checkpoint_step(&out);
    assert!(
        saved <= done && done - saved < 3,
        "logged {done}, checkpoint at {saved}: lost more than one interval"
    );

    // A fresh run into the same folder refuses to overwrite it.
    let refused = args(false).output().unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--resume"));
    // --resume takes the checkpoint's configuration: an option that would change it is
    // refused, and so is a folder without a checkpoint (a mistyped --out).
    for extra in [
        &["--batch", "8"][..],
        &["--seed", "3"],
        &["--config", "x.json"],
    ] {
        let err = rejected(args(true).args(extra));
        assert!(err.contains("cannot be used with"), "{extra:?}: {err}");
    }
    let err = rejected(
        Command::new(BIN)
            .args(["train", "--quiet", "--device", "cpu", "--resume", "--out"])
            .arg(tmp.path().join("no-such-run"))
            .arg("--data")
            .arg(format!("idx:{}", data.display())),
    );
    assert!(err.contains("no checkpoint to resume"), "{err}");
    assert!(!tmp.path().join("no-such-run").exists());
    // A killed run's half-written temporary file is removed by the run that resumes.
    let stale = out.join(".checkpoint.bin.999999.tmp");
    std::fs::write(&stale, b"half").unwrap();

    // Another run holding the folder keeps a resume out; the lock of a killed run does not.
    let holder = enas4d::train::RunLock::acquire(&out).unwrap();
    assert!(rejected(&mut args(true)).contains("another training run"));
    drop(holder);
    let resumed = args(true).output().unwrap();
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert_eq!(
        logged_steps(&out),
        (1..=16).collect::<Vec<_>>(),
        "every step logged exactly once"
    );
    assert_eq!(checkpoint_step(&out), 16);
    assert!(!stale.exists(), "stale temporary file left behind");

    // The run drew its curve; `enas4d curve` draws runs end to end and names a missing log.
    let svg = std::fs::read_to_string(out.join("curve.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("training curve"));
    let twice = tmp.path().join("twice.svg");
    let curve = Command::new(BIN)
        .arg("curve")
        .args([&out, &out])
        .arg("--out")
        .arg(&twice)
        .output()
        .unwrap();
    assert!(curve.status.success());
    assert!(String::from_utf8_lossy(&curve.stderr).contains("2 run(s), 512 images"));
    let missing = Command::new(BIN)
        .args(["curve"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("config.json"));
    let evals = std::fs::read_to_string(out.join("eval.jsonl")).unwrap();
    assert_eq!(
        evals.lines().count(),
        8,
        "largest and smallest after each of 4 phases"
    );

    let eval = Command::new(BIN)
        .args(["eval", "--json", "--split", "test", "--smallest", "--model"])
        .arg(out.join("supernet.bin"))
        .arg("--data")
        .arg(format!("idx:{}", data.display()))
        .output()
        .unwrap();
    assert!(
        eval.status.success(),
        "{}",
        String::from_utf8_lossy(&eval.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&eval.stdout).unwrap();
    let exits = report["exits"].as_array().unwrap();
    assert_eq!(exits.len(), 3);
    let macs: Vec<u64> = exits
        .iter()
        .map(|e| e["cum_macs"].as_u64().unwrap())
        .collect();
    assert!(macs.windows(2).all(|w| w[0] < w[1]));
    for e in exits {
        let a = e["accuracy"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&a));
    }
    assert_eq!(report["images"].as_u64(), Some(60));

    // Export the smallest subnet and classify images of any size with it.
    let smallest = tmp.path().join("smallest.json");
    std::fs::write(&smallest, report["config"].to_string()).unwrap();
    let net = tmp.path().join("net.safetensors");
    let export = Command::new(BIN)
        .args([
            "export",
            "--thresholds",
            "0.5,0.5",
            "--val-images",
            "30",
            "--model",
        ])
        .arg(out.join("supernet.bin"))
        .arg("--config")
        .arg(&smallest)
        .arg("--out")
        .arg(&net)
        .arg("--data")
        .arg(format!("idx:{}", data.display()))
        .output()
        .unwrap();
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let grey = tmp.path().join("grey.png");
    image::GrayImage::from_fn(28, 28, |x, y| image::Luma([((x * 9 + y * 3) % 256) as u8]))
        .save(&grey)
        .unwrap();
    let photo = tmp.path().join("photo.jpg");
    image::RgbImage::from_fn(333, 211, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    })
    .save(&photo)
    .unwrap();
    let infer = |extra: &[&str]| {
        let o = Command::new(BIN)
            .args(["infer", "--json", "--model"])
            .arg(&net)
            .args(extra)
            .arg(&grey)
            .arg(&photo)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .collect::<Vec<_>>()
    };
    for (t, exit) in [("1.0", 3), ("0.0", 1)] {
        let rows = infer(&["--threshold", t]);
        assert_eq!(rows.len(), 2);
        for r in &rows {
            assert_eq!(r["exit"].as_u64(), Some(exit), "threshold {t}: {r}");
            assert_eq!(r["macs"].as_u64(), Some(macs[exit as usize - 1]));
            assert_eq!(r["perExit"].as_array().unwrap().len(), exit as usize);
            let c = r["confidence"].as_f64().unwrap();
            assert!(c > 0.0 && c <= 1.0);
        }
    }
    let within = infer(&["--budget", &format!("{}", macs[2])]);
    assert!(within
        .iter()
        .all(|r| r["macs"].as_u64().unwrap() <= macs[2]));
    // One undecodable image is reported in its place; the others are still classified and
    // the exit status says something failed.
    let broken = tmp.path().join("broken.png");
    std::fs::write(&broken, b"\x89PNG\r\n\x1a\ntruncated").unwrap();
    let mixed = Command::new(BIN)
        .args(["infer", "--json", "--model"])
        .arg(&net)
        .arg(&grey)
        .arg(&broken)
        .arg(&photo)
        .output()
        .unwrap();
    assert_eq!(mixed.status.code(), Some(1));
    let rows: Vec<serde_json::Value> = String::from_utf8(mixed.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows[0]["label"].is_string() && rows[2]["label"].is_string());
    assert!(rows[1]["file"].as_str().unwrap().ends_with("broken.png"));
    assert!(rows[1]["error"].as_str().unwrap().contains("broken.png"));
    // A threshold outside [0, 1] says so; an exported net handed to `eval` points to `infer`.
    let err = rejected(
        Command::new(BIN)
            .args(["infer", "--threshold", "1.5", "--model"])
            .arg(&net)
            .arg(&grey),
    );
    assert!(
        err.contains("from 0 to 1") && !err.contains("thresholds[0]"),
        "{err}"
    );
    let err = rejected(Command::new(BIN).args(["eval", "--model"]).arg(&net));
    assert!(
        err.contains("exported net") && err.contains("enas4d infer"),
        "{err}"
    );
    // A wrong --device is refused before any image is read.
    let err = rejected(
        Command::new(BIN)
            .args(["infer", "--device", "tpu", "--model"])
            .arg(&net)
            .arg(tmp.path().join("does-not-exist.png")),
    );
    assert!(
        err.contains("tpu") && !err.contains("does-not-exist"),
        "{err}"
    );
    let too_small = Command::new(BIN)
        .args(["infer", "--budget", "10", "--model"])
        .arg(&net)
        .arg(&grey)
        .output()
        .unwrap();
    assert_eq!(too_small.status.code(), Some(2));

    // A truncated model is a clear error, not a panic.
    let bytes = std::fs::read(out.join("supernet.bin")).unwrap();
    let cut = tmp.path().join("cut.bin");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let bad = Command::new(BIN)
        .args(["eval", "--model"])
        .arg(&cut)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("error:"));
}

/// `--alone` trains one subnet by itself (the baseline of the "subnet of the supernet vs the
/// same subnet trained alone" comparison), and an impossible subnet is an error naming the
/// field.
#[test]
fn alone_trains_one_subnet() {
    let (tmp, data, mut rng) = synthetic_data(5, 200, 40);
    let mut cfg = config();
    cfg["phases"] = serde_json::json!([{"phase": "full", "steps": 5, "lr": 3e-3}]);
    let cfg_path = tmp.path().join("config.json");
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    let preset = enas4d::space::Preset::tiny(3, 10).unwrap();
    let subnet = enas4d::space::SubnetConfig::random(&preset, &mut rng);
    let subnet_path = tmp.path().join("subnet.json");
    std::fs::write(&subnet_path, serde_json::to_string(&subnet).unwrap()).unwrap();
    let train = |subnet: &Path, out: &Path| {
        Command::new(BIN)
            .args(["train", "--quiet", "--device", "cpu", "--config"])
            .arg(&cfg_path)
            .arg("--alone")
            .arg(subnet)
            .arg("--data")
            .arg(format!("idx:{}", data.display()))
            .arg("--out")
            .arg(out)
            .output()
            .unwrap()
    };
    let out = tmp.path().join("alone");
    let o = train(&subnet_path, &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(logged_steps(&out), (1..=5).collect::<Vec<_>>());
    let evals: Vec<serde_json::Value> = std::fs::read_to_string(out.join("eval.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(evals.len(), 1, "{evals:?}");
    assert_eq!(evals[0]["subnet"], "alone");
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(saved["alone"], serde_json::to_value(&subnet).unwrap());

    let eval = Command::new(BIN)
        .args(["eval", "--json", "--split", "test", "--model"])
        .arg(out.join("supernet.bin"))
        .arg("--config")
        .arg(&subnet_path)
        .arg("--data")
        .arg(format!("idx:{}", data.display()))
        .output()
        .unwrap();
    assert!(
        eval.status.success(),
        "{}",
        String::from_utf8_lossy(&eval.stderr)
    );

    let mut bad = serde_json::to_value(&subnet).unwrap();
    bad["kernel"][0][0] = serde_json::json!(4);
    let bad_path = tmp.path().join("bad.json");
    std::fs::write(&bad_path, bad.to_string()).unwrap();
    let o = train(&bad_path, &tmp.path().join("bad"));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("kernel"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A warm start (`--init`) with another seed is refused unless `val_seed` keeps the
/// supernet's validation split, which it then trains without touching.
#[test]
fn warm_start_keeps_the_validation_split() {
    let (tmp, data, _) = synthetic_data(6, 160, 20);
    let mut cfg = config();
    cfg["phases"] = serde_json::json!([{"phase": "full", "steps": 2, "lr": 3e-3}]);
    let run = |cfg: &serde_json::Value, name: &str, extra: &[&str]| {
        train(tmp.path(), &data, cfg, name, extra)
    };
    let o = run(&cfg, "first", &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let init = tmp.path().join("first").join("supernet.bin");
    let init = init.to_str().unwrap();

    let o = run(&cfg, "reseeded", &["--init", init, "--seed", "8"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("val_seed"), "{err}");

    cfg["val_seed"] = serde_json::json!(7);
    let o = run(&cfg, "kept", &["--init", init, "--seed", "8"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("kept/config.json")).unwrap())
            .unwrap();
    assert_eq!(
        (saved["seed"].as_u64(), saved["val_seed"].as_u64()),
        (Some(8), Some(7))
    );
}

/// A supernet trained with sampled stage cuts and exit weights, then `enas4d search` beside a
/// static one: front.json holds per budget the multi-stage net, the best static subnet, the
/// best cascade of two static subnets and the reuse bound, and the four test-split curves the
/// plot draws.
#[test]
fn search_reports_static_and_cascade_baselines() {
    let (tmp, data, _) = synthetic_data(8, 160, 50);
    let train = |stages: usize, name: &str| {
        let mut cfg = config();
        cfg["stages"] = serde_json::json!(stages);
        cfg["phases"] = serde_json::json!([{"phase": "expand", "steps": 3, "lr": 3e-3}]);
        cfg["sampled_cuts"] = serde_json::json!(true);
        cfg["exit_weights"] = serde_json::json!(vec![1.0; stages]);
        let o = train(tmp.path(), &data, &cfg, name, &[]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        tmp.path().join(name).join("supernet.bin")
    };
    let multi = train(3, "s3");
    let single = train(1, "s1");
    let out = tmp.path().join("search");
    let search = |bn_images: &str| {
        let mut c = Command::new(BIN);
        c.args(["search", "--quiet", "--resume", "--initial", "5"])
            .args(["--generations", "1", "--val-images", "40"])
            .args(["--bn-images", bn_images, "--test-images", "30"])
            .args(["--budget", "4M", "--budget", "20M", "--model"])
            .arg(&multi)
            .arg("--static-model")
            .arg(&single)
            .arg("--data")
            .arg(format!("idx:{}", data.display()))
            .arg("--out")
            .arg(&out);
        c
    };
    let o = search("20").output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // A resume that would measure with other BN images is refused, naming the setting.
    let err = rejected(&mut search("10"));
    assert!(err.contains("measurement") && err.contains("20"), "{err}");
    let front: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("front.json")).unwrap()).unwrap();
    let roomy = &front["budgets"][1];
    for key in ["multi_stage", "best_static", "best_cascade"] {
        let test = &roomy[key]["test"];
        let acc = test["accuracy"].as_f64().unwrap_or(-1.0);
        assert!((0.0..=1.0).contains(&acc), "{key}: {roomy}");
        assert!(
            test["avg_macs"].as_f64().unwrap() <= 20e6 * 1.5,
            "{key}: {roomy}"
        );
    }
    let cascade = &roomy["best_cascade"];
    let macs = |c: &serde_json::Value| {
        let config: enas4d::space::SubnetConfig = serde_json::from_value(c.clone()).unwrap();
        let preset = enas4d::space::Preset::tiny(1, 10).unwrap();
        *enas4d::space::count(&preset, &config)
            .unwrap()
            .cum_macs
            .last()
            .unwrap() as f64
    };
    let (cheap, big) = (macs(&cascade["cheap"]), macs(&cascade["big"]));
    assert!(cheap < big, "{cascade}");
    let val = &cascade["val"];
    let share = val["exit_shares"][1].as_f64().unwrap();
    let charged = cheap + share * big;
    assert!(
        (val["avg_macs"].as_f64().unwrap() - charged).abs() <= charged * 1e-9,
        "both costs charged: {cascade}"
    );
    assert!(val["avg_macs"].as_f64().unwrap() <= 20e6);
    // At every budget the reuse bound refunds the cheap member on the inputs that go on: it
    // charges max(cheap, big) there, less than both costs whenever some input goes on, and on
    // validation does at least as well as the cascade (the arithmetic itself is unit-tested).
    let mut checked = 0;
    for budget in front["budgets"].as_array().unwrap() {
        let (cascade, bound) = (&budget["best_cascade"], &budget["reuse_bound"]);
        if cascade.is_null() {
            continue;
        }
        checked += 1;
        let (cheap, big) = (macs(&bound["cheap"]), macs(&bound["big"]));
        let val = &bound["val"];
        let (share, avg) = (
            val["exit_shares"][1].as_f64().unwrap(),
            val["avg_macs"].as_f64().unwrap(),
        );
        let refunded = (1.0 - share) * cheap + share * big;
        assert!(
            (avg - refunded).abs() <= refunded * 1e-9,
            "the cheap member refunded: {bound}"
        );
        if share > 0.0 {
            assert!(avg < cheap + share * big, "{bound}");
        }
        assert!(
            val["accuracy"].as_f64().unwrap() >= cascade["val"]["accuracy"].as_f64().unwrap(),
            "the bound is at least the cascade: {budget}"
        );
    }
    assert!(checked > 0, "no budget with a cascade: {front}");
    for curve in [
        "multi_stage",
        "best_static",
        "static_cascade",
        "reuse_bound",
    ] {
        let points = front["test_curves"][curve].as_array().unwrap();
        assert!(!points.is_empty(), "{curve}");
        let val: Vec<f64> = points
            .iter()
            .map(|p| p["val_avg_macs"].as_f64().unwrap())
            .collect();
        assert!(val.windows(2).all(|w| w[0] < w[1]), "{curve}: {val:?}");
    }
    let svg = std::fs::read_to_string(out.join("pareto.svg")).unwrap();
    assert!(svg.contains("cascade of two static subnets") && svg.contains("Test accuracy"));
    assert!(svg.contains("reuse bound"));
    // Exporting a budget the search did not run names the ones it did.
    let mut export = Command::new(BIN);
    export
        .args(["export", "--budget", "7M", "--search"])
        .arg(out.join("front.json"))
        .arg("--model")
        .arg(&multi)
        .arg("--out")
        .arg(tmp.path().join("net.safetensors"))
        .arg("--data")
        .arg(format!("idx:{}", data.display()));
    let err = rejected(&mut export);
    assert!(err.contains("4M, 20M"), "{err}");
}

/// A warm start into the expand phase continues the supernet as it is: its channels were
/// sorted when it entered that phase, and sorting them again would move them under every
/// narrower subnet it was trained with.
#[test]
fn a_warm_start_does_not_sort_channels_again() {
    let (tmp, data, _) = synthetic_data(9, 160, 20);
    let run = |cfg: &serde_json::Value, name: &str, extra: &[&str]| {
        let o = train(tmp.path(), &data, cfg, name, extra);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        tmp.path().join(name).join("supernet.bin")
    };
    let first = run(&config(), "first", &[]);
    let mut cfg = config();
    cfg["phases"] = serde_json::json!([{"phase": "expand", "steps": 1, "lr": 1e-9}]);
    let warm = run(&cfg, "warm", &["--init", first.to_str().unwrap()]);
    let device = burn::tensor::Device::flex();
    let weights = |path: &Path| {
        let net = enas4d::train::checkpoint::load(path, &device).unwrap().net;
        net.blocks
            .iter()
            .filter(|b| b.expand.is_some())
            .flat_map(|b| {
                b.project
                    .weight
                    .val()
                    .into_data()
                    .try_into_vec::<f32>()
                    .unwrap()
            })
            .collect::<Vec<f32>>()
    };
    let (a, b) = (weights(&first), weights(&warm));
    assert_eq!(a.len(), b.len());
    let scale = a.iter().fold(0f32, |m, x| m.max(x.abs()));
    let moved = a
        .iter()
        .zip(&b)
        .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(
        moved <= scale * 1e-5,
        "weights moved by {moved} (scale {scale})"
    );

    // A warm start may fix the space's cuts: the supernet records them, `eval` uses them for
    // the largest subnet and refuses a subnet at other cuts.
    cfg["cuts"] = serde_json::json!({"p": [0.625, 0.75], "p_mid": [0.25, 0.5]});
    let fixed = run(&cfg, "fixed", &["--init", first.to_str().unwrap()]);
    let header = enas4d::train::checkpoint::load(&fixed, &device)
        .unwrap()
        .header;
    let cuts = header
        .preset
        .cuts
        .clone()
        .expect("the fixed cuts are recorded");
    assert_eq!(cuts.p_mid, Some(vec![0.25, 0.5]));
    let eval = |extra: &[&str]| {
        Command::new(BIN)
            .args(["eval", "--json", "--model"])
            .arg(&fixed)
            .args(["--data", &format!("idx:{}", data.display())])
            .args(extra)
            .output()
            .unwrap()
    };
    let o = eval(&["--largest"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let largest = enas4d::space::SubnetConfig::largest(&header.preset);
    let want = enas4d::space::count(&header.preset, &largest)
        .unwrap()
        .cum_macs;
    let got: Vec<u64> = v["exits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["cum_macs"].as_u64().unwrap())
        .collect();
    assert_eq!(got, want);
    let mut other = largest;
    other.p_mid = None;
    let path = tmp.path().join("other.json");
    std::fs::write(&path, serde_json::to_string(&other).unwrap()).unwrap();
    let err = rejected(
        Command::new(BIN)
            .args(["eval", "--model"])
            .arg(&fixed)
            .args(["--data", &format!("idx:{}", data.display()), "--config"])
            .arg(&path),
    );
    assert!(err.contains("fixed"), "{err}");
}

/// `teacher` names another trained supernet whose largest subnet gives the distillation
/// targets: an S = 1 supernet teaches an S = 3 run (the loss changes from the first step, and
/// `--resume` loads the teacher again); a teacher with another validation split, or one with
/// `distill` 0, is refused.
#[test]
fn an_external_teacher_gives_the_soft_targets() {
    let (tmp, data, _) = synthetic_data(10, 160, 20);
    let run = |cfg: &serde_json::Value, name: &str, extra: &[&str]| {
        train(tmp.path(), &data, cfg, name, extra)
    };
    let ok = |o: std::process::Output| {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr))
    };
    let mut cfg = config();
    cfg["phases"] = serde_json::json!([{"phase": "full", "steps": 3, "lr": 3e-3}]);
    cfg["stages"] = serde_json::json!(1);
    ok(run(&cfg, "static", &[]));
    ok(run(&cfg, "reseeded", &["--seed", "8"]));
    let first_loss = |name: &str| -> f64 {
        let log = std::fs::read_to_string(tmp.path().join(name).join("log.csv")).unwrap();
        log.lines()
            .nth(1)
            .unwrap()
            .split(',')
            .nth(3)
            .unwrap()
            .parse()
            .unwrap()
    };

    cfg["stages"] = serde_json::json!(3);
    cfg["checkpoint_every"] = serde_json::json!(1);
    ok(run(&cfg, "own", &[]));
    let teacher = tmp.path().join("static").join("supernet.bin");
    cfg["teacher"] = serde_json::json!(teacher);
    ok(run(&cfg, "taught", &[]));
    let (own, taught) = (first_loss("own"), first_loss("taught"));
    assert!((own - taught).abs() > 1e-4 * own.abs(), "{own} vs {taught}");
    // Resuming a finished run reloads the teacher and has nothing left to do.
    ok(Command::new(BIN)
        .args(["train", "--quiet", "--device", "cpu", "--resume", "--data"])
        .arg(format!("idx:{}", data.display()))
        .arg("--out")
        .arg(tmp.path().join("taught"))
        .output()
        .unwrap());
    assert_eq!(logged_steps(&tmp.path().join("taught")), vec![1, 2, 3]);

    cfg["teacher"] = serde_json::json!(tmp.path().join("reseeded").join("supernet.bin"));
    let o = run(&cfg, "other-split", &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("teacher") && err.contains("val_seed"), "{err}");

    cfg["teacher"] = serde_json::json!(teacher);
    cfg["distill"] = serde_json::json!(0.0);
    let o = run(&cfg, "no-distill", &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("teacher"), "{err}");
}
