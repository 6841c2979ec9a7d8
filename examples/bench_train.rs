//! Training step time of single `tiny` subnets (S = 3): forward (all exits), multi-exit loss,
//! backward and an AdamW step, on a burn device — the cost the training schedule is made of.
//!
//!   cargo run --release --example bench_train -- [--device cpu|gpu|lavapipe] [--batch 64] [--steps 5]
//!     [--ops custom,composed,pytorch] [--python python3]
//!
//! Each subnet runs twice: with the elastic convolutions as this crate's custom ops
//! (`enas4d::elastic`, the training path) and as compositions of plain burn ops (the
//! reference), so the table shows what the custom ops buy.
//!
//! GFLOP/s counts 6 × the stage-wise MACs (forward + backward) per image; the composed pass
//! computes more (the zero blocks of the masks), so this is the rate that matters to a user.
//!
//! The `pytorch` rows run the same layers, masks and step in PyTorch on its CPU backend
//! (`examples/torch_train_step.py`, given the subnet's `Plan` as JSON), written the way a
//! PyTorch user would: masked dense 1×1 convs, so it too computes the zero blocks. They need
//! `--python` (default `python3`) to import `torch`; without it the table says so and goes on.

use std::time::Instant;

use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::{Tensor, TensorData};
use enas4d::space::{count, Plan, Preset, SubnetConfig};
use enas4d::supernet::{forward, BnMode, MaskCache, PassOptions, Supernet};
use enas4d::train::{multi_exit_loss, parse_device, smoothed_targets};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (device, name) = parse_device(&arg("--device", "cpu"))?;
    let batch: usize = arg("--batch", "64").parse()?;
    let steps: usize = arg("--steps", "5").parse()?;
    let ad = device.autodiff();
    let preset = Preset::tiny(3, 10)?;
    let mut rng = SmallRng::seed_from_u64(7);
    let subnets = [
        ("largest", SubnetConfig::largest(&preset)),
        ("random", SubnetConfig::random(&preset, &mut rng)),
        ("smallest", SubnetConfig::smallest(&preset)),
    ];
    println!("device: {name}, batch {batch}, {steps} timed steps after 2 warm-up steps");
    println!(
        "{:<9} {:<9} {:>5} {:>10} {:>11} {:>9} {:>9}",
        "subnet", "ops", "res", "MACs", "ms/step", "img/s", "GFLOP/s"
    );
    let ops_arg = arg("--ops", "custom,composed,pytorch");
    let ops: Vec<&str> = ops_arg.split(',').map(str::trim).collect();
    if let Some(bad) = ops
        .iter()
        .find(|o| !["custom", "composed", "pytorch"].contains(o))
    {
        return Err(format!("--ops: unknown `{bad}` (custom, composed, pytorch)").into());
    }
    let python = arg("--python", "python3");
    let mut torch_ok = ops.contains(&"pytorch");
    for (label, config) in &subnets {
        let plan = Plan::new(&preset, config)?;
        let macs = *count(&preset, config)?.cum_macs.last().unwrap_or(&0);
        let row = |ops: &str, s: f64| {
            let gflops = 6.0 * macs as f64 * batch as f64 / s / 1e9;
            println!(
                "{label:<9} {ops:<9} {:>5} {:>9.2}M {:>11.1} {:>9.1} {gflops:>9.2}",
                plan.resolution,
                macs as f64 / 1e6,
                s * 1e3,
                batch as f64 / s
            );
        };
        for composed in [false, true] {
            if ops.contains(&if composed { "composed" } else { "custom" }) {
                row(
                    if composed { "composed" } else { "custom" },
                    burn_step(&ad, &preset, &plan, batch, steps, composed, &mut rng)?,
                );
            }
        }
        if torch_ok {
            match torch_step(&python, &plan, batch, steps) {
                Ok(s) => row("pytorch", s),
                Err(e) => {
                    println!("pytorch: skipped ({e})");
                    torch_ok = false;
                }
            }
        }
    }
    Ok(())
}

/// Seconds per training step of `plan` on burn (`composed`: the reference ops).
fn burn_step(
    ad: &burn::tensor::Device,
    preset: &Preset,
    plan: &Plan,
    batch: usize,
    steps: usize,
    composed: bool,
    rng: &mut SmallRng,
) -> Result<f64, Box<dyn std::error::Error>> {
    let mut net = Supernet::new(preset, ad, 1)?;
    let mut optim = AdamWConfig::new().init();
    let mut masks = MaskCache::new(ad);
    let r = plan.resolution;
    let labels: Vec<u32> = (0..batch).map(|_| rng.random_range(0..10)).collect();
    let images: Vec<f32> = (0..batch * 3 * r * r)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    let mut t0 = Instant::now();
    for step in 0..steps + 2 {
        if step == 2 {
            t0 = Instant::now();
        }
        let x = Tensor::from_data(TensorData::new(images.clone(), [batch, 3, r, r]), ad);
        let opts = PassOptions {
            bn: BnMode::Batch,
            dropout: 0.1,
            composed,
        };
        let logits = forward(&net, plan, x, &mut masks, opts)?;
        let targets = smoothed_targets(&labels, 10, 0.1, ad);
        let loss = multi_exit_loss(&logits, &targets, None, 0.0);
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        net = optim.step(1e-3, net, grads);
        ad.sync()?;
    }
    Ok(t0.elapsed().as_secs_f64() / steps as f64)
}

/// Seconds per training step of `plan` in PyTorch, through `examples/torch_train_step.py`.
fn torch_step(python: &str, plan: &Plan, batch: usize, steps: usize) -> Result<f64, String> {
    let dir = std::env::temp_dir().join(format!("enas4d-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let plan_path = dir.join("plan.json");
    let json = serde_json::to_string(plan).map_err(|e| e.to_string())?;
    std::fs::write(&plan_path, json).map_err(|e| e.to_string())?;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/torch_train_step.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .arg(&plan_path)
        .args(["--batch", &batch.to_string(), "--steps", &steps.to_string()])
        .output()
        .map_err(|e| format!("{python}: {e}"))?;
    let _ = std::fs::remove_dir_all(&dir);
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().last().unwrap_or("no output");
        return Err(format!("{python} failed: {last}"));
    }
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("bad report: {e}"))?;
    report["ms_per_step"]
        .as_f64()
        .map(|ms| ms / 1e3)
        .ok_or_else(|| "the report has no ms_per_step".to_string())
}
