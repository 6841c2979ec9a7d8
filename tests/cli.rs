//! The command line on the shipped exported net: `inspect` (and a supernet handed to it), per-exit
//! `--thresholds`, one `--device` value set for every command, the default model from outside
//! the repository, no Vulkan loader noise without `XDG_RUNTIME_DIR`, `bench`, and errors that
//! name the file and its kind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_enas4d");

fn shipped(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn net() -> PathBuf {
    shipped("models/tiny-s3/net.safetensors")
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A 40×30 RGB test image with a fresh pattern.
fn image(dir: &Path, seed: u32) -> PathBuf {
    let path = dir.join(format!("img-{seed}.png"));
    image::RgbImage::from_fn(40, 30, |x, y| {
        image::Rgb([
            ((x * 7 + seed * 13) % 256) as u8,
            ((y * 11 + x * seed) % 256) as u8,
            ((x ^ y) * 5 % 256) as u8,
        ])
    })
    .save(&path)
    .unwrap();
    path
}

fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    assert!(o.status.success(), "{}", stderr(o));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `inspect --json` of the shipped net (which must succeed).
fn inspect_json() -> serde_json::Value {
    let o = run(Command::new(BIN).args(["inspect", "--json"]).arg(net()));
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn inspect_shows_what_the_file_holds() {
    let v = inspect_json();
    let stages = v["stages"].as_u64().unwrap() as usize;
    assert!(stages >= 1);
    let cum: Vec<u64> = serde_json::from_value(v["cumMacs"].clone()).unwrap();
    assert_eq!(cum.len(), stages);
    assert!(cum.windows(2).all(|w| w[0] < w[1]), "{cum:?}");
    assert_eq!(v["thresholds"].as_array().unwrap().len(), stages - 1);
    assert_eq!(v["config"]["p"].as_array().unwrap().len(), stages - 1);
    assert_eq!(v["classes"].as_array().unwrap().len(), 10);
    let points = v["operatingPoints"].as_array().unwrap();
    assert!(!points.is_empty());
    for p in points {
        assert!(
            p.get("avg_macs").is_none() && p["exitShares"].is_array(),
            "{p}"
        );
        let avg = p["avgMacs"].as_f64().unwrap();
        assert!(avg >= cum[0] as f64 - 1.0 && avg <= *cum.last().unwrap() as f64 + 1.0);
    }
    let text = run(Command::new(BIN).arg("inspect").arg(net()));
    let out = String::from_utf8_lossy(&text.stdout);
    assert!(text.status.success(), "{}", stderr(&text));
    assert!(
        out.contains("MACs to each exit") && out.contains("operating points"),
        "{out}"
    );
    // A supernet is not an exported net, and the error says what to do with it.
    let o = run(Command::new(BIN)
        .arg("inspect")
        .arg(shipped("models/tiny-s3/supernet.bin")));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("enas4d export"), "{}", stderr(&o));
}

#[test]
fn per_exit_thresholds_decide_the_exit() {
    let tmp = tempfile::tempdir().unwrap();
    let img = image(tmp.path(), 3);
    let infer = |extra: &[&str]| {
        json_lines(&run(Command::new(BIN)
            .args(["infer", "--json", "--model"])
            .arg(net())
            .args(extra)
            .arg(&img)))
    };
    let info = inspect_json();
    let stages = info["stages"].as_u64().unwrap() as usize;
    let full = infer(&["--threshold", "1"])[0].clone();
    assert_eq!(full["exit"].as_u64(), Some(stages as u64));
    assert_eq!(full["perExit"].as_array().unwrap().len(), stages);
    assert_eq!(full["fullMacs"], full["macs"]);
    // Per exit: never leave at exit 1, always at exit 2 (when S > 2) → exit 2.
    if stages > 2 {
        let mut t = vec!["1".to_string(); stages - 1];
        t[1] = "0".into();
        let rows = infer(&["--thresholds", &t.join(",")]);
        assert_eq!(rows[0]["exit"].as_u64(), Some(2), "{}", rows[0]);
        assert_eq!(rows[0]["perExit"][1], full["perExit"][1]);
    }
    // The per-exit form agrees with the uniform one.
    let zeros = vec!["0"; stages - 1].join(",");
    assert_eq!(
        infer(&["--thresholds", &zeros]),
        infer(&["--threshold", "0"])
    );
    // Wrong counts and values are refused with the flag's meaning.
    let bad = run(Command::new(BIN)
        .args(["infer", "--thresholds", "0.5,0.5,0.5,0.5", "--model"])
        .arg(net())
        .arg(&img));
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("thresholds"), "{}", stderr(&bad));
    let bad = run(Command::new(BIN)
        .args(["infer", "--thresholds", "0.5,2", "--model"])
        .arg(net())
        .arg(&img));
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("from 0 to 1"), "{}", stderr(&bad));
}

#[test]
fn every_command_takes_the_same_device_values() {
    for cmd in ["train", "eval", "search", "export", "infer", "bench"] {
        let o = run(Command::new(BIN).args([cmd, "--device", "tpu"]));
        assert_eq!(o.status.code(), Some(2), "{cmd}");
        let err = stderr(&o);
        for v in ["cpu", "gpu", "discrete", "integrated", "lavapipe"] {
            assert!(err.contains(v), "{cmd}: {err}");
        }
    }
}

