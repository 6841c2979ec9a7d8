//! Searching the trained supernet for multi-stage subnets and exit thresholds under an
//! average-MACs budget (DESIGN §5): evolution (population, mutation, crossover, constraint by
//! rejection, fixed seed) screened by an accuracy predictor, every candidate measured on the
//! validation split with thresholds fitted there; resumable.

mod cascade;
mod front;
mod measure;
mod plot;
mod predictor;

use std::path::Path;

use rand::rngs::SmallRng;
use rand::seq::IndexedRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

pub use cascade::{
    best_cascade_at, cascade_front, cascade_members, cascade_records, CascadeCost, CascadePoint,
};
pub use front::{BudgetResult, CurvePoint, Front, Scored, ScoredCascade, TestCurves};
pub use measure::SupernetEvaluator;
pub use plot::{plot_front, Series};
pub use predictor::{cross_validated_rank, features, spearman, Predictor};

use crate::atomic::write_atomic;
use crate::error::{Error, Result};
use crate::runtime::thresholds::{fit_budget, pareto, ExitRecords, Operating};
use crate::space::{count, Preset, SubnetConfig};

/// Measures a subnet: every exit's per-sample confidence and correctness on the validation
/// split (after BN re-estimation).
pub trait Evaluator {
    /// The records of `config`.
    fn measure(&mut self, config: &SubnetConfig) -> Result<ExitRecords>;
}

/// Search settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchOptions {
    /// Average-MACs budgets searched in turn, one per generation (cycled).
    pub budgets: Vec<f64>,
    /// Subnets measured before evolution: the largest, the smallest, the largest at each
    /// choice of stage cuts and at each resolution, the largest under a shallow stage 1 at each
    /// resolution (S ≥ 2), then random ones.
    pub initial: usize,
    /// Parents kept per generation.
    pub population: usize,
    /// Generations.
    pub generations: usize,
    /// Children proposed per generation (screened by the predictor).
    pub children: usize,
    /// Children measured per generation (the predictor's best).
    pub measure_per_generation: usize,
    /// Mutation rate per choice.
    pub mutation_rate: f64,
    /// Seed.
    pub seed: u64,
    /// How each subnet is measured, kept so that a resume measures the same way (the evolution
    /// does not read it); `None` in states saved before it was recorded.
    #[serde(default)]
    pub measurement: Option<Measurement>,
}

/// How a search measures each subnet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Measurement {
    /// Validation images.
    pub val_images: usize,
    /// Training images for BN re-estimation.
    pub bn_images: usize,
}

impl SearchOptions {
    /// Checks the numbers.
    pub fn validate(&self) -> Result<()> {
        if self.budgets.is_empty() || self.budgets.iter().any(|b| !(b.is_finite() && *b > 0.0)) {
            return Err(Error::config(
                "budgets",
                "need at least one finite budget > 0",
            ));
        }
        if self.initial < 4 || self.population == 0 || self.measure_per_generation == 0 {
            return Err(Error::config(
                "search",
                "initial ≥ 4, population and measure_per_generation > 0",
            ));
        }
        if self.children < self.measure_per_generation {
            return Err(Error::config(
                "children",
                "must be ≥ measure_per_generation",
            ));
        }
        if !(0.0..=1.0).contains(&self.mutation_rate) {
            return Err(Error::config("mutation_rate", "must be in [0, 1]"));
        }
        Ok(())
    }
}

/// One measured subnet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    /// The subnet.
    pub config: SubnetConfig,
    /// MACs up to each exit.
    pub cum_macs: Vec<u64>,
    /// Accuracy of each exit on the validation split.
    pub exit_accuracy: Vec<f64>,
    /// Per-sample records on the validation split.
    pub records: ExitRecords,
}

impl Measured {
    /// MACs up to the last exit (0 without exits).
    pub fn last_macs(&self) -> u64 {
        self.cum_macs.last().copied().unwrap_or(0)
    }

    /// The best operating point within `budget`, if any.
    pub fn at_budget(&self, budget: f64) -> Result<Option<Operating>> {
        fit_budget(&self.records, &self.cum_macs, budget)
    }
}

/// A point of the searched front: subnet, thresholds and what they give on validation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FrontPoint {
    /// The subnet.
    pub config: SubnetConfig,
    /// Thresholds, accuracy, average MACs and exit shares.
    pub operating: Operating,
}

