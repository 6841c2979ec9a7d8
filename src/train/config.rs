//! Training configuration and schedules (DESIGN §4).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::space::{FixedCuts, Preset, SubnetConfig};

/// The largest batch a run may ask for (images per step).
pub const MAX_BATCH: usize = 4096;
/// The most subnets besides the largest and the smallest per step.
pub const MAX_SUBNETS: usize = 16;
/// The most optimizer steps of a run.
pub const MAX_STEPS: usize = 100_000_000;
/// The most images BN re-estimation may use.
pub const MAX_BN_IMAGES: usize = 100_000;

/// A progressive-shrinking phase: which dimensions are elastic (resolution always is).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// The largest subnet only.
    Full,
    /// Elastic kernel sizes.
    Kernel,
    /// Elastic kernel sizes and depths.
    Depth,
    /// Everything elastic: kernel, depth, expand ratio and stage cuts.
    Expand,
}

impl Phase {
    /// Lower-case name, as in logs.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Full => "full",
            Phase::Kernel => "kernel",
            Phase::Depth => "depth",
            Phase::Expand => "expand",
        }
    }
}

/// One phase of the schedule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseSpec {
    /// Which dimensions are elastic.
    pub phase: Phase,
    /// Optimizer steps.
    pub steps: usize,
    /// Peak learning rate (cosine decay to 0 over the phase).
    pub lr: f64,
}

/// Everything that defines a training run; stored in its checkpoints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Preset name (`tiny` or `imagenet`).
    pub preset: String,
    /// Stages S of the supernet.
    pub stages: usize,
    /// Images per step.
    pub batch: usize,
    /// Random subnets per step besides the largest and the smallest (sandwich rule).
    pub random_subnets: usize,
    /// Widest subnets per step besides those: every choice at its maximum except the input
    /// resolution and (in the expand phase) the stage cuts, which are drawn at random. They
    /// train the wide nets at the resolutions and cuts the largest subnet never sees.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub widest_subnets: usize,
    /// First-stage subnets per step besides those: stage 1's depths and kernels at random under
    /// every later stage at its maximum, at a random resolution (and, in the expand phase,
    /// random cuts). They train the later stages to complete any stage 1 to the largest net,
    /// the shape of a searched net with a cheap first exit (DESIGN §4).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub first_stage_subnets: usize,
    /// In the expand phase, draw one set of stage cuts per step for the largest subnet and the
    /// random ones, so that the distillation teacher (the largest subnet's last exit) sits at
    /// the students' cuts and full-width nets train at every cut the search may pick
    /// (DESIGN §4). Off: the largest subnet always uses the largest cuts.
    #[serde(default, skip_serializing_if = "is_false")]
    pub sampled_cuts: bool,
    /// Fix the stage cuts of every subnet the run trains (a fixed-cut space, DESIGN §2); the
    /// supernet records them, so search and evaluation stay inside the space. Unset: cuts are
    /// elastic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cuts: Option<FixedCuts>,
    /// Weight of each exit's loss, one per stage, normalised to sum 1 (DESIGN §4). Unset:
    /// 1/S each.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_weights: Option<Vec<f64>>,
    /// The phases, in order.
    pub phases: Vec<PhaseSpec>,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// Label smoothing of the cross-entropy.
    pub label_smoothing: f64,
    /// Weight of the distillation term (soft targets of the largest subnet's last exit).
    pub distill: f64,
    /// Distil from this trained supernet's largest subnet (its last exit) instead of the run's
    /// own largest subnet, e.g. the static S = 1 supernet teaching a multi-stage one (DESIGN
    /// §4). A path relative to the working directory; the supernet must know the same classes
    /// and hold out the same validation split. Unset: the run's own largest subnet teaches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher: Option<PathBuf>,
    /// Weight of the self-distillation term: every exit but the last also learns the soft
    /// targets of its own subnet's last exit (IMTA-style, DESIGN §4). 0 (default): off.
    #[serde(default, skip_serializing_if = "is_zero_f64")]
    pub self_distill: f64,
    /// Early exits' losses train their own classifiers only: the features an exit before the
    /// last reads are detached from its loss, so every layer they pass through is shaped by
    /// the last exit alone (DESIGN §4). Default false.
    #[serde(default, skip_serializing_if = "is_false")]
    pub detach_early_exits: bool,
    /// Dropout before each classifier.
    pub dropout: f64,
    /// Training images held out for validation (fixed seed).
    pub val_size: usize,
    /// Seed of the validation split when it differs from `seed`: a run warm-started from a
    /// supernet with another seed keeps that supernet's split (never trains on its validation
    /// images) by setting this to the supernet's split seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_seed: Option<u64>,
    /// Training images used to re-estimate BN statistics before an evaluation.
    pub bn_images: usize,
    /// Steps between checkpoints.
    pub checkpoint_every: usize,
    /// Seed of everything random.
    pub seed: u64,
    /// Train this one subnet alone (no sandwich, no distillation, no channel sorting) instead
    /// of the supernet: the baseline a subnet of the supernet is compared with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alone: Option<SubnetConfig>,
}