#[test]
fn the_default_model_is_found_outside_the_repository() {
    let tmp = tempfile::tempdir().unwrap();
    let img = image(tmp.path(), 5);
    let rows = json_lines(&run(Command::new(BIN)
        .current_dir(tmp.path())
        .args(["infer", "--json"])
        .arg(&img)));
    assert_eq!(rows.len(), 1);
    assert!(rows[0]["label"].is_string());
}

#[test]
fn no_loader_noise_without_xdg_runtime_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let img = image(tmp.path(), 7);
    let o = run(Command::new(BIN)
        .env_remove("XDG_RUNTIME_DIR")
        .args(["infer", "--device", "gpu", "--json", "--model"])
        .arg(net())
        .arg(&img));
    let err = stderr(&o);
    assert!(!err.contains("XDG_RUNTIME_DIR"), "{err}");
    // Without any adapter the run fails cleanly; with one it classifies.
    if o.status.success() {
        assert_eq!(json_lines(&o).len(), 1);
    } else {
        assert_eq!(o.status.code(), Some(2), "{err}");
    }
}

#[test]
fn bench_reports_consistent_speed_and_cost() {
    let info = inspect_json();
    let cum: Vec<u64> = serde_json::from_value(info["cumMacs"].clone()).unwrap();
    for (t, macs) in [("1", *cum.last().unwrap()), ("0", cum[0])] {
        let o = run(Command::new(BIN)
            .args(["bench", "--json", "--data", "random", "--images", "6"])
            .args(["--batch", "3", "--threads", "2", "--seconds", "0.2"])
            .args(["--threshold", t, "--model"])
            .arg(net()));
        assert!(o.status.success(), "{}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["batch"], 3);
        assert_eq!(v["threads"], 2);
        let ms = v["ms_per_image"].as_f64().unwrap();
        let ips = v["images_per_s"].as_f64().unwrap();
        assert!(ms > 0.0 && ((ips * ms / 1e3) - 1.0).abs() < 1e-6, "{v}");
        assert_eq!(v["macs_per_image"].as_f64().unwrap(), macs as f64, "{v}");
        let gmacs = v["gmacs_per_s"].as_f64().unwrap();
        assert!(
            (gmacs - macs as f64 * ips / 1e9).abs() <= 1e-6 * gmacs.max(1e-9),
            "{v}"
        );
        assert!(v["images"].as_u64().unwrap() >= 6);
    }
}

#[test]
fn errors_name_the_file_and_what_kind_of_file_it_is() {
    let tmp = tempfile::tempdir().unwrap();
    // A damaged supernet is called a checkpoint or supernet file, not a model file.
    let bytes = std::fs::read(shipped("models/tiny-s3/supernet.bin")).unwrap();
    let cut = tmp.path().join("cut.bin");
    std::fs::write(&cut, &bytes[..bytes.len() / 3]).unwrap();
    let o = run(Command::new(BIN).args(["eval", "--model"]).arg(&cut));
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("checkpoint or supernet file") && !err.contains("model file"),
        "{err}"
    );
    // A missing config names its path.
    let missing = tmp.path().join("no-such-config.json");
    let o = run(Command::new(BIN).args(["train", "--config"]).arg(&missing));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no-such-config.json"), "{}", stderr(&o));
    // A folder that cannot be made is a write error naming it (a file stands in its way).
    let file = tmp.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let o = run(Command::new(BIN)
        .args(["gallery", "--count", "1", "--out"])
        .arg(file.join("sub")));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("cannot write") && err.contains("a-file"),
        "{err}"
    );
}

#[test]
fn export_writes_onnx_graphs_of_every_exit_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("net.onnx");
    let o = run(Command::new(BIN)
        .args(["export", "--net"])
        .arg(net())
        .arg("--onnx")
        .arg(&out));
    assert!(o.status.success(), "{}", stderr(&o));
    let stages = enas4d::format::ExportedNet::load(&net())
        .unwrap()
        .preset
        .stages;
    assert!(stages >= 2, "the shipped net has early exits");
    let files = (1..stages)
        .map(|k| format!("net.exit{k}.onnx"))
        .chain(["net.onnx".to_string()]);
    let sizes: Vec<u64> = files
        .map(|f| std::fs::metadata(dir.path().join(f)).unwrap().len())
        .collect();
    // A longer prefix holds more channels of every layer.
    assert!(sizes.windows(2).all(|w| w[0] < w[1]), "{sizes:?}");
    // --net needs --onnx; a file that is not an exported net is named.
    let o = run(Command::new(BIN).args(["export", "--net"]).arg(net()));
    assert!(!o.status.success());
    let bad = dir.path().join("bad.safetensors");
    std::fs::write(&bad, b"not a model").unwrap();
    let o = run(Command::new(BIN)
        .args(["export", "--net"])
        .arg(&bad)
        .arg("--onnx")
        .arg(&out));
    assert!(
        !o.status.success() && stderr(&o).contains("bad.safetensors"),
        "{}",
        stderr(&o)
    );
}
