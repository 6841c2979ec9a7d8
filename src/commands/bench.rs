//! `enas4d bench`: inference speed of an exported net on preprocessed inputs — no decoding, no
//! start-up in the timed part — as ms/image, images/s, MACs/image and GMAC/s, like
//! onnxruntime's perf test.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use enas4d::data::DataSource;
use enas4d::format::ExportedNet;
use enas4d::runtime::preprocess;
use enas4d::runtime::thresholds::ThresholdChoice;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::engine::Engine;

/// Arguments of `enas4d bench`.
#[derive(Args)]
pub struct BenchArgs {
    /// Exported net (default: the shipped multi-stage net).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Images per call.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=65_536))]
    batch: u64,
    /// CPU threads a batch is spread over (at most one per image of the batch).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1024))]
    threads: u64,
    /// One threshold for every early exit (1 = run every stage).
    #[arg(long, conflicts_with = "budget", value_parser = super::infer::parse_threshold)]
    threshold: Option<f32>,
    /// Average-MACs budget: the model's best stored operating point within it.
    #[arg(long, value_parser = super::parse_budget)]
    budget: Option<f64>,
    /// Inputs: the first N test images of --data, preprocessed once before timing.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    images: u64,
    /// Data the inputs come from: fashion-mnist (built in), idx:DIR, cifar:DIR,
    /// folder:DIR[:SIZE], or `random` (uniform noise in [−1, 1]).
    #[arg(long, default_value = "fashion-mnist")]
    data: String,
    /// Time each measurement for at least this long (after one warm-up call).
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Where the net runs.
    #[arg(long, value_enum, default_value_t = super::DeviceChoice::Cpu)]
    device: super::DeviceChoice,
    #[command(flatten)]
    adapter: super::AdapterArgs,
    /// One JSON object instead of the table row.
    #[arg(long)]
    json: bool,
}

/// What `bench --json` prints.
#[derive(Serialize)]
struct BenchResult {
    model: String,
    device: String,
    batch: usize,
    threads: usize,
    thresholds: Vec<f32>,
    images: usize,
    seconds: f64,
    ms_per_image: f64,
    images_per_s: f64,
    macs_per_image: f64,
    gmacs_per_s: f64,
    exit_shares: Vec<f64>,
}

/// The inputs: test images of `data` at the net's resolution, or noise.
fn inputs(
    data: &str,
    count: usize,
    resolution: usize,
) -> Result<Vec<Vec<f32>>, Box<dyn std::error::Error>> {
    if data == "random" {
        let mut rng = SmallRng::seed_from_u64(1);
        return Ok((0..count)
            .map(|_| {
                (0..3 * resolution * resolution)
                    .map(|_| rng.random_range(-1.0..1.0))
                    .collect()
            })
            .collect());
    }
    let test = DataSource::parse(data)?.load(false)?;
    let (c, h, w) = (test.channels, test.height, test.width);
    (0..count.min(test.len()))
        .map(|i| Ok(preprocess(&test.interleaved(i), w, h, c, resolution)?))
        .collect()
}

/// Runs `enas4d bench`.
pub fn run(args: BenchArgs) -> Result<bool, Box<dyn std::error::Error>> {
    let model = match args.model.clone() {
        Some(m) => m,
        None => super::shipped(super::DEFAULT_MODEL)?,
    };
    let net = ExportedNet::load(&model).map_err(|e| format!("{}: {e}", model.display()))?;
    let choice = match (args.threshold, args.budget) {
        (Some(t), _) => ThresholdChoice::Uniform(t),
        (None, Some(b)) => ThresholdChoice::Budget(b),
        (None, None) => ThresholdChoice::Default,
    };
    let thresholds = net.thresholds_for(&choice)?;
    if !(args.seconds.is_finite() && args.seconds > 0.0 && args.seconds <= 86_400.0) {
        return Err("--seconds must be a number > 0 and at most a day".into());
    }
    let batch = args.batch as usize;
    let threads = (args.threads as usize).min(batch);
    let engine = Engine::open(&net, args.device, &args.adapter, threads)?;
    let pool = inputs(
        &args.data,
        args.images as usize,
        net.config.resolution as usize,
    )?;
    if pool.is_empty() {
        return Err("no input images".into());
    }
    // Batches cycle through the pool; every batch is built before the clock starts.
    let batches: Vec<Vec<Vec<f32>>> = (0..pool.len().div_ceil(batch).max(1))
        .map(|b| {
            (0..batch)
                .map(|i| pool[(b * batch + i) % pool.len()].clone())
                .collect()
        })
        .collect();
    engine.classify(&batches[0], &thresholds)?;
    let (mut images, mut macs) = (0usize, 0f64);
    let mut exits = vec![0usize; net.stages()];
    let budget = Duration::from_secs_f64(args.seconds);
    let start = Instant::now();
    let mut b = 0;
    while start.elapsed() < budget || b < batches.len().min(2) {
        for d in engine.classify(&batches[b % batches.len()], &thresholds)? {
            images += 1;
            macs += d.macs as f64;
            exits[d.exit - 1] += 1;
        }
        b += 1;
    }
    let seconds = start.elapsed().as_secs_f64();
    let r = BenchResult {
        model: model.display().to_string(),
        device: engine.name(),
        batch,
        threads: engine.threads(),
        thresholds,
        images,
        seconds,
        ms_per_image: seconds * 1e3 / images as f64,
        images_per_s: images as f64 / seconds,
        macs_per_image: macs / images as f64,
        gmacs_per_s: macs / seconds / 1e9,
        exit_shares: exits.iter().map(|&e| e as f64 / images as f64).collect(),
    };
    if args.json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        let shares: Vec<String> = r
            .exit_shares
            .iter()
            .map(|s| format!("{:.0}%", s * 100.0))
            .collect();
        println!(
            "{:<24} {:>5} {:>7} {:>11} {:>10} {:>12} {:>8}  exit shares",
            "device", "batch", "threads", "ms/image", "images/s", "MACs/image", "GMAC/s"
        );
        println!(
            "{:<24} {:>5} {:>7} {:>11.4} {:>10.1} {:>11.3}M {:>8.2}  {}",
            r.device,
            r.batch,
            r.threads,
            r.ms_per_image,
            r.images_per_s,
            r.macs_per_image / 1e6,
            r.gmacs_per_s,
            shares.join("/")
        );
    }
    Ok(true)
}
