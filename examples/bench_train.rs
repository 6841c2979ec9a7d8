//! Training step time of single `tiny` subnets (S = 3): forward (all exits), multi-exit loss,
//! backward and an AdamW step, on a burn device — the cost the training schedule is made of.
//!
//!   cargo run --release --example bench_train -- [--device cpu|gpu|lavapipe] [--batch 64] [--steps 5]
//!     [--ops custom,composed,pytorch] [--python python3] [--torch-device cpu|cuda]
//!     [--subnets largest,random,smallest] [--profile]
//!
//! Each subnet runs twice: with the elastic convolutions (and, on the CPU, the batch norms) as
//! this crate's custom ops (`enas4d::elastic`, the training path, with the trainer's fused AdamW)
//! and as compositions of plain burn ops (the reference, with burn's AdamW), so the table shows
//! what the custom ops buy. The burn rows also split a step into forward + loss, backward and
//! the AdamW update.
//!
//! GFLOP/s counts 6 × the stage-wise MACs (forward + backward) per image; the composed pass
//! computes more (the zero blocks of the masks), so this is the rate that matters to a user.
//!
//! `--profile` counts, over the timed steps of each burn row, the kernel launches of each
//! phase (every launch cubecl issues: burn's own kernels, this crate's WGSL kernels, copies),
//! with the most frequent kernels, and the host waits and transfers the step itself issues:
//! the image and target uploads, the loss read the trainer makes every step, and the three
//! device syncs this benchmark adds to time the phases (the loss read only with `--profile`, so
//! the timings stay comparable with runs before it). On the CPU backend nothing is launched
//! through cubecl, so it counts only there it runs on a wgpu device (lavapipe counts the same
//! launches a GPU gets).
//!
//! The `pytorch` rows run the same layers, masks and step in PyTorch on `--torch-device`
//! (default its CPU backend; `cuda` beside a GPU run) through `examples/torch_train_step.py`,
//! given the subnet's `Plan` as JSON, written the way a PyTorch user would: masked dense 1×1
//! convs, so it too computes the zero blocks. Before
//! timing, the port loads the shipped supernet's weights for the subnet and must reproduce this
//! crate's logits of every exit on random images (relative error ≤ [`TORCH_BOUND`]), so the
//! rows compare the same computation. They need `--python` (default `python3`) to import
//! `torch`; without it the table says so and goes on.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use burn::cubecl::logging::{LaunchObservation, LaunchObserver};

