//! `enas4d infer`: classify images with an exported net, stage by stage with early exit.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use enas4d::format::ExportedNet;
use enas4d::gpu::{GpuContext, GpuOptions};
use enas4d::runtime::{preprocess, Decision, StageWiseCpu, StageWiseGpu};
use serde::Serialize;

/// The shipped exported multi-stage net, relative to the repository root.
pub const DEFAULT_MODEL: &str = "models/tiny-s3/net.safetensors";

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
    #[arg(long, conflicts_with = "budget", value_parser = parse_threshold)]
    threshold: Option<f32>,
    /// Average MACs budget, e.g. 3M: picks the model's best operating point within it.
    #[arg(long)]
    budget: Option<String>,
    /// Where the net runs.
    #[arg(long, value_enum, default_value_t = InferDevice::Cpu)]
    device: InferDevice,
    /// One JSON object per image.
    #[arg(long)]
    json: bool,
}

/// Where `infer` runs the net.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum InferDevice {
    /// Plain Rust on the CPU cores.
    Cpu,
    /// The WGSL kernels through wgpu (Vulkan, Metal or DX12).
    Gpu,
}

/// Images classified per batch: results are printed after each, so a long list streams.
const CHUNK: usize = 64;

/// An image that could not be classified, in the output stream.
#[derive(Serialize)]
struct FailedJson {
    file: String,
    error: String,
}

#[derive(Serialize)]
struct ExitJson {
    confidence: f32,
    label: String,
}

#[derive(Serialize)]
struct ImageJson {
    file: String,
    label: String,
    class_index: usize,
    confidence: f32,
    exit: usize,
    macs: u64,
    per_exit: Vec<ExitJson>,
}

/// A threshold: a number in [0, 1].
fn parse_threshold(s: &str) -> Result<f32, String> {
    match s.trim().parse::<f32>() {
        Ok(t) if (0.0..=1.0).contains(&t) => Ok(t),
        _ => Err(format!(
            "'{s}' is not a confidence threshold (a number from 0 to 1)"
        )),
    }
}

/// Parses `3M`, `2.5e6`, `900k`.
pub fn parse_macs(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let (num, mul) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 1e3),
        Some('m' | 'M') => (&t[..t.len() - 1], 1e6),
        Some('g' | 'G') => (&t[..t.len() - 1], 1e9),
        _ => (t, 1.0),
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a number of MACs (e.g. 3M, 900k)"))?;
    if !(v.is_finite() && v > 0.0) {
        return Err(format!("'{s}': the budget must be > 0"));
    }
    Ok(v * mul)
}

/// The thresholds to use: the flag, the budget's operating point, or the model's own.
fn thresholds(args: &InferArgs, net: &ExportedNet) -> Result<Vec<f32>, Box<dyn std::error::Error>> {
    let s = net.config.p.len() + 1;
    if let Some(t) = args.threshold {
        return Ok(vec![t; s - 1]);
    }
    if let Some(b) = &args.budget {
        let budget = parse_macs(b)?;
        let best = net
            .operating
            .iter()
            .filter(|p| p.avg_macs <= budget)
            .max_by(|a, b| a.accuracy.total_cmp(&b.accuracy))
            .ok_or_else(|| {
                let cheapest = net.operating.iter().map(|p| p.avg_macs).fold(f64::INFINITY, f64::min);
                format!("no operating point of this model within {budget:.0} MACs (cheapest: {cheapest:.0})")
            })?;
        return Ok(best.thresholds.clone());
    }
    Ok(net.thresholds.clone())
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

/// The runtime of `--device`.
enum Runtime {
    Cpu(Box<StageWiseCpu>),
    Gpu(Box<(GpuContext, StageWiseGpu)>),
}

impl Runtime {
    fn classify(
        &self,
        inputs: &[Vec<f32>],
        thresholds: &[f32],
    ) -> Result<Vec<Decision>, Box<dyn std::error::Error>> {
        Ok(match self {
            // Every image leaves at its own exit; the images are spread over the cores.
            Runtime::Cpu(rt) => rt.classify_batch(inputs, thresholds)?,
            // One batch; each stage runs only on the images still inside.
            Runtime::Gpu(gpu) => {
                let (ctx, rt) = gpu.as_ref();
                pollster::block_on(rt.classify_batch(ctx, inputs, thresholds))?
            }
        })
    }
}

/// Runs `enas4d infer`: images are decoded and classified in chunks of [`CHUNK`], each
/// chunk's results printed in input order as soon as it is done; an image that cannot be
/// read is reported in its place (`{"file", "error"}` with `--json`) and the others go on.
/// Returns `false` (exit status 1) when any image failed.
pub fn run(args: InferArgs) -> Result<bool, Box<dyn std::error::Error>> {
    let model = args
        .model
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_MODEL));
    let net = ExportedNet::load(&model).map_err(|e| format!("{}: {e}", model.display()))?;
    let thresholds = thresholds(&args, &net)?;
    let resolution = net.config.resolution as usize;
    let runtime = match args.device {
        InferDevice::Cpu => Runtime::Cpu(Box::new(StageWiseCpu::new(
            &net.preset,
            &net.config,
            net.weights.clone(),
        )?)),
        InferDevice::Gpu => {
            let ctx = pollster::block_on(GpuContext::new(&GpuOptions::default()))?;
            let rt = StageWiseGpu::new(&ctx, &net.preset, &net.config, &net.weights)?;
            Runtime::Gpu(Box::new((ctx, rt)))
        }
    };
    let label = |i: usize| net.classes.get(i).cloned().unwrap_or_else(|| i.to_string());
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
                    label: label(d.class_index),
                    class_index: d.class_index,
                    confidence: d.confidence,
                    exit: d.exit,
                    macs: d.macs,
                    per_exit: d
                        .per_exit
                        .iter()
                        .map(|e| ExitJson {
                            confidence: e.confidence,
                            label: label(e.class_index),
                        })
                        .collect(),
                };
                println!("{}", serde_json::to_string(&j)?);
            } else {
                println!(
                    "{file}: {} ({:.1}%), exit {} of {}, {:.2} M MACs",
                    label(d.class_index),
                    d.confidence * 100.0,
                    d.exit,
                    net.config.p.len() + 1,
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
