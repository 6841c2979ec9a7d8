//! `enas4d inspect`: what an exported net holds — preset, subnet, stages, MACs and parameters
//! per exit, thresholds, operating points, classes — without running it.

use std::path::PathBuf;

use clap::Args;
use enas4d::format::{ExportedNet, FORMAT_VERSION};
use enas4d::runtime::thresholds::Operating;
use enas4d::space::{count, Preset, SubnetConfig};
use serde::Serialize;

/// Arguments of `enas4d inspect`.
#[derive(Args)]
pub struct InspectArgs {
    /// An exported net (`.safetensors`, written by `enas4d export`).
    model: PathBuf,
    /// Print one JSON object instead of the summary.
    #[arg(long)]
    json: bool,
}

/// What `inspect --json` prints (every key, nested ones included, in camelCase).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Inspection<'a> {
    file: String,
    format_version: u32,
    preset: &'a Preset,
    config: &'a SubnetConfig,
    stages: usize,
    resolution: u32,
    classes: &'a [String],
    cum_macs: Vec<u64>,
    params: Vec<u64>,
    thresholds: &'a [f32],
    operating_points: &'a [Operating],
}

/// Operating points shown in the summary (spread over the whole curve).
const SHOWN: usize = 12;

/// Runs `enas4d inspect`.
pub fn run(args: InspectArgs) -> Result<bool, Box<dyn std::error::Error>> {
    let net =
        ExportedNet::load(&args.model).map_err(|e| format!("{}: {e}", args.model.display()))?;
    let cost = count(&net.preset, &net.config)?;
    let info = Inspection {
        file: args.model.display().to_string(),
        format_version: FORMAT_VERSION,
        preset: &net.preset,
        config: &net.config,
        stages: net.stages(),
        resolution: net.config.resolution,
        classes: &net.classes,
        cum_macs: cost.cum_macs.clone(),
        params: cost.params.clone(),
        thresholds: &net.thresholds,
        operating_points: &net.operating,
    };
    if args.json {
        let value = enas4d::camel::camel_keys(serde_json::to_value(&info)?);
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(true);
    }
    let m = |v: f64| format!("{:.2}M", v / 1e6);
    let list = |v: &[String]| v.join(" / ");
    println!(
        "{}: enas4d exported net, format version {FORMAT_VERSION}",
        info.file
    );
    println!(
        "preset {} with {} stages, input {}×{} px, {} classes: {}",
        net.preset.name,
        info.stages,
        info.resolution,
        info.resolution,
        net.classes.len(),
        net.classes.join(", ")
    );
    println!("stage cuts p = {:?}", net.config.p);
    if let Some(p_mid) = &net.config.p_mid {
        println!("middle-axis cuts p_mid = {p_mid:?}");
    }
    for (s, (k, d)) in net.config.kernel.iter().zip(&net.config.depth).enumerate() {
        println!("stage {}: depth per unit {d:?}, kernels {k:?}", s + 1);
    }
    println!("expand ratios {:?}", net.config.expand);
    println!(
        "MACs to each exit: {}",
        list(
            &cost
                .cum_macs
                .iter()
                .map(|&v| m(v as f64))
                .collect::<Vec<_>>()
        )
    );
    println!(
        "parameters per stage: {} ({} in all)",
        list(
            &cost
                .params
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
        ),
        cost.total_params()
    );
    println!("thresholds: {:?}", net.thresholds);
    if net.operating.is_empty() {
        println!("operating points: none stored");
        return Ok(true);
    }
    println!(
        "operating points (validation; {} stored, {} shown):",
        net.operating.len(),
        net.operating.len().min(SHOWN)
    );
    println!(
        "  {:>9} {:>9}  {:<18} thresholds",
        "accuracy", "avg MACs", "exit shares"
    );
    let n = net.operating.len();
    let shown: Vec<usize> = if n <= SHOWN {
        (0..n).collect()
    } else {
        (0..SHOWN).map(|i| i * (n - 1) / (SHOWN - 1)).collect()
    };
    for i in shown {
        let p = &net.operating[i];
        let shares: Vec<String> = p
            .exit_shares
            .iter()
            .map(|x| format!("{:.0}%", x * 100.0))
            .collect();
        println!(
            "  {:>8.2}% {:>9}  {:<18} {:?}",
            p.accuracy * 100.0,
            m(p.avg_macs),
            shares.join("/"),
            p.thresholds
        );
    }
    Ok(true)
}
