//! `enas4d train`: trains a supernet with progressive shrinking.

use std::path::PathBuf;

use clap::Args;
use enas4d::data::DataSource;
use enas4d::train::curve::{plot_curve, read_run};
use enas4d::train::{probe_step_time, train, TrainConfig, TrainOptions};

/// Arguments of `enas4d train`.
#[derive(Args)]
pub struct TrainArgs {
    /// Schedule: `quick` (minutes on a laptop CPU) or `full`.
    #[arg(long, default_value = "quick")]
    schedule: String,
    /// A JSON training config (overrides --schedule; unknown keys are errors).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Stages S of the supernet (1 = static once-for-all baseline).
    #[arg(long, default_value_t = 3)]
    stages: usize,
    /// Images per step (overrides the schedule's).
    #[arg(long)]
    batch: Option<usize>,
    /// Seed of the run.
    #[arg(long)]
    seed: Option<u64>,
    /// Output folder (checkpoint, log.csv, eval.jsonl, supernet.bin, curve.svg). Default runs/tiny-s<S>.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run in --out from its last checkpoint, with the checkpoint's
    /// configuration (so no option that would change it is accepted).
    #[arg(long, conflicts_with_all = ["config", "batch", "seed", "alone", "time_budget", "schedule", "stages"])]
    resume: bool,
    /// Train only this subnet (a JSON `SubnetConfig`) alone, without the sandwich and
    /// distillation: the baseline a subnet of the supernet is compared with. Evaluate it with
    /// `enas4d eval --config`.
    #[arg(long)]
    alone: Option<PathBuf>,
    /// Start from a trained supernet's weights (warm start) instead of random ones.
    #[arg(long, conflicts_with = "resume")]
    init: Option<PathBuf>,
    /// Where it runs.
    #[arg(long, value_enum, default_value_t = super::DeviceChoice::Cpu)]
    device: super::DeviceChoice,
    /// Data: fashion-mnist (built in), idx:DIR, cifar:DIR or folder:DIR[:SIZE].
    #[arg(long, default_value = "fashion-mnist")]
    data: String,
    /// Fit the schedule to this many seconds on this device: a short probe measures the step
    /// time, then every phase is scaled (the scaled config is saved as config.json).
    #[arg(long)]
    time_budget: Option<f64>,
    /// No progress bars (log files only).
    #[arg(long)]
    quiet: bool,
}

/// Runs `enas4d train`.
pub fn run(args: TrainArgs) -> Result<bool, Box<dyn std::error::Error>> {
    let mut config = match &args.config {
        Some(path) => serde_json::from_str::<TrainConfig>(&super::read_text(path)?)
            .map_err(|e| format!("{}: {e}", path.display()))?,
        None => TrainConfig::schedule(&args.schedule, args.stages)?,
    };
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    if let Some(batch) = args.batch {
        config.batch = batch;
    }
    if let Some(path) = &args.alone {
        let subnet = serde_json::from_str(&super::read_text(path)?)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        config.alone = Some(subnet);
    }
    config.validate()?;
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from(format!("runs/{}-s{}", config.preset, config.stages)));
    let (device, device_name) = args.device.burn()?;
    let data = DataSource::parse(&args.data)?.load(true)?;
    let resuming = args.resume && out.join(enas4d::train::CHECKPOINT_FILE).exists();
    if let (Some(secs), false) = (args.time_budget, resuming) {
        let preset = config.preset(data.classes.len())?;
        let (train_part, _) = config.split(&data)?;
        let step = probe_step_time(&config, &preset, &train_part, &device, 3, 5)?;
        let factor = secs / (step * config.total_steps() as f64);
        config = config.scaled(factor);
        eprintln!(
            "train: probe {step:.3} s/step; schedule scaled by {factor:.3} to {} steps",
            config.total_steps()
        );
    }
    if resuming {
        eprintln!(
            "train: resuming the run in {} on {device_name}",
            out.display()
        );
    } else {
        eprintln!(
            "train: {} images, {} classes, {} steps on {device_name}, output {}",
            data.len(),
            data.classes.len(),
            config.total_steps(),
            out.display()
        );
    }
    let summary = train(
        TrainOptions {
            config,
            out_dir: out.clone(),
            resume: args.resume,
            init: args.init,
            device,
            device_name,
            progress: !args.quiet,
        },
        &data,
    )?;
    eprintln!(
        "train: {} steps, {:.0} s of training in all, {:.1} images/s this session",
        summary.steps, summary.elapsed_s, summary.images_per_s
    );
    // The curve is a convenience: a failure to draw it must not fail the run.
    let curve = out.join(enas4d::train::CURVE_FILE);
    match read_run(&out).and_then(|run| {
        let title = format!("training curve: {}", run.name);
        plot_curve(&curve, &title, &[run])
    }) {
        Ok(()) => eprintln!("train: training curve written to {}", curve.display()),
        Err(e) => eprintln!("train: no training curve: {e}"),
    }
    if summary.finished {
        eprintln!(
            "train: supernet written to {}",
            out.join(enas4d::train::SUPERNET_FILE).display()
        );
    }
    Ok(true)
}
