//! Writes a model file with random weights of the `tiny` preset's smallest subnet (a valid file of the exported format, for fuzzing
//! seeds and format experiments; its predictions mean nothing).
//!
//! ```text
//! cargo run --release --example sample_model -- OUT.safetensors [STAGES] [SEED]
//! ```
//!
//! With SEED, the subnet is a random one drawn with that seed (kernels, depths, expand ratios,
//! cuts and resolution), weights drawn from it too.

use enas4d::format::ExportedNet;
use enas4d::net::NetWeights;
use enas4d::space::{Plan, Preset, SubnetConfig};
use rand::rngs::SmallRng;
use rand::SeedableRng;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = args
        .next()
        .ok_or("usage: sample_model OUT.safetensors [STAGES] [SEED]")?;
    let stages: usize = args.next().map_or(Ok(3), |s| s.parse())?;
    let seed: Option<u64> = args.next().map(|s| s.parse()).transpose()?;
    let preset = Preset::tiny(stages, 10)?;
    let mut rng = SmallRng::seed_from_u64(seed.unwrap_or(1));
    let config = match seed {
        Some(_) => SubnetConfig::random(&preset, &mut rng),
        None => {
            // The smallest subnet, with stage 2 skipping a block where S > 1 (exercises
            // gating).
            let mut config = SubnetConfig::smallest(&preset);
            if stages > 1 {
                config.depth[1][0] = 2;
                config.depth[0][0] = 3;
            }
            config
        }
    };
    let plan = Plan::new(&preset, &config)?;
    let net = ExportedNet {
        weights: NetWeights::random(&plan, &mut rng),
        thresholds: vec![0.9; stages - 1],
        classes: (0..10).map(|i| format!("class {i}")).collect(),
        preset,
        config,
        operating: Vec::new(),
    };
    net.save(std::path::Path::new(&out))?;
    println!("wrote {out}");
    Ok(())
}
