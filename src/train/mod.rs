//! Training the supernet (DESIGN §4): sandwich sampling under progressive shrinking, the
//! multi-exit loss with distillation, cosine learning rate, BN re-estimation before every
//! evaluation, atomic checkpoints and exact resumption.

mod batches;
pub mod checkpoint;
mod config;
pub mod curve;
mod device;
pub mod eval;
mod lock;
mod log;
mod loss;
mod optimizer;
mod sampler;
mod teacher;

use std::path::PathBuf;
use std::time::Instant;

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::rngs::SmallRng;
use rand::SeedableRng;

pub use batches::{derive_seed, Batches};
pub use checkpoint::{Checkpoint, CheckpointHeader, CHECKPOINT_VERSION};
pub use config::{Phase, PhaseSpec, TrainConfig};
pub use device::parse_device;
pub use eval::{calibrate, exit_accuracies, exit_logits, exit_records};
pub use lock::{RunLock, LOCK_FILE};
pub use log::{EvalRow, TrainLog};
pub use loss::{multi_exit_loss, smoothed_targets, soft_cross_entropy, LossWeights};
pub use optimizer::FusedAdamW;
pub use sampler::{sample, Pick};
pub use teacher::Teacher;

use crate::data::{to_batch, Augment, Dataset};
use crate::error::{Error, Result};
use crate::space::{Plan, Preset, SubnetConfig};
use crate::supernet::{forward, sort_channels, BnMode, MaskCache, PassOptions, Supernet};

/// File names inside a run's output folder.
pub const CHECKPOINT_FILE: &str = "checkpoint.bin";
/// The trained supernet (weights only) written at the end of a run.
pub const SUPERNET_FILE: &str = "supernet.bin";
/// The training curve (SVG) written whenever a run stops.
pub const CURVE_FILE: &str = "curve.svg";

/// How to run [`train`].
#[derive(Debug)]
pub struct TrainOptions {
    /// The run's configuration (ignored when resuming: the checkpoint's wins).
    pub config: TrainConfig,
    /// Output folder: checkpoint, log, evaluations, final supernet.
    pub out_dir: PathBuf,
    /// Continue from `out_dir`'s checkpoint.
    pub resume: bool,
    /// Start a fresh run from this trained supernet's weights (same preset) instead of a
    /// random initialisation.
    pub init: Option<std::path::PathBuf>,
    /// Device to train on (without autodiff; it is added here).
    pub device: Device,
    /// The device's name, for the log.
    pub device_name: String,
    /// Draw progress bars.
    pub progress: bool,
}

/// What a finished (or stopped) run reports.
#[derive(Clone, Debug)]
pub struct TrainSummary {
    /// Steps done in total.
    pub steps: usize,
    /// Whether every phase is done.
    pub finished: bool,
    /// Training seconds, all sessions.
    pub elapsed_s: f64,
    /// Training images per second in this session.
    pub images_per_s: f64,
    /// The evaluations of this session.
    pub evals: Vec<EvalRow>,
}

fn to_tensor(v: Vec<f32>, n: usize, r: usize, device: &Device) -> Tensor<4> {
    Tensor::from_data(TensorData::new(v, [n, 3, r, r]), device)
}

/// The step's loss and the largest subnet's batch accuracy at each exit, gathered on the
/// device into one vector `[loss, acc_1, …, acc_S]` so that the step reads the device once.
fn step_stats(loss: &Tensor<1>, exits: &[Tensor<2>], labels: &[u32]) -> Tensor<1> {
    let loss = loss.clone().inner();
    let n = labels.len();
    let truth = Tensor::<1, Int>::from_data(
        TensorData::new(
            labels.iter().map(|&l| i64::from(l)).collect::<Vec<_>>(),
            [n],
        ),
        &loss.device(),
    );
    let mut parts = vec![loss];
    for logits in exits {
        let top = logits.clone().inner().argmax(1).reshape([n]);
        parts.push(top.equal(truth.clone()).float().mean());
    }
    Tensor::cat(parts, 0)
}