use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::{Tensor, TensorData};
use enas4d::space::{count, LayerKind, Plan, Preset, SubnetConfig};
use enas4d::supernet::{forward, BnMode, MaskCache, PassOptions, Supernet};
use enas4d::train::{
    checkpoint, multi_exit_loss, parse_device, smoothed_targets, FusedAdamW, LossWeights,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Largest relative logit error (to the largest |logit|) allowed between the PyTorch port and
/// this crate: both f32, through ~60 layers with batch statistics.
const TORCH_BOUND: f64 = 1e-3;

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

/// The phases of a training step.
const PHASES: [&str; 3] = ["forward + loss", "backward", "optimizer"];

/// Kernel launches per phase and kernel name, counted while installed.
#[derive(Default)]
struct PhaseLaunches {
    phase: AtomicUsize,
    counts: Mutex<[BTreeMap<&'static str, usize>; 3]>,
}

impl LaunchObserver for PhaseLaunches {
    fn launched(&self, kernel: &'static str) {
        let phase = self.phase.load(Ordering::Relaxed).min(2);
        if let Ok(mut counts) = self.counts.lock() {
            *counts[phase].entry(kernel).or_default() += 1;
        }
    }
}

impl PhaseLaunches {
    /// Prints launches per step and phase over `steps` steps, with the most frequent kernels.
    fn report(&self, label: &str, steps: usize) {
        let Ok(counts) = self.counts.lock() else {
            return;
        };
        let per = |n: usize| n as f64 / steps.max(1) as f64;
        let total: usize = counts.iter().flat_map(|c| c.values()).sum();
        println!(
            "  profile {label}: {:.0} kernel launches per step; host per step: 2 uploads (images, \
             targets), 1 loss read (a host wait, as the trainer makes), 3 syncs (this benchmark's \
             phase timing)",
            per(total)
        );
        for (phase, c) in PHASES.iter().zip(counts.iter()) {
            // By kernel type: the generic arguments (element types, operations) merged.
            let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
            for (k, n) in c {
                *kinds.entry(short(k)).or_default() += n;
            }
            let mut top: Vec<(String, usize)> = kinds.into_iter().collect();
            top.sort_by_key(|t| std::cmp::Reverse(t.1));
            let names: Vec<String> = top
                .iter()
                .take(5)
                .map(|(k, n)| format!("{:.0}× {k}", per(*n)))
                .collect();
            println!(
                "    {phase:<15} {:>6.0} launches, {} kernels; most: {}",
                per(c.values().sum()),
                c.len(),
                names.join(", ")
            );
        }
    }
}

/// A kernel's name without its module path and generic arguments.
fn short(name: &str) -> String {
    let base = name.split('<').next().unwrap_or(name);
    base.rsplit("::").next().unwrap_or(base).to_string()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (device, name) = parse_device(&arg("--device", "cpu"))?;
    let profile = std::env::args().any(|a| a == "--profile");
    let batch: usize = arg("--batch", "64").parse()?;
    let steps: usize = arg("--steps", "5").parse()?;
    let ad = device.clone().autodiff();
    let preset = Preset::tiny(3, 10)?;
    let mut rng = SmallRng::seed_from_u64(7);
    let subnets = [
        ("largest", SubnetConfig::largest(&preset)),
        ("random", SubnetConfig::random(&preset, &mut rng)),
        ("smallest", SubnetConfig::smallest(&preset)),
    ];
    println!("device: {name}, batch {batch}, {steps} timed steps after 2 warm-up steps");
    println!(
        "{:<9} {:<9} {:>5} {:>10} {:>11} {:>9} {:>9}  fwd/bwd/optim ms",
        "subnet", "ops", "res", "MACs", "ms/step", "img/s", "GFLOP/s"
    );
    let ops_arg = arg("--ops", "custom,composed,pytorch");
    let ops: Vec<&str> = ops_arg.split(',').map(str::trim).collect();
    if let Some(bad) = ops
        .iter()
        .find(|o| !["custom", "composed", "pytorch"].contains(o))
    {
        return Err(format!("--ops: unknown `{bad}` (custom, composed, pytorch)").into());
    }
    let python = arg("--python", "python3");
    let torch_device = arg("--torch-device", "cpu");
    let mut torch_ok = ops.contains(&"pytorch");
    let dir = std::env::temp_dir().join(format!("enas4d-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut worst = 0.0f64;
    let only = arg("--subnets", "largest,random,smallest");
    for (label, config) in subnets
        .iter()
        .filter(|(l, _)| only.split(',').any(|o| o.trim() == *l))
    {
        let plan = Plan::new(&preset, config)?;
        let macs = *count(&preset, config)?.cum_macs.last().unwrap_or(&0);
        let row = |ops: &str, s: f64, split: Option<[f64; 3]>| {
            let gflops = 6.0 * macs as f64 * batch as f64 / s / 1e9;
            let split = split.map_or(String::new(), |[f, b, o]| {
                format!("  {:.1}/{:.1}/{:.1}", f * 1e3, b * 1e3, o * 1e3)
            });
            println!(
                "{label:<9} {ops:<9} {:>5} {:>9.2}M {:>11.1} {:>9.1} {gflops:>9.2}{split}",
                plan.resolution,
                macs as f64 / 1e6,
                s * 1e3,
                batch as f64 / s
            );
        };
        for composed in [false, true] {
            if ops.contains(&if composed { "composed" } else { "custom" }) {
                let launches = profile.then(|| Arc::new(PhaseLaunches::default()));
                let split = burn_step(
                    &ad,
                    &preset,
                    &plan,
                    (batch, steps),
                    composed,
                    &mut rng,
                    launches.as_ref(),
                )?;
                let ops = if composed { "composed" } else { "custom" };
                row(ops, split.iter().sum(), Some(split));
                if let Some(l) = launches {
                    l.report(&format!("{label} {ops}"), steps);
                }
            }
        }
        if torch_ok {
            let check = dir.join("check.safetensors");
            write_check(&device, &preset, &plan, 8, &mut rng, &check)?;
            match torch_step(&python, &torch_device, &plan, batch, steps, &check) {
                Ok((s, err)) => {
                    row("pytorch", s, None);
                    worst = worst.max(err);
                }
                Err(e) => {
                    println!("pytorch: skipped ({e})");
                    torch_ok = false;
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    if torch_ok {
        println!("pytorch port vs this crate: largest relative logit error {worst:.1e} (bound {TORCH_BOUND:.0e})");
        if worst > TORCH_BOUND {
            return Err("the PyTorch port does not compute this crate's subnet".into());
        }
    }
    Ok(())
}

/// Seconds per training step of `plan` on burn (`composed`: the reference ops), split into
/// forward + loss, backward, and the optimizer step (the device is synchronised after each);
/// `launches` counts the timed steps' kernel launches per phase.
fn burn_step(
    ad: &burn::tensor::Device,
    preset: &Preset,
    plan: &Plan,
    (batch, steps): (usize, usize),
    composed: bool,
    rng: &mut SmallRng,
    launches: Option<&Arc<PhaseLaunches>>,
) -> BoxResult<[f64; 3]> {
    let mut net = Supernet::new(preset, ad, 1)?;
    // The trainer's fused AdamW with the custom ops, burn's own AdamW with the composition.
    let mut optim = if composed {
        AdamWConfig::new().init()
    } else {
        FusedAdamW::new(1e-4).init()
    };
    let mut masks = MaskCache::new(ad);
    let r = plan.resolution;
    let labels: Vec<u32> = (0..batch).map(|_| rng.random_range(0..10)).collect();
    let images: Vec<f32> = (0..batch * 3 * r * r)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    let mut split = [0.0; 3];
    let phase = |p: usize| {
        if let Some(l) = launches {
            l.phase.store(p, Ordering::Relaxed);
        }
    };
    for step in 0..steps + 2 {
        let _watch = launches
            .filter(|_| step >= 2)
            .map(|l| LaunchObservation::new(l.clone()));
        phase(0);
        let t0 = Instant::now();
        let x = Tensor::from_data(TensorData::new(images.clone(), [batch, 3, r, r]), ad);
        let opts = PassOptions {
            bn: BnMode::Batch,
            dropout: 0.1,
            detach_early_exits: false,
            composed,
        };
        let logits = forward(&net, plan, x, &mut masks, opts)?;
        let targets = smoothed_targets(&labels, 10, 0.1, ad);
        let loss = multi_exit_loss(&logits, &targets, None, LossWeights::default());
        if launches.is_some() {
            // The trainer reads the loss every step (to stop on a NaN and to log it).
            let value = loss.clone().into_data().try_into_vec::<f32>();
            if value.map_or(true, |v| v.first().is_none_or(|x| !x.is_finite())) {
                return Err("the loss is not a finite number".into());
            }
        }
        ad.sync()?;
        let t1 = Instant::now();
        phase(1);
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        ad.sync()?;
        let t2 = Instant::now();
        phase(2);
        net = optim.step(1e-3, net, grads);
        ad.sync()?;
        if step >= 2 {
            split[0] += (t1 - t0).as_secs_f64() / steps as f64;
            split[1] += (t2 - t1).as_secs_f64() / steps as f64;
            split[2] += t2.elapsed().as_secs_f64() / steps as f64;
        }
    }
    Ok(split)
}

type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

/// A tensor's values and shape.
type Flat = (Vec<f32>, Vec<usize>);

fn flat<const D: usize>(t: Tensor<D>) -> BoxResult<Flat> {
    let shape = t.dims().to_vec();
    let v = t
        .into_data()
        .try_into_vec::<f32>()
        .map_err(|e| format!("{e:?}"))?;
    Ok((v, shape))
}

/// Writes what the PyTorch port is checked against: the shipped S = 3 supernet's trained
/// weights for `plan` (a fresh one's zero-initialised BN scales would hide gating mistakes),
/// named as the port's parameters; `batch` random images; this crate's logits of every exit on
/// them (batch statistics, no dropout).
fn write_check(
    device: &burn::tensor::Device,
    preset: &Preset,
    plan: &Plan,
    batch: usize,
    rng: &mut SmallRng,
    path: &std::path::Path,
) -> BoxResult<()> {
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/models/tiny-s3/supernet.bin");
    let ckpt = checkpoint::load(std::path::Path::new(shipped), device)?;
    if &ckpt.header.preset != preset {
        return Err(format!("{shipped} is not the tiny S = 3 supernet").into());
    }
    let net = ckpt.net;
    let mut t: Vec<(String, Flat)> = Vec::new();
    let bn = |t: &mut Vec<_>, name: &str, p: &enas4d::supernet::Bn, c: usize| {
        t.push((format!("{name}.weight"), flat(p.gamma.val().slice(0..c))?));
        t.push((format!("{name}.bias"), flat(p.beta.val().slice(0..c))?));
        BoxResult::Ok(())
    };
    let conv = |t: &mut Vec<_>, name: &str, p: &enas4d::supernet::ConvBn, o: usize, i: usize| {
        let (v, _) = flat(p.weight.val().slice([0..o, 0..i]))?;
        t.push((format!("{name}.weight"), (v, vec![o, i, 1, 1])));
        bn(t, &format!("{name}.bn"), &p.bn, o)
    };
    // One walk of the layer list; the names are those `torch_train_step.py` reads.
    for layer in plan.layers() {
        let (o, i) = (layer.rows.width() as usize, layer.cols.width() as usize);
        let block = layer.block.map(|j| {
            let b = &plan.blocks[j];
            (
                format!("blocks.{j}"),
                &net.blocks[b.elastic_index.map_or(0, |i| i + 1)],
            )
        });
        let missing = || format!("{}: not in the supernet", layer.name);
        match (&layer.kind, &block) {
            (LayerKind::Stem, _) => {
                t.push(("stem.weight".into(), flat(net.stem.val().slice(0..o))?));
                bn(&mut t, "stem_bn", &net.stem_bn, o)?;
            }
            (LayerKind::Expand, Some((n, p))) => {
                let e = p.expand.as_ref().ok_or_else(missing)?;
                conv(&mut t, &format!("{n}.expand"), e, o, i)?;
            }
            (LayerKind::Depthwise { .. }, Some((n, p))) => {
                t.push((format!("{n}.dw"), flat(p.dw.val().slice(0..o))?));
                t.push((format!("{n}.m25"), flat(p.m25.val())?));
                t.push((format!("{n}.m9"), flat(p.m9.val())?));
                bn(&mut t, &format!("{n}.dw_bn"), &p.dw_bn, o)?;
            }
            (LayerKind::SeReduce, Some((n, p))) => {
                let se = p.se.as_ref().ok_or_else(missing)?;
                let w = se.reduce.val().slice([0..o, 0..i]);
                t.push((format!("{n}.se.reduce"), flat(w)?));
                let b = se.reduce_bias.val().slice(0..o);
                t.push((format!("{n}.se.reduce_bias"), flat(b)?));
            }
            (LayerKind::SeExpand, Some((n, p))) => {
                let se = p.se.as_ref().ok_or_else(missing)?;
                let w = se.expand.val().slice([0..o, 0..i]);
                t.push((format!("{n}.se.expand"), flat(w)?));
                let b = se.expand_bias.val().slice(0..o);
                t.push((format!("{n}.se.expand_bias"), flat(b)?));
            }
            (LayerKind::Project { .. }, Some((n, p))) => {
                conv(&mut t, &format!("{n}.project"), &p.project, o, i)?;
            }
            (LayerKind::FinalExpand, _) => conv(&mut t, "final_expand", &net.final_expand, o, i)?,
            (LayerKind::FeatureMix, _) => {
                let w = net.feature_mix.val().slice([0..o, 0..i]);
                t.push(("mix".into(), flat(w)?));
            }
            (LayerKind::Classifier { stage }, _) => {
                let head = &net.classifiers[*stage];
                let c = layer.cols.end(*stage) as usize;
                let w = head.weight.val().slice([0..plan.classes, 0..c]);
                t.push((format!("heads.{stage}.weight"), flat(w)?));
                t.push((format!("heads.{stage}.bias"), flat(head.bias.val())?));
            }
            _ => return Err(missing().into()),
        }
    }
    let r = plan.resolution;
    let images: Vec<f32> = (0..batch * 3 * r * r)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    let x = Tensor::from_data(TensorData::new(images.clone(), [batch, 3, r, r]), device);
    t.push(("images".into(), (images, vec![batch, 3, r, r])));
    let opts = PassOptions {
        bn: BnMode::Batch,
        dropout: 0.0,
        detach_early_exits: false,
        composed: false,
    };
    let mut masks = MaskCache::new(device);
    for (s, l) in forward(&net, plan, x, &mut masks, opts)?
        .into_iter()
        .enumerate()
    {
        t.push((format!("logits.{s}"), flat(l)?));
    }
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = t
        .into_iter()
        .map(|(n, (v, shape))| (n, bytemuck::cast_slice(&v).to_vec(), shape))
        .collect();
    let views = bytes
        .iter()
        .map(|(n, b, shape)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), b)
                .map(|v| (n.clone(), v))
        })
        .collect::<Result<Vec<_>, _>>()?;
    std::fs::write(path, safetensors::serialize(views, None)?)?;
    Ok(())
}

/// Seconds per training step of `plan` in PyTorch through `examples/torch_train_step.py`,
/// and the port's largest relative logit error against this crate on the `check` file.
fn torch_step(
    python: &str,
    torch_device: &str,
    plan: &Plan,
    batch: usize,
    steps: usize,
    check: &std::path::Path,
) -> BoxResult<(f64, f64)> {
    let plan_path = check.with_file_name("plan.json");
    std::fs::write(&plan_path, serde_json::to_string(plan)?)?;
    // The source tree's script, else the one under the working directory (a copied binary).
    let built =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/torch_train_step.py");
    let script = if built.exists() {
        built
    } else {
        std::path::PathBuf::from("examples/torch_train_step.py")
    };
    let out = std::process::Command::new(python)
        .arg(&script)
        .arg(&plan_path)
        .arg("--check")
        .arg(check)
        .args(["--batch", &batch.to_string(), "--steps", &steps.to_string()])
        .args(["--device", torch_device])
        .output()
        .map_err(|e| format!("{python}: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().last().unwrap_or("no output");
        return Err(format!("{python} failed: {last}").into());
    }
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let field = |k: &str| {
        report[k]
            .as_f64()
            .ok_or_else(|| format!("the report has no {k}"))
    };
    Ok((field("ms_per_step")? / 1e3, field("check_rel_err")?))
}
