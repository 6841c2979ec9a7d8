//! Training step time of single `tiny` subnets (S = 3): forward (all exits), multi-exit loss,
//! backward and an AdamW step, on a burn device — the cost the training schedule is made of.
//!
//!   cargo run --release --example bench_train -- [--device cpu|gpu|lavapipe] [--batch 64] [--steps 5]
//!     [--ops custom|composed|both]
//!
//! Each subnet runs twice: with the elastic convolutions as this crate's custom ops
//! (`enas4d::elastic`, the training path) and as compositions of plain burn ops (the
//! reference), so the table shows what the custom ops buy.
//!
//! GFLOP/s counts 6 × the stage-wise MACs (forward + backward) per image; the composed pass
//! computes more (the zero blocks of the masks), so this is the rate that matters to a user.
//! PyTorch is not compared here: this machine has no `torch` (see README, Training).

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
    let modes: Vec<bool> = match arg("--ops", "both").as_str() {
        "custom" => vec![false],
        "composed" => vec![true],
        _ => vec![false, true],
    };
    let runs = subnets
        .iter()
        .flat_map(|(label, config)| modes.iter().map(move |&m| (*label, config, m)));
    for (label, config, composed) in runs {
        let plan = Plan::new(&preset, config)?;
        let macs = *count(&preset, config)?.cum_macs.last().unwrap_or(&0);
        let mut net = Supernet::new(&preset, &ad, 1)?;
        let mut optim = AdamWConfig::new().init();
        let mut masks = MaskCache::new(&ad);
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
            let x = Tensor::from_data(TensorData::new(images.clone(), [batch, 3, r, r]), &ad);
            let opts = PassOptions {
                bn: BnMode::Batch,
                dropout: 0.1,
                composed,
            };
            let logits = forward(&net, &plan, x, &mut masks, opts)?;
            let targets = smoothed_targets(&labels, 10, 0.1, &ad);
            let loss = multi_exit_loss(&logits, &targets, None, 0.0);
            let grads = GradientsParams::from_grads(loss.backward(), &net);
            net = optim.step(1e-3, net, grads);
            ad.sync()?;
        }
        let s = t0.elapsed().as_secs_f64() / steps as f64;
        let gflops = 6.0 * macs as f64 * batch as f64 / s / 1e9;
        let ops = if composed { "composed" } else { "custom" };
        println!(
            "{label:<9} {ops:<9} {r:>5} {:>9.2}M {:>11.1} {:>9.1} {gflops:>9.2}",
            macs as f64 / 1e6,
            s * 1e3,
            batch as f64 / s
        );
    }
    Ok(())
}