/// The persistent state of a search (resumable).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SearchState {
    /// The settings it was started with.
    pub options: SearchOptions,
    /// Every measured subnet, in order.
    pub measured: Vec<Measured>,
    /// Generations completed.
    pub generation: usize,
    /// Predictor rank correlation (Spearman, last exit) under 4-fold cross-validation over
    /// every measured subnet.
    pub predictor_rank_correlation: Option<f64>,
}

impl SearchState {
    /// A fresh state.
    pub fn new(options: SearchOptions) -> Self {
        SearchState {
            options,
            measured: Vec::new(),
            generation: 0,
            predictor_rank_correlation: None,
        }
    }

    /// Loads a saved state.
    pub fn load(path: &Path) -> Result<Self> {
        let s = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        serde_json::from_str(&s).map_err(|e| Error::data(path, format!("search state: {e}")))
    }

    /// Continues this state under `options`: more (or as many) generations extend the search;
    /// any other change of settings is an error naming the setting, since the measured subnets
    /// and the generations run so far depend on them.
    pub fn resume_with(&mut self, options: &SearchOptions) -> Result<()> {
        let value = |o: &SearchOptions| {
            serde_json::to_value(o).map_err(|e| Error::encode("the search options", e))
        };
        let (old, new) = (value(&self.options)?, value(options)?);
        // A state saved before the measurement was recorded takes the one given now.
        let changed = old.as_object().and_then(|o| {
            o.iter().find(|(k, v)| {
                let free =
                    k.as_str() == "generations" || (k.as_str() == "measurement" && v.is_null());
                !free && new.get(k.as_str()) != Some(v)
            })
        });
        if let Some((field, was)) = changed {
            return Err(Error::config(
                field.clone(),
                format!(
                    "the search being resumed used {was}, now {}; resume with its settings or \
                     search into another folder",
                    new[field]
                ),
            ));
        }
        if options.generations < self.generation {
            return Err(Error::config(
                "generations",
                format!(
                    "the search being resumed has already run {} generations, more than {}",
                    self.generation, options.generations
                ),
            ));
        }
        self.options = options.clone();
        Ok(())
    }

    /// Saves atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let s = serde_json::to_vec(self).map_err(|e| Error::encode("the search state", e))?;
        write_atomic(path, &s)
    }

    /// The accuracy / average-MACs Pareto front over every operating point of every
    /// measured subnet.
    pub fn front(&self) -> Result<Vec<FrontPoint>> {
        let mut points = Vec::new();
        for m in &self.measured {
            for op in pareto(&m.records, &m.cum_macs)? {
                points.push(FrontPoint {
                    config: m.config.clone(),
                    operating: op,
                });
            }
        }
        Ok(pareto_filter(points, |p| {
            (p.operating.avg_macs, p.operating.accuracy)
        }))
    }

    /// The best measured (subnet, operating point) within `budget`.
    pub fn best_at(&self, budget: f64) -> Result<Option<FrontPoint>> {
        let mut best: Option<FrontPoint> = None;
        for m in &self.measured {
            if let Some(op) = m.at_budget(budget)? {
                if best
                    .as_ref()
                    .is_none_or(|b| op.accuracy > b.operating.accuracy)
                {
                    best = Some(FrontPoint {
                        config: m.config.clone(),
                        operating: op,
                    });
                }
            }
        }
        Ok(best)
    }
}

/// Keeps the points no other point beats (cheaper-or-equal and strictly more accurate),
/// ascending cost.
pub fn pareto_filter<T>(mut points: Vec<T>, key: impl Fn(&T) -> (f64, f64)) -> Vec<T> {
    points.sort_by(|a, b| {
        let (ka, kb) = (key(a), key(b));
        ka.0.total_cmp(&kb.0).then(kb.1.total_cmp(&ka.1))
    });
    let mut out: Vec<T> = Vec::new();
    for p in points {
        if out.last().is_none_or(|l| key(&p).1 > key(l).1) {
            out.push(p);
        }
    }
    out
}

fn measure_into(
    state: &mut SearchState,
    preset: &Preset,
    config: SubnetConfig,
    eval: &mut dyn Evaluator,
    path: Option<&Path>,
) -> Result<()> {
    if state.measured.iter().any(|m| m.config == config) {
        return Ok(());
    }
    let records = eval.measure(&config)?;
    let cum_macs = count(preset, &config)?.cum_macs;
    let exit_accuracy = records
        .correct
        .iter()
        .map(|c| c.iter().filter(|x| **x).count() as f64 / c.len().max(1) as f64)
        .collect();
    state.measured.push(Measured {
        config,
        cum_macs,
        exit_accuracy,
        records,
    });
    if let Some(p) = path {
        state.save(p)?;
    }
    Ok(())
}