/// Reads [`step_stats`]: the loss and the accuracies. Errors on a loss that is not finite.
fn read_stats(stats: Tensor<1>, step: usize) -> Result<(f32, Vec<f64>)> {
    let v = stats
        .into_data()
        .try_into_vec::<f32>()
        .map_err(|e| Error::Device(format!("reading the loss: {e:?}")))?;
    let (&value, accs) = v
        .split_first()
        .ok_or_else(|| Error::Device("empty loss".into()))?;
    if !value.is_finite() {
        return Err(Error::config(
            "training",
            format!("the loss is {value} at step {step}; lower the learning rate"),
        ));
    }
    Ok((value, accs.iter().map(|&a| f64::from(a)).collect()))
}

/// The summed loss of one step's sandwich (largest, smallest, random and widest subnets of
/// `phase`; or the `alone` subnet) on the images `idx`, its value, and the largest subnet's
/// exit logits.
#[allow(clippy::too_many_arguments)]
fn sandwich_loss(
    net: &Supernet,
    preset: &Preset,
    config: &TrainConfig,
    phase: Phase,
    step: usize,
    train: &Dataset,
    idx: &[usize],
    labels: &[u32],
    masks: &mut MaskCache,
    external: Option<&mut Teacher>,
    ad: &Device,
) -> Result<(Tensor<1>, Vec<Tensor<2>>)> {
    let mut rng = SmallRng::seed_from_u64(derive_seed(config.seed, 2, step as u64));
    ad.seed(derive_seed(config.seed, 3, step as u64));
    let targets = smoothed_targets(labels, preset.classes, config.label_smoothing, ad);
    let subnets: Vec<(Pick, SubnetConfig)> = match &config.alone {
        Some(alone) => vec![(Pick::Largest, alone.clone())],
        None => {
            let mut picks = vec![Pick::Largest, Pick::Smallest];
            picks.extend(std::iter::repeat_n(Pick::Random, config.random_subnets));
            picks.extend(std::iter::repeat_n(Pick::Widest, config.widest_subnets));
            picks.extend(std::iter::repeat_n(
                Pick::FirstStage,
                config.first_stage_subnets,
            ));
            // The step's stage cuts for the largest and the random subnets, from a stream of
            // their own so that every other draw matches a run without `sampled_cuts`.
            let step_cuts = (config.sampled_cuts && phase == Phase::Expand).then(|| {
                let mut cut_rng = SmallRng::seed_from_u64(derive_seed(config.seed, 5, step as u64));
                SubnetConfig::random(preset, &mut cut_rng).p
            });
            picks
                .into_iter()
                .map(|pick| {
                    let mut subnet = sample(preset, phase, pick, &mut rng);
                    if let (Some(p), Pick::Largest | Pick::Random) = (&step_cuts, pick) {
                        subnet.p = p.clone();
                    }
                    (pick, subnet)
                })
                .collect()
        }
    };
    let aug_seed = derive_seed(config.seed, 4, step as u64);
    let augment = Augment::default();
    // `validate` refuses a teacher without distillation, so an external one is always used.
    let mut teacher: Option<Tensor<2>> = match external {
        Some(t) => Some(t.soft_targets(train, idx, aug_seed, ad)?),
        None => None,
    };
    let own_teacher = teacher.is_none();
    let exit_weights = config.normalised_exit_weights();
    let mut loss_sum: Option<Tensor<1>> = None;
    let mut largest_exits = Vec::new();
    // With `alone` the one subnet plays the largest's part: it reports the batch accuracy,
    // and nothing is left to distil into.
    for (pick, subnet) in subnets {
        let plan = Plan::new(preset, &subnet)?;
        // The same crops and flips for every subnet of the step.
        let mut aug_rng = SmallRng::seed_from_u64(aug_seed);
        let x = to_batch(train, idx, plan.resolution, Some((&augment, &mut aug_rng)))?;
        let x = to_tensor(x, idx.len(), plan.resolution, ad);
        let logits = forward(
            net,
            &plan,
            x,
            masks,
            PassOptions {
                bn: BnMode::Batch,
                dropout: config.dropout,
                detach_early_exits: config.detach_early_exits,
                composed: false,
            },
        )?;
        let loss = multi_exit_loss(
            &logits,
            &targets,
            teacher.as_ref(),
            LossWeights {
                distill: config.distill,
                self_distill: config.self_distill,
                exits: exit_weights.as_deref(),
            },
        );
        if pick == Pick::Largest {
            if own_teacher {
                let last = logits.last().expect("at least one exit").clone().detach();
                teacher = Some(softmax(last, 1));
            }
            largest_exits = logits;
        }
        loss_sum = Some(match loss_sum {
            Some(acc) => acc + loss,
            None => loss,
        });
    }
    let loss = loss_sum.expect("at least one subnet");
    Ok((loss, largest_exits))
}