impl TrainConfig {
    /// A named schedule: `quick` (minutes on two CPU cores) or `full`.
    pub fn schedule(name: &str, stages: usize) -> Result<Self> {
        let phases = |steps: [usize; 4]| {
            [Phase::Full, Phase::Kernel, Phase::Depth, Phase::Expand]
                .into_iter()
                .zip(steps)
                .map(|(phase, steps)| PhaseSpec {
                    phase,
                    steps,
                    lr: if phase == Phase::Full { 3e-3 } else { 1.5e-3 },
                })
                .collect()
        };
        let (batch, phases, val_size, every) = match name {
            "quick" => (64, phases([80, 30, 30, 60]), 2000, 40),
            "full" => (128, phases([6000, 2000, 2000, 6000]), 5000, 200),
            _ => {
                return Err(Error::config(
                    "schedule",
                    format!("unknown schedule '{name}' (expected quick or full)"),
                ))
            }
        };
        Ok(TrainConfig {
            preset: "tiny".into(),
            stages,
            batch,
            random_subnets: 1,
            widest_subnets: 0,
            first_stage_subnets: 0,
            sampled_cuts: false,
            cuts: None,
            exit_weights: None,
            phases,
            weight_decay: 1e-4,
            label_smoothing: 0.1,
            distill: 1.0,
            teacher: None,
            self_distill: 0.0,
            detach_early_exits: false,
            dropout: 0.1,
            val_size,
            val_seed: None,
            bn_images: if name == "quick" { 1000 } else { 2000 },
            checkpoint_every: every,
            seed: 1,
            alone: None,
        })
    }

    /// The run's search space: the named preset for `classes`, with the run's fixed cuts.
    pub fn preset(&self, classes: usize) -> Result<Preset> {
        Preset::by_name(&self.preset, self.stages, classes)?.with_cuts(self.cuts.clone())
    }