/// Feature rows and accuracy rows, one of each per subnet.
type Samples = (Vec<Vec<f64>>, Vec<Vec<f64>>);

/// Features and accuracies of the measured subnets.
fn samples(preset: &Preset, measured: &[Measured]) -> Result<Samples> {
    let x = measured
        .iter()
        .map(|m| features(preset, &m.config))
        .collect::<Result<_>>()?;
    let y = measured.iter().map(|m| m.exit_accuracy.clone()).collect();
    Ok((x, y))
}

/// With S ≥ 2, the largest subnet at each resolution (largest first) with stage 1 at the
/// smallest depth and at the largest, then the smallest, kernel: the cheap-first-exit nets that
/// `first_stage_subnets` trains (DESIGN §4).
fn shallow_first_stages(preset: &Preset) -> Vec<SubnetConfig> {
    let (Some(&depth), Some(&small), Some(&large)) = (
        preset.depths.first(),
        preset.kernels.first(),
        preset.kernels.last(),
    ) else {
        return Vec::new();
    };
    if preset.stages < 2 {
        return Vec::new();
    }
    let mut out = Vec::new();
    for &resolution in preset.resolutions.iter().rev() {
        for kernel in [large, small] {
            let mut c = SubnetConfig {
                resolution,
                ..SubnetConfig::largest(preset)
            };
            c.depth[0].iter_mut().for_each(|d| *d = depth);
            c.kernel[0].iter_mut().for_each(|k| *k = kernel);
            out.push(c);
        }
    }
    out
}