/// The run's external teacher, if its configuration names one.
fn load_teacher(config: &TrainConfig, data: &Dataset, device: &Device) -> Result<Option<Teacher>> {
    config
        .teacher
        .as_ref()
        .map(|path| Teacher::load(path, config, &data.classes, device))
        .transpose()
}

/// Seconds per training step of the heaviest phase on `device`, after a warm-up: runs
/// `warmup + steps` full sandwich steps (forward and backward) of a throwaway supernet.
pub fn probe_step_time(
    config: &TrainConfig,
    preset: &Preset,
    train: &Dataset,
    device: &Device,
    warmup: usize,
    steps: usize,
) -> Result<f64> {
    let ad = device.clone().autodiff();
    let net = Supernet::new(preset, &ad, config.seed)?;
    let mut masks = MaskCache::new(&ad);
    let mut teacher = load_teacher(config, train, device)?;
    let mut batches = Batches::new(train.len(), config.batch, config.seed);
    let mut t0 = Instant::now();
    for step in 0..warmup + steps {
        if step == warmup {
            t0 = Instant::now();
        }
        let idx = batches.step(step);
        let labels: Vec<u32> = idx.iter().map(|&i| train.labels[i]).collect();
        let (loss, _) = sandwich_loss(
            &net,
            preset,
            config,
            Phase::Full,
            step,
            train,
            &idx,
            &labels,
            &mut masks,
            teacher.as_mut(),
            &ad,
        )?;
        let grads = loss.backward();
        drop(grads);
    }
    Ok(t0.elapsed().as_secs_f64() / steps.max(1) as f64)
}

/// Evaluates the largest and smallest subnets of `phase` (or the `alone` subnet) on `val`
/// after BN re-estimation.
#[allow(clippy::too_many_arguments)]
pub fn evaluate_phase(
    net: &Supernet,
    preset: &Preset,
    phase: Phase,
    alone: Option<&SubnetConfig>,
    train: &Dataset,
    val: &Dataset,
    bn_images: usize,
    device: &Device,
) -> Result<Vec<(String, SubnetConfig, Vec<f64>)>> {
    let mut rng = SmallRng::seed_from_u64(0);
    let subnets = match alone {
        Some(config) => vec![("alone", config.clone())],
        None => [("largest", Pick::Largest), ("smallest", Pick::Smallest)]
            .into_iter()
            .map(|(name, pick)| (name, sample(preset, phase, pick, &mut rng)))
            .collect(),
    };
    let mut out = Vec::new();
    for (name, config) in subnets {
        let plan = Plan::new(preset, &config)?;
        let stats = calibrate(net, &plan, train, bn_images, device)?;
        let records = exit_records(net, &plan, &stats, val, device)?;
        out.push((name.to_string(), config, exit_accuracies(&records)));
    }
    Ok(out)
}

