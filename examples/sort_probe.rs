//! What sorting a trained supernet's channels again does to its subnets: the largest subnet,
//! the smallest and the largest at the smallest stage cuts, each as it is, after a sort across
//! the whole channel axis (what every warm start into the expand phase once did), and after the
//! stage-wise sort (`sort_channels`). Validation split, BN re-estimated per subnet, every exit.
//!
//!   cargo run --release --example sort_probe -- models/tiny-s3/supernet.bin [IMAGES]

use enas4d::data::DataSource;
use enas4d::space::{Plan, Preset, SubnetConfig};
use enas4d::supernet::sort_channels;
use enas4d::train::{calibrate, checkpoint, exit_accuracies, exit_records, parse_device};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: sort_probe SUPERNET [IMAGES]")?;
    let images: usize = args.next().map_or(Ok(2000), |n| n.parse())?;
    let (device, _) = parse_device("cpu")?;
    let ckpt = checkpoint::load(std::path::Path::new(&path), &device)?;
    let all = DataSource::parse("fashion-mnist")?.load(true)?;
    let (train, val) = ckpt.header.config.split(&all)?;
    let val = val.subset(&(0..images.min(val.len())).collect::<Vec<_>>());
    let preset = ckpt.header.preset.clone();
    // One stage over the whole axis: the sort that ignores stage cuts.
    let flat = Preset::by_name(&ckpt.header.config.preset, 1, preset.classes)?;
    let nets = [
        ("as trained", ckpt.net.clone()),
        (
            "sorted across stages",
            sort_channels(ckpt.net.clone(), &flat)?,
        ),
        (
            "sorted within stages",
            sort_channels(ckpt.net.clone(), &preset)?,
        ),
    ];
    let mut configs = vec![
        ("largest", SubnetConfig::largest(&preset)),
        ("smallest", SubnetConfig::smallest(&preset)),
    ];
    if let Some(c) = SubnetConfig::largest_per_cuts(&preset).into_iter().next() {
        configs.push(("largest, smallest cuts", c));
    }
    println!(
        "| subnet | weights | accuracy per exit ({} validation images) |",
        val.len()
    );
    println!("| --- | --- | --- |");
    for (name, config) in &configs {
        let plan = Plan::new(&preset, config)?;
        for (label, net) in &nets {
            let stats = calibrate(net, &plan, &train, ckpt.header.config.bn_images, &device)?;
            let acc = exit_accuracies(&exit_records(net, &plan, &stats, &val, &device)?);
            let acc: Vec<String> = acc.iter().map(|a| format!("{:.2} %", a * 100.0)).collect();
            println!("| {name} | {label} | {} |", acc.join(" / "));
        }
    }
    Ok(())
}
