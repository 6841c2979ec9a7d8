//! The `enas4d` command-line tool.

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Args, Parser, Subcommand};
mod commands;
use enas4d::gpu::{GpuContext, GpuOptions};

/// Once-for-all multi-stage CNNs with early exit: WGSL kernels natively and in the browser.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check every kernel against its reference on this machine's GPU (or lavapipe).
    Selftest(SelftestArgs),
    /// Train a supernet (progressive shrinking, sandwich rule, distillation).
    #[cfg(feature = "train")]
    Train(commands::train::TrainArgs),
    /// Accuracy and MACs of every exit of a subnet of a trained supernet.
    #[cfg(feature = "train")]
    Eval(commands::eval::EvalArgs),
    /// Search a supernet for multi-stage nets and thresholds under average-MACs budgets.
    #[cfg(feature = "train")]
    Search(commands::search::SearchArgs),
    /// Plot the training curve of a run (or of runs laid end to end) as SVG.
    #[cfg(feature = "train")]
    Curve(commands::curve::CurveArgs),
    /// Export one subnet with its thresholds as a self-contained model file.
    #[cfg(feature = "train")]
    Export(commands::export::ExportArgs),
    /// Classify images with an exported net, with early exit.
    Infer(commands::infer::InferArgs),
    /// Write test images of a data set as PNG files.
    Gallery(commands::gallery::GalleryArgs),
}

/// Adapter choice shared by the GPU commands.
#[derive(Args)]
struct DeviceArgs {
    /// Backends to consider: vulkan, metal, dx12, gl (comma list). Default: $WGPU_BACKEND or all.
    #[arg(long)]
    backend: Option<String>,
    /// Force the adapter whose name contains this (e.g. llvmpipe). Default: $ENAS4D_ADAPTER or
    /// the best one (discrete > integrated > virtual > CPU).
    #[arg(long)]
    adapter: Option<String>,
}

#[derive(Args)]
struct SelftestArgs {
    #[command(flatten)]
    device: DeviceArgs,
    /// Seed of the random inputs (default: fresh each run; printed to reproduce).
    #[arg(long)]
    seed: Option<u64>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

fn fresh_seed() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn selftest(args: SelftestArgs) -> Result<bool, Box<dyn std::error::Error>> {
    let options = GpuOptions {
        backends: args.device.backend,
        adapter: args.device.adapter,
    };
    let ctx = pollster::block_on(GpuContext::new(&options))?;
    let seed = args.seed.unwrap_or_else(fresh_seed);
    let report = pollster::block_on(enas4d::selftest::run(&ctx, seed))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", enas4d::selftest::format_report(&report));
    }
    Ok(report.passed)
}

fn main() -> ExitCode {
    // burn materializes a resumed optimizer state on its default device before moving it to
    // the parameters' device; left alone that default is the first wgpu adapter, which a CPU
    // run would then start for nothing (or fail to find). The CPU backend is always there.
    // Set before any thread starts.
    if std::env::var_os("BURN_DEVICE").is_none() {
        std::env::set_var("BURN_DEVICE", "flex");
    }
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Selftest(args) => selftest(args),
        #[cfg(feature = "train")]
        Command::Train(args) => commands::train::run(args),
        #[cfg(feature = "train")]
        Command::Eval(args) => commands::eval::run(args),
        #[cfg(feature = "train")]
        Command::Search(args) => commands::search::run(args),
        #[cfg(feature = "train")]
        Command::Curve(args) => commands::curve::run(args),
        #[cfg(feature = "train")]
        Command::Export(args) => commands::export::run(args),
        Command::Infer(args) => commands::infer::run(args),
        Command::Gallery(args) => commands::gallery::run(args),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