/// Trains (or resumes training) a supernet on `train_all` (a validation split of
/// `config.val_size` images is held out with its split seed).
pub fn train(opts: TrainOptions, train_all: &Dataset) -> Result<TrainSummary> {
    let ckpt_path = opts.out_dir.join(CHECKPOINT_FILE);
    if opts.resume && !ckpt_path.exists() {
        return Err(Error::config(
            "resume",
            format!(
                "{} holds no checkpoint to resume (check --out; leave out --resume to start a \
                 new run)",
                opts.out_dir.display()
            ),
        ));
    }
    // Held until the run returns; a second run into this folder is refused meanwhile.
    let _lock = RunLock::acquire(&opts.out_dir)?;
    let ad = opts.device.clone().autodiff();
    let (config, preset, mut net, optim_bytes, start, mut elapsed, mut devices) = if opts.resume {
        let c = checkpoint::load(&ckpt_path, &ad)?;
        if c.header.classes != train_all.classes {
            return Err(Error::config(
                "resume",
                "the data's classes differ from the checkpoint's",
            ));
        }
        let h = c.header;
        (
            h.config,
            h.preset,
            c.net,
            c.optimizer,
            h.step,
            h.elapsed_s,
            h.devices,
        )
    } else {
        if ckpt_path.exists() {
            return Err(Error::config(
                "out",
                format!(
                    "{} holds a checkpoint: pass --resume, or choose another folder",
                    opts.out_dir.display()
                ),
            ));
        }
        let config = opts.config.clone();
        config.validate()?;
        let json = serde_json::to_vec_pretty(&config)
            .map_err(|e| Error::encode("the training config", e))?;
        crate::atomic::write_atomic(&opts.out_dir.join("config.json"), &json)?;
        let preset = config.preset(train_all.classes.len())?;
        let net = match &opts.init {
            Some(path) => {
                let c = checkpoint::load(path, &ad)?;
                // Fixing the cuts or a number of stages is the run's choice: the weights fit.
                let fits = Preset {
                    stages: preset.stages,
                    cuts: preset.cuts.clone(),
                    ..c.header.preset.clone()
                } == preset;
                if !fits {
                    return Err(Error::config(
                        "init",
                        format!("{} was trained with another preset", path.display()),
                    ));
                }
                config.check_same_split(&c.header.config)?;
                // Another number of stages: middle exits go or start as copies of the last.
                c.net.with_stages(preset.stages)?
            }
            None => Supernet::new(&preset, &ad, config.seed)?,
        };
        (config, preset, net, None, 0, 0.0, Vec::new())
    };
    config.validate()?;
    if let Some(alone) = &config.alone {
        alone.validate(&preset)?;
    }
    devices.push(opts.device_name.clone());
    let (train, val) = config.split(train_all)?;
    let mut log = TrainLog::open(&opts.out_dir, config.stages, start)?;
    let new_optim = || FusedAdamW::new(config.weight_decay as f32).init();
    // burn loads the state onto its default device (`BURN_DEVICE`; the `enas4d` binary sets
    // `flex`) and moves it to each parameter's device at the first step.
    let mut optim: ModuleOptimizer = match optim_bytes {
        Some(b) => new_optim()
            .from_bytes(b)
            .map_err(|e| Error::Checkpoint(format!("optimizer state: {e:?}")))?,
        None => new_optim(),
    };
    let total = config.total_steps();
    let mut batches = Batches::new(train.len(), config.batch, config.seed);
    let mut masks = MaskCache::new(&ad);
    let mut teacher = load_teacher(&config, train_all, &opts.device)?;
    let session = Instant::now();
    let mut session_steps = 0usize;
    let mut evals = Vec::new();
    let header = |step: usize, elapsed: f64, devices: &[String]| CheckpointHeader {
        version: CHECKPOINT_VERSION,
        config: config.clone(),
        preset: preset.clone(),
        classes: train_all.classes.clone(),
        step,
        elapsed_s: elapsed,
        devices: devices.to_vec(),
    };
    let save =
        |net: &Supernet, optim: &ModuleOptimizer, step: usize, elapsed: f64, devices: &[String]| {
            checkpoint::save(
                &ckpt_path,
                &header(step, elapsed, devices),
                net,
                Some(optim),
            )
        };
    let mut step = start;
    let mut bar: Option<(usize, indicatif::ProgressBar)> = None;
    while step < total {
        let (phase_index, in_phase) = config.locate(step);
        let spec = &config.phases[phase_index];
        if bar.as_ref().map(|b| b.0) != Some(phase_index) {
            if let Some((_, b)) = bar.take() {
                b.finish();
            }
            let b = if opts.progress {
                indicatif::ProgressBar::new(spec.steps as u64)
            } else {
                indicatif::ProgressBar::hidden()
            };
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{prefix:>8} [{bar:28}] {pos}/{len} {msg} ({eta})",
                )
                .map_err(|e| Error::config("progress", e.to_string()))?
                .progress_chars("=> "),
            );
            b.set_prefix(spec.phase.name());
            b.set_position(in_phase as u64);
            bar = Some((phase_index, b));
        }
        // Sort middle channels by importance before widths become elastic (DESIGN §1), once:
        // a warm start's first phase continues a supernet sorted when it entered this phase,
        // and sorting it again would move channels under the subnets it was trained with.
        let entering = phase_index > 0 || opts.init.is_none();
        if spec.phase == Phase::Expand && in_phase == 0 && config.alone.is_none() && entering {
            net = sort_channels(net, &preset)?;
            optim = new_optim();
        }
        let t0 = Instant::now();
        let idx = batches.step(step);
        let labels: Vec<u32> = idx.iter().map(|&i| train.labels[i]).collect();
        let (loss, largest_exits) = sandwich_loss(
            &net,
            &preset,
            &config,
            spec.phase,
            step,
            &train,
            &idx,
            &labels,
            &mut masks,
            teacher.as_mut(),
            &ad,
        )?;
        let stats = step_stats(&loss, &largest_exits, &labels);
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        net = optim.step(config.lr(step), net, grads);
        // The step's one read of the device (after the update: a non-finite loss stops the
        // run before anything is saved).
        let (loss_value, accs) = read_stats(stats, step)?;
        step += 1;
        session_steps += 1;
        let dt = t0.elapsed().as_secs_f64();
        elapsed += dt;
        let ips = idx.len() as f64 / dt.max(1e-9);
        log.step(
            step,
            spec.phase,
            config.lr(step - 1),
            loss_value,
            &accs,
            ips,
            elapsed,
        )?;
        if let Some((_, b)) = &bar {
            let accs: Vec<String> = accs.iter().map(|a| format!("{:.0}", a * 100.0)).collect();
            b.set_message(format!(
                "loss {loss_value:.3} acc {}% {ips:.0} img/s ep {:.2}",
                accs.join("/"),
                batches.epochs(step)
            ));
            b.inc(1);
        }
        let phase_done = config.locate(step).0 != phase_index;
        if step % config.checkpoint_every == 0 || phase_done {
            save(&net, &optim, step, elapsed, &devices)?;
        }
        if phase_done {
            let inner = net.valid();
            let device = opts.device.clone();
            for (name, subnet, accs) in evaluate_phase(
                &inner,
                &preset,
                spec.phase,
                config.alone.as_ref(),
                &train,
                &val,
                config.bn_images,
                &device,
            )? {
                let row = EvalRow {
                    step,
                    phase: spec.phase,
                    subnet: name,
                    cum_macs: crate::space::count(&preset, &subnet)?.cum_macs,
                    accuracy: accs,
                };
                log.eval(&row)?;
                if let Some((_, b)) = &bar {
                    b.println(row.describe());
                }
                evals.push(row);
            }
        }
    }
    if let Some((_, b)) = bar.take() {
        b.finish();
    }
    let finished = step >= total;
    if finished {
        checkpoint::save(
            &opts.out_dir.join(SUPERNET_FILE),
            &header(step, elapsed, &devices),
            &net.valid(),
            None,
        )?;
    }
    let secs = session.elapsed().as_secs_f64().max(1e-9);
    Ok(TrainSummary {
        steps: step,
        finished,
        elapsed_s: elapsed,
        images_per_s: (session_steps * config.batch) as f64 / secs,
        evals,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One read gives the loss and each exit's batch accuracy; a loss that is not finite stops
    /// the run with an error that says what to do.
    #[test]
    fn the_step_reads_loss_and_accuracies_at_once() {
        let device = Device::flex().autodiff();
        let labels = [2u32, 0, 1, 2, 1];
        // Exit 1 right on images 0, 1, 3; exit 2 right on all five.
        let exit = |rows: [[f32; 3]; 5]| {
            Tensor::<2>::from_data(TensorData::new(rows.concat(), [5, 3]), &device)
        };
        let e1 = exit([
            [0.1, 0.2, 0.9],
            [0.8, 0.1, 0.3],
            [0.7, 0.2, 0.1],
            [-1.0, 0.0, 2.0],
            [0.5, 0.4, 0.3],
        ]);
        let e2 = exit([
            [0.0, 0.0, 1.0],
            [1.0, 0.0, 0.0],
            [0.0, 1.0, 0.0],
            [0.0, 0.0, 1.0],
            [0.0, 1.0, 0.0],
        ]);
        let loss = Tensor::<1>::from_data(TensorData::new(vec![1.25f32], [1]), &device);
        let (value, accs) = read_stats(step_stats(&loss, &[e1, e2], &labels), 7).unwrap();
        assert_eq!(value, 1.25);
        assert_eq!(accs.len(), 2);
        assert!(
            (accs[0] - 0.6).abs() < 1e-6 && (accs[1] - 1.0).abs() < 1e-6,
            "{accs:?}"
        );
        let nan = Tensor::<1>::from_data(TensorData::new(vec![f32::NAN], [1]), &device);
        let err = read_stats(step_stats(&nan, &[], &labels), 7).unwrap_err();
        assert!(err.to_string().contains("lower the learning rate"), "{err}");
    }
}
