//! `enas4d infer`: classify images with an exported net, stage by stage with early exit.

use std::path::{Path, PathBuf};

use clap::Args;
use enas4d::format::ExportedNet;
use enas4d::runtime::thresholds::ThresholdChoice;
use enas4d::runtime::{preprocess, Classification};
use serde::Serialize;

use super::engine::Engine;

/// Arguments of `enas4d infer`.
#[derive(Args)]
pub struct InferArgs {
    /// PNG or JPEG images, any size and colour type.
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// Exported net (default: the shipped multi-stage net).
    #[arg(long)]
    model: Option<PathBuf>,
    /// One threshold for every early exit, in [0, 1] (0 = always exit 1, 1 = never exit
    /// early).
    #[arg(long, conflicts_with_all = ["budget", "thresholds"], value_parser = parse_threshold)]
    threshold: Option<f32>,
    /// One threshold per early exit, τ_1,…,τ_{S−1}, each in [0, 1].
    #[arg(long, conflicts_with = "budget", value_delimiter = ',', value_parser = parse_threshold)]
    thresholds: Vec<f32>,
    /// Average MACs budget, e.g. 3M: picks the model's best operating point within it.
    #[arg(long, value_parser = super::parse_budget)]
    budget: Option<f64>,
    /// Where the net runs: `cpu` (plain Rust on the cores) or a wgpu adapter (`gpu` = the
    /// best one; `discrete`, `integrated`, `lavapipe`), which runs the WGSL kernels.
    #[arg(long, value_enum, default_value_t = super::DeviceChoice::Cpu)]
    device: super::DeviceChoice,
    #[command(flatten)]
    adapter: super::AdapterArgs,
    /// One JSON object per image.
    #[arg(long)]
    json: bool,
}

/// Images classified per batch: results are printed after each, so a long list streams.
const CHUNK: usize = 64;

/// An image that could not be classified, in the output stream.
#[derive(Serialize)]
struct FailedJson {
    file: String,
    error: String,
}

/// An image's result in the output stream: its file and the library's result type.
#[derive(Serialize)]
struct ImageJson {
    file: String,
    #[serde(flatten)]
    result: Classification,
}

/// A threshold: a number in [0, 1].
pub fn parse_threshold(s: &str) -> Result<f32, String> {
    match s.trim().parse::<f32>() {
        Ok(t) if (0.0..=1.0).contains(&t) => Ok(t),
        _ => Err(format!(
            "'{s}' is not a confidence threshold (a number from 0 to 1)"
        )),
    }
}

/// The thresholds to use: `--threshold`, `--thresholds`, the budget's operating point, or
/// the model's own.
fn threshold_choice(args: &InferArgs) -> ThresholdChoice {
    match (args.threshold, args.thresholds.is_empty(), args.budget) {
        (Some(t), _, _) => ThresholdChoice::Uniform(t),
        (None, false, _) => ThresholdChoice::PerExit(args.thresholds.clone()),
        (None, true, Some(b)) => ThresholdChoice::Budget(b),
        (None, true, None) => ThresholdChoice::Default,
    }
}

fn load_image(path: &Path, resolution: usize) -> Result<Vec<f32>, Box<dyn std::error::Error>> {
    let img = enas4d::data::decode_image(path)?;
    let rgb = img.to_rgb8();
    let (w, h) = rgb.dimensions();
    Ok(
        preprocess(rgb.as_raw(), w as usize, h as usize, 3, resolution)
            .map_err(|e| format!("{}: {e}", path.display()))?,
    )
}

/// Runs `enas4d infer`: images are decoded and classified in chunks of [`CHUNK`], each
/// chunk's results printed in input order as soon as it is done; an image that cannot be
/// read is reported in its place (`{"file", "error"}` with `--json`) and the others go on.
/// Returns `false` (exit status 1) when any image failed.
pub fn run(args: InferArgs) -> Result<bool, Box<dyn std::error::Error>> {
    let model = match args.model.clone() {
        Some(m) => m,
        None => super::shipped(super::DEFAULT_MODEL)?,
    };
    let net = ExportedNet::load(&model).map_err(|e| format!("{}: {e}", model.display()))?;
    let thresholds = net.thresholds_for(&threshold_choice(&args))?;
    let full_macs = enas4d::space::count(&net.preset, &net.config)?
        .cum_macs
        .last()
        .copied()
        .unwrap_or(0);
    let resolution = net.config.resolution as usize;
    // Every image leaves at its own exit: spread over the cores on the CPU, each stage on the
    // images still inside on the GPU.
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let runtime = Engine::open(&net, args.device, &args.adapter, cores)?;
    let mut failed = 0usize;
    for chunk in args.images.chunks(CHUNK) {
        let mut inputs = Vec::with_capacity(chunk.len());
        let loaded: Vec<Result<(), String>> = chunk
            .iter()
            .map(|p| match load_image(p, resolution) {
                Ok(x) => {
                    inputs.push(x);
                    Ok(())
                }
                Err(e) => Err(e.to_string()),
            })
            .collect();
        let mut decisions = if inputs.is_empty() {
            Vec::new()
        } else {
            runtime.classify(&inputs, &thresholds)?
        }
        .into_iter();
        for (path, input) in chunk.iter().zip(loaded) {
            let file = path.display().to_string();
            let d = match input {
                Err(error) => {
                    failed += 1;
                    if args.json {
                        println!("{}", serde_json::to_string(&FailedJson { file, error })?);
                    } else {
                        println!("error: {error}");
                    }
                    continue;
                }
                Ok(_) => decisions
                    .next()
                    .ok_or("the runtime returned too few decisions")?,
            };
            if args.json {
                let j = ImageJson {
                    file,
                    result: Classification::new(&d, |i| net.label(i), full_macs),
                };
                println!("{}", serde_json::to_string(&j)?);
            } else {
                println!(
                    "{file}: {} ({:.1}%), exit {} of {}, {:.2} M MACs",
                    net.label(d.class_index),
                    d.confidence * 100.0,
                    d.exit,
                    net.stages(),
                    d.macs as f64 / 1e6
                );
            }
        }
    }
    if failed > 0 {
        eprintln!(
            "infer: {failed} of {} images could not be classified",
            args.images.len()
        );
    }
    Ok(failed == 0)
}
