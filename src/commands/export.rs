//! `enas4d export`: one subnet of a trained supernet, with its thresholds, as a self-contained
//! file for the runtime (DESIGN §6).

use std::path::PathBuf;

use clap::Args;
use enas4d::data::DataSource;
use enas4d::format::ExportedNet;
use enas4d::runtime::thresholds::pareto;
use enas4d::space::{count, Plan, SubnetConfig};
use enas4d::supernet::extract;
use enas4d::train::{calibrate, checkpoint, exit_records, parse_device};

use super::infer::parse_macs;

/// Arguments of `enas4d export`.
#[derive(Args)]
pub struct ExportArgs {
    /// The trained supernet (default: the shipped multi-stage one).
    #[arg(long)]
    model: Option<PathBuf>,
    /// A search's front.json: export the subnet it chose for --budget.
    #[arg(long, conflicts_with = "config")]
    search: Option<PathBuf>,
    /// With --search: which budget's choice (default: the first).
    #[arg(long, requires = "search")]
    budget: Option<String>,
    /// A subnet config JSON (instead of --search).
    #[arg(long)]
    config: Option<PathBuf>,
    /// With --config: thresholds τ_1,…,τ_{S−1} (default 0.9 each).
    #[arg(long, requires = "config", value_delimiter = ',')]
    thresholds: Vec<f32>,
    /// Output file.
    #[arg(long, default_value = "net.safetensors")]
    out: PathBuf,
    /// Validation images for the operating points stored in the file.
    #[arg(long, default_value_t = 2000)]
    val_images: usize,
    /// Data: fashion-mnist (built in), idx:DIR, cifar:DIR or folder:DIR[:SIZE].
    #[arg(long, default_value = "fashion-mnist")]
    data: String,
    /// cpu, gpu, discrete, integrated or lavapipe.
    #[arg(long, default_value = "cpu")]
    device: String,
}

fn from_search(
    path: &PathBuf,
    budget: Option<&str>,
) -> Result<(SubnetConfig, Vec<f32>), Box<dyn std::error::Error>> {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path)?)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let budgets = v["budgets"]
        .as_array()
        .ok_or_else(|| format!("{}: no budgets", path.display()))?;
    let want = budget.map(parse_macs).transpose()?;
    let chosen = budgets
        .iter()
        .find(|b| {
            want.is_none_or(|w| (b["budget"].as_f64().unwrap_or(f64::NAN) - w).abs() <= w * 1e-6)
        })
        .ok_or_else(|| {
            let have: Vec<String> = budgets
                .iter()
                .filter_map(|b| b["budget"].as_f64())
                .map(|b| format!("{}M", b / 1e6))
                .collect();
            format!(
                "{}: no result for that budget (the search has: {})",
                path.display(),
                have.join(", ")
            )
        })?;
    let ms = &chosen["multi_stage"];
    if ms.is_null() {
        return Err(format!(
            "{}: the search found nothing within that budget",
            path.display()
        )
        .into());
    }
    let config: SubnetConfig = serde_json::from_value(ms["config"].clone())?;
    let thresholds: Vec<f32> = serde_json::from_value(ms["val"]["thresholds"].clone())?;
    Ok((config, thresholds))
}

/// Runs `enas4d export`.
pub fn run(args: ExportArgs) -> Result<bool, Box<dyn std::error::Error>> {
    let (device, _) = parse_device(&args.device)?;
    let model = args.model.clone().unwrap_or_else(super::default_supernet);
    let ckpt =
        checkpoint::load(&model, &device).map_err(|e| format!("{}: {e}", model.display()))?;
    let preset = ckpt.header.preset.clone();
    let (config, thresholds) = match (&args.search, &args.config) {
        (Some(s), _) => from_search(s, args.budget.as_deref())?,
        (None, Some(c)) => {
            let config = SubnetConfig::from_json(&std::fs::read_to_string(c)?, &preset)?;
            let t = if args.thresholds.is_empty() {
                vec![0.9; preset.stages - 1]
            } else {
                args.thresholds.clone()
            };
            (config, t)
        }
        (None, None) => return Err("pass --search FRONT.json or --config SUBNET.json".into()),
    };
    config.validate(&preset)?;
    let all = DataSource::parse(&args.data)?.load(true)?;
    if all.classes != ckpt.header.classes {
        return Err("the data's classes differ from the model's".into());
    }
    let (train, val) = ckpt.header.config.split(&all)?;
    let val = val.subset(&(0..args.val_images.min(val.len())).collect::<Vec<_>>());
    let plan = Plan::new(&preset, &config)?;
    let stats = calibrate(
        &ckpt.net,
        &plan,
        &train,
        ckpt.header.config.bn_images,
        &device,
    )?;
    let weights = extract(&ckpt.net, &plan, &stats)?;
    let records = exit_records(&ckpt.net, &plan, &stats, &val, &device)?;
    let cum = count(&preset, &config)?.cum_macs;
    let net = ExportedNet {
        preset,
        config,
        thresholds,
        classes: ckpt.header.classes.clone(),
        weights,
        operating: pareto(&records, &cum)?,
    };
    net.save(&args.out)?;
    eprintln!(
        "export: {} ({} operating points, exits at {} MACs)",
        args.out.display(),
        net.operating.len(),
        cum.iter()
            .map(|m| format!("{:.2}M", *m as f64 / 1e6))
            .collect::<Vec<_>>()
            .join(" / ")
    );
    Ok(true)
}
