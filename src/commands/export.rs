//! `enas4d export`: one subnet of a trained supernet, with its thresholds, as a self-contained
//! file for the runtime (DESIGN §6).

use std::path::{Path, PathBuf};

use clap::Args;
use enas4d::data::DataSource;
use enas4d::format::ExportedNet;
use enas4d::runtime::thresholds::pareto;
use enas4d::search::Front;
use enas4d::space::{count, Plan, SubnetConfig};
use enas4d::supernet::extract;
use enas4d::train::{calibrate, checkpoint, exit_records};

/// Arguments of `enas4d export`.
#[derive(Args)]
pub struct ExportArgs {
    /// The trained supernet (default: the shipped multi-stage one).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Also write the net as ONNX graphs: FILE gives every exit's logits, FILE's name with
    /// `.exitK.onnx` those of exits 1…K (DESIGN §6).
    #[arg(long, value_name = "FILE")]
    onnx: Option<PathBuf>,
    /// With --onnx: convert this exported net instead of exporting one from a supernet.
    #[arg(long, requires = "onnx", conflicts_with_all = ["model", "search", "config"])]
    net: Option<PathBuf>,
    /// A search's front.json: export the subnet it chose for --budget.
    #[arg(long, conflicts_with = "config")]
    search: Option<PathBuf>,
    /// With --search: which budget's choice (default: the first).
    #[arg(long, requires = "search", value_parser = super::parse_budget)]
    budget: Option<f64>,
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
    /// Where it runs.
    #[arg(long, value_enum, default_value_t = super::DeviceChoice::Cpu)]
    device: super::DeviceChoice,
}

/// The subnet and validation thresholds a search chose for `budget` (default: its first).
fn from_search(
    path: &Path,
    budget: Option<f64>,
) -> Result<(SubnetConfig, Vec<f32>), Box<dyn std::error::Error>> {
    let front = Front::load(path)?;
    let chosen = front
        .chosen(budget)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((chosen.config.clone(), chosen.val.thresholds.clone()))
}

/// Writes `net`'s ONNX graphs to `path` and says where.
fn write_onnx(net: &ExportedNet, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let written = net.save_onnx(path)?;
    let names: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
    eprintln!(
        "export: ONNX (opset {}) {}",
        enas4d::format::onnx::OPSET,
        names.join(", ")
    );
    Ok(())
}

/// Runs `enas4d export`.
pub fn run(args: ExportArgs) -> Result<bool, Box<dyn std::error::Error>> {
    if let (Some(net), Some(onnx)) = (&args.net, &args.onnx) {
        let exported = ExportedNet::load(net).map_err(|e| format!("{}: {e}", net.display()))?;
        write_onnx(&exported, onnx)?;
        return Ok(true);
    }
    let (device, _) = args.device.burn()?;
    let model = match args.model.clone() {
        Some(m) => m,
        None => super::default_supernet()?,
    };
    let ckpt =
        checkpoint::load(&model, &device).map_err(|e| format!("{}: {e}", model.display()))?;
    let preset = ckpt.header.preset.clone();
    let (config, thresholds) = match (&args.search, &args.config) {
        (Some(s), _) => from_search(s, args.budget)?,
        (None, Some(c)) => {
            let config = SubnetConfig::from_json(&super::read_text(c)?, &preset)?;
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
    if let Some(onnx) = &args.onnx {
        write_onnx(&net, onnx)?;
    }
    Ok(true)
}
