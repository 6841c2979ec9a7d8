//! The `enas4d` command-line tool.

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Args, Parser, Subcommand};
mod commands;
use enas4d::gpu::GpuContext;

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
    /// Inference speed of an exported net on preprocessed inputs (ms/image, GMAC/s).
    Bench(commands::bench::BenchArgs),
    /// Show what an exported net holds: subnet, MACs per exit, operating points, classes.
    Inspect(commands::inspect::InspectArgs),
    /// Write test images of a data set as PNG files.
    Gallery(commands::gallery::GalleryArgs),
}

#[derive(Args)]
struct SelftestArgs {
    #[command(flatten)]
    device: commands::AdapterArgs,
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
    let options = args.device.options(None);
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

/// Without `XDG_RUNTIME_DIR` (a login-less shell, a container, CI) Mesa's Vulkan window-system
/// code prints "XDG_RUNTIME_DIR is invalid or not set" while wgpu lists adapters, although no
/// window is ever opened. Point it at a private folder of our own so that this never reaches
/// the user. Called before any thread starts.
fn quiet_vulkan_loader() {
    let set =
        std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|d| std::path::Path::new(&d).is_dir());
    if set {
        return;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
        // The owner of /proc/self is this process's user; fall back to $USER's name only.
        let uid = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
        let tag = uid.map_or_else(
            || std::env::var("USER").unwrap_or_default(),
            |u| u.to_string(),
        );
        let dir = std::env::temp_dir().join(format!("enas4d-runtime-{tag}"));
        let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
        // Use it only if it is a real folder of ours that nobody else can enter.
        let ours = std::fs::symlink_metadata(&dir).is_ok_and(|m| {
            m.is_dir() && uid.is_none_or(|u| m.uid() == u) && m.permissions().mode() & 0o077 == 0
        });
        if ours {
            std::env::set_var("XDG_RUNTIME_DIR", &dir);
        }
    }
}

fn main() -> ExitCode {
    // burn materializes a resumed optimizer state on its default device before moving it to
    // the parameters' device; left alone that default is the first wgpu adapter, which a CPU
    // run would then start for nothing (or fail to find). The CPU backend is always there.
    // Set before any thread starts.
    if std::env::var_os("BURN_DEVICE").is_none() {
        std::env::set_var("BURN_DEVICE", "flex");
    }
    quiet_vulkan_loader();
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
        Command::Inspect(args) => commands::inspect::run(args),
        Command::Bench(args) => commands::bench::run(args),
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
