//! `enas4d curve`: the training curve of one run, or of a warm-started history of runs laid end
//! to end, as an SVG.

use std::path::PathBuf;

use clap::Args;
use enas4d::train::curve::{plot_curve, read_run};

/// Arguments of `enas4d curve`.
#[derive(Args)]
pub struct CurveArgs {
    /// Run folders (each with config.json, log.csv, eval.jsonl), oldest first.
    #[arg(required = true)]
    runs: Vec<PathBuf>,
    /// Output SVG.
    #[arg(long, default_value = "curve.svg")]
    out: PathBuf,
    /// Title of the plot (default: the last run's folder).
    #[arg(long)]
    title: Option<String>,
}

/// Runs `enas4d curve`.
pub fn run(args: CurveArgs) -> Result<bool, Box<dyn std::error::Error>> {
    let runs = args
        .runs
        .iter()
        .map(|dir| read_run(dir))
        .collect::<Result<Vec<_>, _>>()?;
    let title = args.title.unwrap_or_else(|| {
        let last = runs.last().map_or("", |r| r.name.as_str());
        format!("training curve: {last}")
    });
    plot_curve(&args.out, &title, &runs)?;
    let images: usize = runs.iter().map(|r| r.images()).sum();
    eprintln!(
        "curve: {} run(s), {images} images, written to {}",
        runs.len(),
        args.out.display()
    );
    Ok(true)
}