    /// Checks every field; the error names the offending one.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &'static str, why: &str| Err(Error::config(field, why.to_string()));
        if !(1..=MAX_BATCH).contains(&self.batch) {
            return bad("batch", &format!("must be in 1..={MAX_BATCH}"));
        }
        if self.random_subnets + self.widest_subnets + self.first_stage_subnets > MAX_SUBNETS {
            return bad(
                "random_subnets",
                &format!(
                    "random_subnets + widest_subnets + first_stage_subnets must be ≤ {MAX_SUBNETS}"
                ),
            );
        }
        if let Some(cuts) = &self.cuts {
            cuts.validate(self.stages)?;
            if self.sampled_cuts {
                return bad("sampled_cuts", "the cuts are fixed by `cuts`");
            }
        }
        if self.val_size == 0 {
            return bad(
                "val_size",
                "must be > 0: every evaluation needs validation images",
            );
        }
        if self.total_steps() > MAX_STEPS {
            return bad("phases.steps", &format!("at most {MAX_STEPS} steps in all"));
        }
        if self.phases.iter().any(|p| p.lr > 1.0) {
            return bad("phases.lr", "must be ≤ 1");
        }
        if !(0.0..=1.0).contains(&self.weight_decay) {
            return bad("weight_decay", "must be in [0, 1]");
        }
        if self.phases.is_empty() || self.phases.iter().any(|p| p.steps == 0) {
            return bad("phases", "need at least one phase, each with steps > 0");
        }
        if self
            .phases
            .iter()
            .any(|p| !(p.lr > 0.0 && p.lr.is_finite()))
        {
            return bad("phases.lr", "must be finite and > 0");
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return bad("label_smoothing", "must be in [0, 1)");
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad("dropout", "must be in [0, 1)");
        }
        if !(self.distill >= 0.0 && self.distill.is_finite()) {
            return bad("distill", "must be finite and ≥ 0");
        }
        if self.teacher.is_some() && self.distill == 0.0 {
            return bad(
                "teacher",
                "needs distill > 0: it only gives distillation targets",
            );
        }
        if !(self.self_distill >= 0.0 && self.self_distill.is_finite()) {
            return bad("self_distill", "must be finite and ≥ 0");
        }
        if self.checkpoint_every == 0 {
            return bad("checkpoint_every", "must be > 0");
        }
        if !(1..=MAX_BN_IMAGES).contains(&self.bn_images) {
            return bad("bn_images", &format!("must be in 1..={MAX_BN_IMAGES}"));
        }
        if let Some(w) = &self.exit_weights {
            if w.len() != self.stages {
                return bad("exit_weights", "needs one weight per stage");
            }
            if w.iter().any(|x| !(x.is_finite() && *x >= 0.0)) || w.iter().sum::<f64>() <= 0.0 {
                return bad("exit_weights", "must be finite, ≥ 0 and not all 0");
            }
        }
        Ok(())
    }

    /// The exit weights normalised to sum 1 (`None`: 1/S each).
    pub fn normalised_exit_weights(&self) -> Option<Vec<f64>> {
        let w = self.exit_weights.as_ref()?;
        let sum: f64 = w.iter().sum();
        Some(w.iter().map(|x| x / sum).collect())
    }

    /// The same schedule with every phase's steps multiplied by `factor` (at least one step
    /// each) and a checkpoint about every 2.5 % of the run.
    pub fn scaled(&self, factor: f64) -> Self {
        let mut c = self.clone();
        for p in &mut c.phases {
            p.steps = ((p.steps as f64 * factor).round() as usize).max(1);
        }
        c.checkpoint_every = (c.total_steps() / 40).clamp(1, 500);
        c
    }

    /// The seed that draws the validation split: `val_seed`, else `seed`.
    pub fn split_seed(&self) -> u64 {
        self.val_seed.unwrap_or(self.seed)
    }

    /// Splits `data` into (train, validation) as this configuration says.
    pub fn split(&self, data: &Dataset) -> Result<(Dataset, Dataset)> {
        data.split_validation(self.val_size, self.split_seed())
    }

    /// Checks that a warm start from a supernet trained with `init` holds out the same
    /// validation split, so that no image it was validated on is trained on.
    pub fn check_same_split(&self, init: &TrainConfig) -> Result<()> {
        if (self.val_size, self.split_seed()) == (init.val_size, init.split_seed()) {
            return Ok(());
        }
        Err(Error::config(
            "init",
            format!(
                "the supernet held out another validation split (val_size {}, seed {}) than \
                 this run (val_size {}, seed {}): training would see its validation images; \
                 set val_size to {} and val_seed to {}",
                init.val_size,
                init.split_seed(),
                self.val_size,
                self.split_seed(),
                init.val_size,
                init.split_seed()
            ),
        ))
    }

    /// Total optimizer steps.
    pub fn total_steps(&self) -> usize {
        self.phases.iter().map(|p| p.steps).sum()
    }

    /// The phase index and step within it of global step `step`.
    pub fn locate(&self, step: usize) -> (usize, usize) {
        let mut left = step;
        for (i, p) in self.phases.iter().enumerate() {
            if left < p.steps {
                return (i, left);
            }
            left -= p.steps;
        }
        (self.phases.len(), 0)
    }

    /// Learning rate at global step `step`: short linear warm-up, then cosine to 0 per phase.
    pub fn lr(&self, step: usize) -> f64 {
        let (i, k) = self.locate(step);
        let Some(p) = self.phases.get(i) else {
            return 0.0;
        };
        let warm = (p.steps / 20).max(1);
        let cosine = 0.5 * (1.0 + (std::f64::consts::PI * k as f64 / p.steps as f64).cos());
        let ramp = if i == 0 {
            ((k + 1) as f64 / warm as f64).min(1.0)
        } else {
            1.0
        };
        p.lr * cosine * ramp
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero_f64(x: &f64) -> bool {
    *x == 0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_cuts_shape_the_preset() {
        let mut c = TrainConfig::schedule("quick", 3).unwrap();
        c.cuts = Some(FixedCuts {
            p: vec![0.625, 0.75],
            p_mid: Some(vec![0.25, 0.5]),
        });
        c.validate().unwrap();
        assert_eq!(c.preset(10).unwrap().cuts, c.cuts);
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<TrainConfig>(&json).unwrap(), c);
        c.sampled_cuts = true;
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("sampled_cuts"), "{err}");
        c.sampled_cuts = false;
        c.stages = 2;
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("cuts.p"), "{err}");
    }

    #[test]
    fn schedules_validate_and_locate() {
        for name in ["quick", "full"] {
            let c = TrainConfig::schedule(name, 3).unwrap();
            c.validate().unwrap();
            let total = c.total_steps();
            assert_eq!(c.locate(0), (0, 0));
            assert_eq!(c.locate(c.phases[0].steps), (1, 0));
            assert_eq!(c.locate(total), (c.phases.len(), 0));
            assert!(c.lr(total - 1) < c.phases[3].lr * 0.01);
            assert!(c.lr(c.phases[0].steps) > c.lr(c.phases[0].steps - 1));
        }
        assert!(TrainConfig::schedule("slow", 3).is_err());
    }

    #[test]
    fn extra_subnets_default_to_zero_and_stay_out_of_old_configs() {
        let c = TrainConfig::schedule("full", 3).unwrap();
        for key in ["widest_subnets", "first_stage_subnets"] {
            let mut v = serde_json::to_value(&c).unwrap();
            assert!(v.get(key).is_none(), "{v}");
            v[key] = serde_json::json!(2);
            let w: TrainConfig = serde_json::from_value(v).unwrap();
            assert_eq!(w.widest_subnets + w.first_stage_subnets, 2, "{key}");
            assert_eq!(serde_json::to_value(&w).unwrap()[key], 2);
        }
        let mut over = c.clone();
        over.first_stage_subnets = MAX_SUBNETS + 1 - over.random_subnets;
        assert!(over.validate().is_err(), "the sandwich is bounded");
        over.first_stage_subnets -= 1;
        over.validate().unwrap();
    }

    #[test]
    fn a_warm_start_keeps_the_validation_split_of_its_supernet() {
        let init = TrainConfig::schedule("full", 3).unwrap();
        assert!(serde_json::to_value(&init)
            .unwrap()
            .get("val_seed")
            .is_none());
        let mut run = init.clone();
        run.seed = init.seed + 10;
        let err = run.check_same_split(&init).unwrap_err().to_string();
        assert!(err.contains("init") && err.contains("val_seed"), "{err}");
        run.val_seed = Some(init.seed);
        run.check_same_split(&init).unwrap();
        assert_eq!(run.split_seed(), init.seed);
        run.val_size += 1;
        assert!(run.check_same_split(&init).is_err());
    }

    #[test]
    fn exit_weights_are_checked_and_normalised() {
        let mut c = TrainConfig::schedule("full", 3).unwrap();
        assert_eq!(c.normalised_exit_weights(), None);
        let v = serde_json::to_value(&c).unwrap();
        assert!(v.get("exit_weights").is_none() && v.get("sampled_cuts").is_none());
        c.exit_weights = Some(vec![1.0, 1.0, 2.0]);
        c.validate().unwrap();
        assert_eq!(c.normalised_exit_weights(), Some(vec![0.25, 0.25, 0.5]));
        for bad in [
            vec![1.0, 1.0],
            vec![1.0, -1.0, 1.0],
            vec![0.0; 3],
            vec![f64::NAN; 3],
        ] {
            c.exit_weights = Some(bad);
            let err = c.validate().unwrap_err().to_string();
            assert!(err.contains("exit_weights"), "{err}");
        }
    }

    #[test]
    fn out_of_range_values_name_their_field() {
        let good = TrainConfig::schedule("quick", 3).unwrap();
        type Edit = fn(&mut TrainConfig);
        let cases: [(&str, Edit); 7] = [
            ("batch", |c| c.batch = 100_000_000),
            ("batch", |c| c.batch = 0),
            ("val_size", |c| c.val_size = 0),
            ("random_subnets", |c| c.random_subnets = 40),
            ("bn_images", |c| c.bn_images = 10_000_000),
            ("phases.steps", |c| c.phases[0].steps = MAX_STEPS + 1),
            ("weight_decay", |c| c.weight_decay = -1.0),
        ];
        for (field, edit) in cases {
            let mut c = good.clone();
            edit(&mut c);
            let err = c.validate().unwrap_err().to_string();
            assert!(err.contains(field), "{field}: {err}");
        }
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let c = TrainConfig::schedule("quick", 3).unwrap();
        let mut v = serde_json::to_value(&c).unwrap();
        v["learning_rate"] = serde_json::json!(1.0);
        let err = serde_json::from_value::<TrainConfig>(v)
            .unwrap_err()
            .to_string();
        assert!(err.contains("learning_rate"), "{err}");
    }
}