/// Runs (or continues) the search; `progress(done, total)` is called after each measurement.
pub fn search(
    state: &mut SearchState,
    preset: &Preset,
    eval: &mut dyn Evaluator,
    path: Option<&Path>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<()> {
    let o = state.options.clone();
    o.validate()?;
    let total = o.initial + o.generations * o.measure_per_generation;
    let mut rng = SmallRng::seed_from_u64(o.seed);
    // The nets training runs every step (sandwich rule, DESIGN §4): the extremes, the largest
    // at each choice of cuts (so that the front reaches the wide nets with cheap early exits)
    // and at each resolution, the largest under a shallow stage 1; then random subnets.
    let mut initial = vec![
        SubnetConfig::largest(preset),
        SubnetConfig::smallest(preset),
    ];
    let per_resolution = preset.resolutions.iter().map(|&r| SubnetConfig {
        resolution: r,
        ..SubnetConfig::largest(preset)
    });
    for c in SubnetConfig::largest_per_cuts(preset)
        .into_iter()
        .chain(per_resolution)
        .chain(shallow_first_stages(preset))
    {
        if initial.len() < o.initial && !initial.contains(&c) {
            initial.push(c);
        }
    }
    while initial.len() < o.initial {
        initial.push(SubnetConfig::random(preset, &mut rng));
    }
    for c in initial {
        measure_into(state, preset, c, eval, path)?;
        progress(state.measured.len().min(total), total);
    }
    while state.generation < o.generations {
        let g = state.generation;
        let budget = o.budgets[g % o.budgets.len()];
        let mut grng = SmallRng::seed_from_u64(o.seed.wrapping_add(1000 + g as u64));
        let (x, y) = samples(preset, &state.measured)?;
        let predictor = Predictor::fit(&x, &y)?;
        // Parents: the measured subnets best at this generation's budget.
        let mut scored: Vec<(f64, &Measured)> = Vec::new();
        for m in &state.measured {
            if let Some(op) = m.at_budget(budget)? {
                scored.push((op.accuracy, m));
            }
        }
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        let parents: Vec<SubnetConfig> = scored
            .iter()
            .take(o.population)
            .map(|(_, m)| m.config.clone())
            .collect();
        let parents = if parents.is_empty() {
            vec![SubnetConfig::smallest(preset)]
        } else {
            parents
        };
        let mut children: Vec<(f64, SubnetConfig)> = Vec::new();
        let mut tries = 0;
        while children.len() < o.children && tries < o.children * 50 {
            tries += 1;
            let a = parents.choose(&mut grng).expect("non-empty");
            let child = if tries % 2 == 0 {
                let b = parents.choose(&mut grng).expect("non-empty");
                a.crossover(b, &mut grng)
                    .mutate(preset, o.mutation_rate, &mut grng)
            } else {
                a.mutate(preset, o.mutation_rate, &mut grng)
            };
            let cum = count(preset, &child)?.cum_macs;
            // Constraint by rejection: exit 1 alone must fit the budget.
            if cum[0] as f64 > budget
                || state.measured.iter().any(|m| m.config == child)
                || children.iter().any(|(_, c)| *c == child)
            {
                continue;
            }
            let pred = predictor.predict(&features(preset, &child)?);
            let last = *cum.last().expect("one exit at least") as f64;
            let score = pred[pred.len() - 1] - 0.05 * ((last / budget) - 1.0).max(0.0);
            children.push((score, child));
        }
        children.sort_by(|a, b| b.0.total_cmp(&a.0));
        for (_, c) in children.into_iter().take(o.measure_per_generation) {
            measure_into(state, preset, c, eval, path)?;
            progress(state.measured.len().min(total), total);
        }
        state.generation += 1;
        if let Some(p) = path {
            state.save(p)?;
        }
    }
    let (x, y) = samples(preset, &state.measured)?;
    state.predictor_rank_correlation = cross_validated_rank(&x, &y, 4, o.seed)?;
    if let Some(p) = path {
        state.save(p)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resume_extends_generations_and_refuses_other_changes() {
        let options = SearchOptions {
            budgets: vec![2e6],
            initial: 8,
            population: 4,
            generations: 3,
            children: 16,
            measure_per_generation: 3,
            mutation_rate: 0.2,
            seed: 5,
            measurement: Some(Measurement {
                val_images: 100,
                bn_images: 50,
            }),
        };
        let mut state = SearchState::new(options.clone());
        state.generation = 3;
        let more = SearchOptions {
            generations: 6,
            ..options.clone()
        };
        state.resume_with(&more).unwrap();
        assert_eq!(state.options, more);
        let fewer = SearchOptions {
            generations: 2,
            ..options.clone()
        };
        let err = state.resume_with(&fewer).unwrap_err().to_string();
        assert!(err.contains("generations"), "{err}");
        let other = SearchOptions {
            seed: 6,
            ..more.clone()
        };
        let err = state.resume_with(&other).unwrap_err().to_string();
        assert!(
            err.contains("seed") && err.contains('5') && err.contains('6'),
            "{err}"
        );
        assert_eq!(state.options, more, "a refused resume changes nothing");
        let fewer_bn = SearchOptions {
            measurement: Some(Measurement {
                val_images: 100,
                bn_images: 20,
            }),
            ..more.clone()
        };
        let err = state.resume_with(&fewer_bn).unwrap_err().to_string();
        assert!(
            err.contains("measurement") && err.contains("50") && err.contains("20"),
            "{err}"
        );
        // A state saved before the measurement was recorded takes the one given now.
        state.options.measurement = None;
        state.resume_with(&fewer_bn).unwrap();
        assert_eq!(state.options, fewer_bn);
    }

    #[test]
    fn shallow_first_stages_cut_only_stage_one() {
        assert!(shallow_first_stages(&Preset::tiny(1, 10).unwrap()).is_empty());
        let preset = Preset::tiny(2, 10).unwrap();
        let largest = SubnetConfig::largest(&preset);
        let seeds = shallow_first_stages(&preset);
        assert_eq!(seeds.len(), 2 * preset.resolutions.len());
        for c in &seeds {
            c.validate(&preset).unwrap();
            assert!(c.depth[0].iter().all(|&d| d == preset.depths[0]));
            assert_eq!(
                (&c.depth[1], &c.kernel[1]),
                (&largest.depth[1], &largest.kernel[1])
            );
            assert_eq!((&c.expand, &c.p), (&largest.expand, &largest.p));
            let cum = count(&preset, c).unwrap().cum_macs;
            let full = count(
                &preset,
                &SubnetConfig {
                    resolution: c.resolution,
                    ..largest.clone()
                },
            )
            .unwrap()
            .cum_macs;
            assert!(cum[0] < full[0], "a shallow stage 1 is a cheaper exit 1");
        }
        assert_eq!(seeds[0].resolution, *preset.resolutions.last().unwrap());
    }
}
