//! Wall-clock time per image of the stage-wise pass with early exit against always running all
//! stages, beside the MAC ratio, on the CPU path and on the GPU adapter found.
//!
//! ```text
//! cargo run --release --example bench_early_exit -- [--images 20] [--adapter NAME]
//! ```
//!
//! The net is the `tiny` preset's largest S = 3 subnet at 32 px with random weights (the
//! mechanics are what is timed: stage slicing, caching, readback, early stop). Three policies:
//! τ = 1 (never exit early), τ = 0 (always exit 1), and τ set to the median exit-1 confidence of
//! the images (about half leave at exit 1). Each policy runs image after image (`cpu`, `gpu`)
//! and as one batch of all the images in which each leaves at its own exit (`cpu×N` on
//! threads, `gpu×N` packing the images still inside between stages).

use std::time::Instant;

use clap::Parser;
use enas4d::gpu::{GpuContext, GpuOptions};
use enas4d::net::NetWeights;
use enas4d::runtime::{Decision, StageWiseCpu, StageWiseGpu};
use enas4d::selftest::random_vec;
use enas4d::space::{Plan, Preset, SubnetConfig};
use rand::rngs::SmallRng;
use rand::SeedableRng;

#[derive(Parser)]
struct Args {
    /// Images per policy.
    #[arg(long, default_value_t = 20)]
    images: usize,
    /// Force the adapter whose name contains this.
    #[arg(long)]
    adapter: Option<String>,
}

fn report(device: &str, policy: &str, seconds: f64, decisions: &[Decision], full_macs: u64) {
    let n = decisions.len() as f64;
    let macs = decisions.iter().map(|d| d.macs as f64).sum::<f64>() / n;
    let mut hist = [0usize; 3];
    decisions.iter().for_each(|d| hist[d.exit - 1] += 1);
    println!(
        "{device:<7} {policy:<22} {:>10.3} {:>10.2} {:>9.2}  {hist:?}",
        seconds * 1e3 / n,
        macs / 1e6,
        macs / full_macs as f64
    );
}

fn main() {
    let args = Args::parse();
    let preset = Preset::tiny(3, 10).expect("preset");
    let config = SubnetConfig::largest(&preset);
    let plan = Plan::new(&preset, &config).expect("plan");
    let mut rng = SmallRng::seed_from_u64(11);
    let weights = NetWeights::random(&plan, &mut rng);
    let r = plan.resolution;
    let images: Vec<Vec<f32>> = (0..args.images)
        .map(|_| random_vec(&mut rng, 3 * r * r))
        .collect();
    let cpu = StageWiseCpu::new(&preset, &config, weights.clone()).expect("cpu runtime");
    let full = *cpu.cum_macs().last().expect("stages");

    // τ at the median exit-1 confidence: about half the images leave at exit 1.
    let mut conf: Vec<f32> = images
        .iter()
        .map(|im| cpu.classify(im, &[0.0, 0.0]).expect("classify").confidence)
        .collect();
    conf.sort_by(f32::total_cmp);
    let median = conf[conf.len() / 2];
    let policies = [
        ("never exit early", [1.0, 1.0]),
        ("always exit 1", [0.0, 0.0]),
        ("median exit-1 conf", [median, 1.0]),
    ];

    let ctx = pollster::block_on(GpuContext::new(&GpuOptions {
        backends: None,
        adapter: args.adapter,
        ..GpuOptions::default()
    }));
    println!(
        "net: tiny largest, S = 3, 32 px, {:.2} M MACs to the last exit",
        full as f64 / 1e6
    );
    if let Ok(ctx) = &ctx {
        println!("gpu: {} ({})", ctx.adapter().name, ctx.adapter().backend);
    }
    println!(
        "{:<7} {:<22} {:>10} {:>10} {:>9}  exits",
        "device", "policy", "ms/image", "MMACs", "MAC ratio"
    );
    for (name, t) in policies {
        let start = Instant::now();
        let d: Vec<Decision> = images
            .iter()
            .map(|im| cpu.classify(im, &t).expect("classify"))
            .collect();
        report("cpu", name, start.elapsed().as_secs_f64(), &d, full);
    }
    let batch = format!("cpu×{}", images.len());
    for (name, t) in policies {
        let start = Instant::now();
        let d = cpu.classify_batch(&images, &t).expect("classify");
        report(&batch, name, start.elapsed().as_secs_f64(), &d, full);
    }
    match &ctx {
        Ok(ctx) => {
            let gpu = StageWiseGpu::new(ctx, &preset, &config, &weights).expect("gpu runtime");
            pollster::block_on(gpu.classify(ctx, &images[0], &[1.0, 1.0])).expect("warm-up");
            for (name, t) in policies {
                let start = Instant::now();
                let d: Vec<Decision> = images
                    .iter()
                    .map(|im| pollster::block_on(gpu.classify(ctx, im, &t)).expect("classify"))
                    .collect();
                report("gpu", name, start.elapsed().as_secs_f64(), &d, full);
            }
            let batch = format!("gpu×{}", images.len());
            for (name, t) in policies {
                let start = Instant::now();
                let d = pollster::block_on(gpu.classify_batch(ctx, &images, &t)).expect("batch");
                report(&batch, name, start.elapsed().as_secs_f64(), &d, full);
            }
        }
        Err(e) => println!("gpu: skipped ({e})"),
    }
}
