//! `enas4d infer`: classify images with an exported net, stage by stage with early exit.

use std::path::PathBuf;

use clap::Args;
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
    /// One threshold for every early exit (0 = always exit 1, 1 = never exit early).
    #[arg(long, conflicts_with = "budget")]
    threshold: Option<f32>,
    /// Average MACs budget, e.g. 3M: picks the model's best operating point within it.
    #[arg(long)]
    budget: Option<String>,
    /// cpu (plain Rust) or gpu (WGSL kernels through wgpu).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// One JSON object per image.
    #[arg(long)]
    json: bool,
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

fn load_image(path: &PathBuf, resolution: usize) -> Result<Vec<f32>, Box<dyn std::error::Error>> {
    let img = image::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let rgb = img.to_rgb8();
    let (w, h) = rgb.dimensions();
    Ok(
        preprocess(rgb.as_raw(), w as usize, h as usize, 3, resolution)
            .map_err(|e| format!("{}: {e}", path.display()))?,
    )
}

/// Runs `enas4d infer`.
pub fn run(args: InferArgs) -> Result<bool, Box<dyn std::error::Error>> {
    let model = args
        .model
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_MODEL));
    let net = ExportedNet::load(&model).map_err(|e| format!("{}: {e}", model.display()))?;
    let thresholds = thresholds(&args, &net)?;
    let resolution = net.config.resolution as usize;
    let inputs = args
        .images
        .iter()
        .map(|p| load_image(p, resolution))
        .collect::<Result<Vec<_>, _>>()?;
    let decisions: Vec<Decision> = match args.device.as_str() {
        "cpu" => {
            // Every image leaves at its own exit; the images are spread over the cores.
            let rt = StageWiseCpu::new(&net.preset, &net.config, net.weights.clone())?;
            rt.classify_batch(&inputs, &thresholds)?
        }
        "gpu" => {
            let ctx = pollster::block_on(GpuContext::new(&GpuOptions::default()))?;
            let rt = StageWiseGpu::new(&ctx, &net.preset, &net.config, &net.weights)?;
            // One batch; each stage runs only on the images still inside.
            pollster::block_on(rt.classify_batch(&ctx, &inputs, &thresholds))?
        }
        other => return Err(format!("--device {other}: expected cpu or gpu").into()),
    };
    for (path, d) in args.images.iter().zip(decisions) {
        let label = |i: usize| net.classes.get(i).cloned().unwrap_or_else(|| i.to_string());
        if args.json {
            let j = ImageJson {
                file: path.display().to_string(),
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
                "{}: {} ({:.1}%), exit {} of {}, {:.2} M MACs",
                path.display(),
                label(d.class_index),
                d.confidence * 100.0,
                d.exit,
                net.config.p.len() + 1,
                d.macs as f64 / 1e6
            );
        }
    }
    Ok(true)
}
