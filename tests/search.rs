//! The evolutionary search on a synthetic evaluator whose accuracy grows with MACs: budgets
//! are respected, the front is a Pareto front, and a saved search resumes where it stopped.

use enas4d::runtime::thresholds::ExitRecords;
use enas4d::search::{search, Evaluator, SearchOptions, SearchState};
use enas4d::space::{count, Preset, SubnetConfig};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Exit s is right on a sample with probability growing with its cumulative MACs; confidence
/// is higher where it is right.
struct Synthetic<'a> {
    preset: &'a Preset,
    calls: usize,
}

impl Evaluator for Synthetic<'_> {
    fn measure(&mut self, config: &SubnetConfig) -> enas4d::Result<ExitRecords> {
        self.calls += 1;
        let cum = count(self.preset, config)?.cum_macs;
        let mut rng = SmallRng::seed_from_u64(cum.iter().sum::<u64>());
        let n = 400;
        let mut records = ExitRecords::default();
        for &m in &cum {
            let p = 0.5 + 0.45 * (m as f64 / 8e6).min(1.0);
            let mut conf = Vec::with_capacity(n);
            let mut correct = Vec::with_capacity(n);
            for _ in 0..n {
                let ok = rng.random_bool(p);
                correct.push(ok);
                conf.push(if ok {
                    rng.random_range(0.5f32..1.0)
                } else {
                    rng.random_range(0.1f32..0.8)
                });
            }
            records.confidence.push(conf);
            records.correct.push(correct);
        }
        Ok(records)
    }
}

fn options(generations: usize) -> SearchOptions {
    SearchOptions {
        budgets: vec![2.5e6, 4e6],
        initial: 8,
        population: 4,
        generations,
        children: 16,
        measure_per_generation: 3,
        mutation_rate: 0.2,
        seed: 5,
        measurement: None,
    }
}

#[test]
fn search_respects_budgets_and_resumes() {
    let preset = Preset::tiny(3, 10).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");

    let mut eval = Synthetic {
        preset: &preset,
        calls: 0,
    };
    let mut state = SearchState::new(options(1));
    let mut last = (0, 0);
    search(&mut state, &preset, &mut eval, Some(&path), &mut |d, t| {
        last = (d, t)
    })
    .unwrap();
    assert_eq!(state.measured.len(), 8 + 3);
    assert_eq!(eval.calls, 11);
    let largest = SubnetConfig::largest(&preset);
    let seeded = &state.measured[2..8];
    assert!(
        seeded.iter().all(|m| m.config.p != largest.p
            && SubnetConfig {
                p: largest.p.clone(),
                ..m.config.clone()
            } == largest),
        "after the extremes come the largest nets at other cut choices"
    );
    assert!(state.predictor_rank_correlation.is_some());

    // Resume with one more generation: only that generation's subnets are measured.
    let mut resumed = SearchState::load(&path).unwrap();
    assert_eq!(resumed.measured.len(), 11);
    resumed.options = options(2);
    let mut eval2 = Synthetic {
        preset: &preset,
        calls: 0,
    };
    search(
        &mut resumed,
        &preset,
        &mut eval2,
        Some(&path),
        &mut |d, t| last = (d, t),
    )
    .unwrap();
    assert_eq!(
        eval2.calls, 3,
        "the initial subnets and generation 1 are not measured again"
    );
    assert_eq!(resumed.generation, 2);
    assert_eq!(last, (14, 14));

    for budget in [2.5e6, 4e6] {
        let best = resumed.best_at(budget).unwrap().expect("something fits");
        assert!(best.operating.avg_macs <= budget);
        best.config.validate(&preset).unwrap();
    }
    let front = resumed.front().unwrap();
    assert!(front.len() >= 2);
    for w in front.windows(2) {
        assert!(w[0].operating.avg_macs <= w[1].operating.avg_macs);
        assert!(w[0].operating.accuracy < w[1].operating.accuracy);
    }
    assert!(
        resumed.best_at(1.0).unwrap().is_none(),
        "nothing costs one MAC"
    );
}
