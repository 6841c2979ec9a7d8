//! `enas4d eval`: accuracy and MACs of every exit of one subnet of a trained supernet.

use std::path::PathBuf;

use clap::Args;
use enas4d::data::DataSource;
use enas4d::space::{count, Plan, SubnetConfig};
use enas4d::train::{calibrate, checkpoint, exit_accuracies, exit_records};
use serde::Serialize;

/// Arguments of `enas4d eval`.
#[derive(Args)]
pub struct EvalArgs {
    /// Trained supernet or checkpoint (default: the shipped multi-stage supernet).
    #[arg(long)]
    model: Option<PathBuf>,
    /// The subnet as a JSON file (see `SubnetConfig`); default --largest.
    #[arg(long, conflicts_with_all = ["largest", "smallest"])]
    config: Option<PathBuf>,
    /// The largest subnet.
    #[arg(long)]
    largest: bool,
    /// The smallest subnet.
    #[arg(long, conflicts_with = "largest")]
    smallest: bool,
    /// `val` (held out from training with the run's split seed) or `test`.
    #[arg(long, default_value = "val")]
    split: String,
    /// Data: fashion-mnist (built in), idx:DIR, cifar:DIR or folder:DIR[:SIZE].
    #[arg(long, default_value = "fashion-mnist")]
    data: String,
    /// Where it runs.
    #[arg(long, value_enum, default_value_t = super::DeviceChoice::Cpu)]
    device: super::DeviceChoice,
    /// Print JSON: {"exits": [{"accuracy", "cum_macs"}, …], …}.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct ExitReport {
    accuracy: f64,
    cum_macs: u64,
}

#[derive(Serialize)]
struct Report {
    model: String,
    split: String,
    images: usize,
    config: SubnetConfig,
    exits: Vec<ExitReport>,
}

/// Runs `enas4d eval`.
pub fn run(args: EvalArgs) -> Result<bool, Box<dyn std::error::Error>> {
    let model = match args.model {
        Some(m) => m,
        None => super::default_supernet()?,
    };
    if !model.exists() {
        return Err(format!(
            "{}: no such model (train one with `enas4d train`)",
            model.display()
        )
        .into());
    }
    let (device, _) = args.device.burn()?;
    let ckpt = checkpoint::load(&model, &device)?;
    let header = &ckpt.header;
    let preset = header.preset.clone();
    let config = match (&args.config, args.smallest) {
        (Some(path), _) => SubnetConfig::from_json(&super::read_text(path)?, &preset)?,
        (None, true) => SubnetConfig::smallest(&preset),
        (None, false) => SubnetConfig::largest(&preset),
    };
    let source = DataSource::parse(&args.data)?;
    let train_all = source.load(true)?;
    if train_all.classes != header.classes {
        return Err("the data's classes differ from the model's".into());
    }
    let (train, val) = header.config.split(&train_all)?;
    let data = match args.split.as_str() {
        "val" => val,
        "test" => source.load(false)?,
        other => return Err(format!("--split {other}: expected val or test").into()),
    };
    let plan = Plan::new(&preset, &config)?;
    let stats = calibrate(&ckpt.net, &plan, &train, header.config.bn_images, &device)?;
    let records = exit_records(&ckpt.net, &plan, &stats, &data, &device)?;
    let cost = count(&preset, &config)?;
    let report = Report {
        model: model.display().to_string(),
        split: args.split.clone(),
        images: data.len(),
        exits: exit_accuracies(&records)
            .into_iter()
            .zip(cost.cum_macs.iter())
            .map(|(accuracy, &cum_macs)| ExitReport { accuracy, cum_macs })
            .collect(),
        config,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{} on {} ({} images)",
            report.model, report.split, report.images
        );
        println!("exit  accuracy  cum MACs");
        for (s, e) in report.exits.iter().enumerate() {
            println!(
                "{:>4}  {:>7.2}%  {:>7.3} M",
                s + 1,
                e.accuracy * 100.0,
                e.cum_macs as f64 / 1e6
            );
        }
    }
    Ok(true)
}
