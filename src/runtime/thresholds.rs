//! Exit thresholds (DESIGN §3): the accuracy and average MACs of a threshold vector on a
//! labelled set, the thresholds that maximise accuracy under an average-MACs budget, and the
//! whole accuracy / average-MACs curve. Fitted on a validation split, never on the test split.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Per-sample exit outputs on a labelled set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ExitRecords {
    /// `confidence[s][i]`: exit s's confidence on sample i.
    pub confidence: Vec<Vec<f32>>,
    /// `correct[s][i]`: whether exit s's class is sample i's label.
    pub correct: Vec<Vec<bool>>,
}

impl ExitRecords {
    fn check(&self, cum_macs: &[u64]) -> Result<(usize, usize)> {
        let s = self.confidence.len();
        if s == 0 || s != self.correct.len() || s != cum_macs.len() {
            return Err(Error::config(
                "exit records",
                format!(
                    "{s} confidence rows, {} correctness rows, {} MAC counts",
                    self.correct.len(),
                    cum_macs.len()
                ),
            ));
        }
        let n = self.confidence[0].len();
        if n == 0
            || self.confidence.iter().any(|r| r.len() != n)
            || self.correct.iter().any(|r| r.len() != n)
        {
            return Err(Error::config(
                "exit records",
                "every exit needs one entry per sample, and at least one sample",
            ));
        }
        Ok((s, n))
    }
}

/// One operating point: thresholds and what they give.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Operating {
    /// τ_1 … τ_{S−1}.
    pub thresholds: Vec<f32>,
    /// Share of correct predictions at the exit taken.
    pub accuracy: f64,
    /// Σ_s share_s · cum_macs\[s\].
    pub avg_macs: f64,
    /// Share of samples leaving at each exit.
    pub exit_shares: Vec<f64>,
}

/// Accuracy and average MACs of `thresholds` (an input leaves at the first exit whose
/// confidence is strictly greater than its threshold, always at the last).
pub fn evaluate(records: &ExitRecords, cum_macs: &[u64], thresholds: &[f32]) -> Result<Operating> {
    let (s_n, n) = records.check(cum_macs)?;
    super::check_thresholds(thresholds, s_n)?;
    let mut exits = vec![0usize; s_n];
    let mut correct = 0usize;
    for i in 0..n {
        let s = (0..s_n - 1)
            .find(|&s| records.confidence[s][i] > thresholds[s])
            .unwrap_or(s_n - 1);
        exits[s] += 1;
        correct += usize::from(records.correct[s][i]);
    }
    let shares: Vec<f64> = exits.iter().map(|&e| e as f64 / n as f64).collect();
    Ok(Operating {
        thresholds: thresholds.to_vec(),
        accuracy: correct as f64 / n as f64,
        avg_macs: shares
            .iter()
            .zip(cum_macs)
            .map(|(sh, &m)| sh * m as f64)
            .sum(),
        exit_shares: shares,
    })
}

/// Candidate thresholds per exit: quantiles of its confidences (just below each, so that the
/// quantile sample itself exits), plus 0 (everything exits) and 1 (nothing does).
fn candidates(conf: &[f32], count: usize) -> Vec<f32> {
    let mut sorted: Vec<f32> = conf.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f32::total_cmp);
    let mut out = vec![0.0, 1.0];
    if !sorted.is_empty() {
        for q in 1..count {
            let v = sorted[(q * (sorted.len() - 1)) / count];
            out.push(f32::from_bits(v.to_bits().saturating_sub(1)).clamp(0.0, 1.0));
        }
    }
    out.sort_by(f32::total_cmp);
    out.dedup();
    out
}

/// Every operating point of a threshold grid: quantile candidates per exit, as many as keep the
/// grid near 20 000 points.
fn grid(records: &ExitRecords, cum_macs: &[u64]) -> Result<Vec<Operating>> {
    let (s_n, _) = records.check(cum_macs)?;
    if s_n == 1 {
        return Ok(vec![evaluate(records, cum_macs, &[])?]);
    }
    let per_exit = (20_000f64.powf(1.0 / (s_n - 1) as f64) as usize).clamp(2, 400);
    let cands: Vec<Vec<f32>> = records.confidence[..s_n - 1]
        .iter()
        .map(|c| candidates(c, per_exit))
        .collect();
    let mut points = Vec::new();
    let mut idx = vec![0usize; s_n - 1];
    loop {
        let t: Vec<f32> = idx.iter().zip(&cands).map(|(&i, c)| c[i]).collect();
        points.push(evaluate(records, cum_macs, &t)?);
        // Odometer over the candidate lists.
        let mut d = 0;
        loop {
            if d == idx.len() {
                return Ok(points);
            }
            idx[d] += 1;
            if idx[d] < cands[d].len() {
                break;
            }
            idx[d] = 0;
            d += 1;
        }
    }
}

/// The thresholds with the best accuracy whose average MACs stay within `budget` (ties as in
/// [`best_within`]); `None` when even leaving everything at exit 1 costs more.
pub fn fit_budget(
    records: &ExitRecords,
    cum_macs: &[u64],
    budget: f64,
) -> Result<Option<Operating>> {
    Ok(best_within(&grid(records, cum_macs)?, budget).cloned())
}

/// The point with the best accuracy among those whose average MACs stay within `budget`;
/// ties go to the cheaper, then to the earlier point. Every budget choice in the crate (the
/// fit on validation, the CLI, the browser API) goes through here.
pub fn best_within(points: &[Operating], budget: f64) -> Option<&Operating> {
    let mut best: Option<&Operating> = None;
    for p in points.iter().filter(|p| p.avg_macs <= budget) {
        let better = best.is_none_or(|b| {
            p.accuracy > b.accuracy || (p.accuracy == b.accuracy && p.avg_macs < b.avg_macs)
        });
        if better {
            best = Some(p);
        }
    }
    best
}

/// Which exit thresholds to run an exported net with.
#[derive(Clone, Debug, PartialEq)]
pub enum ThresholdChoice {
    /// The thresholds stored with the net (its shipped operating point).
    Default,
    /// One threshold for every early exit.
    Uniform(f32),
    /// One threshold per early exit, τ_1 … τ_{S−1}.
    PerExit(Vec<f32>),
    /// The best stored operating point within this many average MACs ([`best_within`]).
    Budget(f64),
}

impl ThresholdChoice {
    /// The thresholds this choice means for a net of `stages` exits whose stored thresholds
    /// are `stored` and whose measured operating points are `points`; checked to be S − 1
    /// values in [0, 1].
    pub fn resolve(&self, stages: usize, stored: &[f32], points: &[Operating]) -> Result<Vec<f32>> {
        let t = match self {
            ThresholdChoice::Default => stored.to_vec(),
            ThresholdChoice::Uniform(t) => {
                if !(0.0..=1.0).contains(t) {
                    return Err(Error::config(
                        "threshold",
                        format!("{t} is not a confidence in [0, 1]"),
                    ));
                }
                vec![*t; stages.saturating_sub(1)]
            }
            ThresholdChoice::PerExit(t) => t.clone(),
            ThresholdChoice::Budget(budget) => {
                if !(budget.is_finite() && *budget > 0.0) {
                    return Err(Error::config(
                        "budget",
                        format!("{budget} is not a number of MACs > 0"),
                    ));
                }
                match best_within(points, *budget) {
                    Some(p) => p.thresholds.clone(),
                    None if points.is_empty() => {
                        return Err(Error::config(
                            "budget",
                            "the model stores no operating points to choose from",
                        ))
                    }
                    None => {
                        let cheapest = points
                            .iter()
                            .map(|p| p.avg_macs)
                            .fold(f64::INFINITY, f64::min);
                        return Err(Error::config(
                            "budget",
                            format!(
                                "no operating point of this model within {:.3} M MACs (the cheapest costs {:.3} M)",
                                budget / 1e6,
                                cheapest / 1e6
                            ),
                        ));
                    }
                }
            }
        };
        super::check_thresholds(&t, stages)?;
        Ok(t)
    }
}

/// The accuracy / average-MACs Pareto front: ascending cost, strictly ascending accuracy.
pub fn pareto(records: &ExitRecords, cum_macs: &[u64]) -> Result<Vec<Operating>> {
    let mut points = grid(records, cum_macs)?;
    points.sort_by(|a, b| {
        a.avg_macs
            .total_cmp(&b.avg_macs)
            .then(b.accuracy.total_cmp(&a.accuracy))
    });
    let mut front: Vec<Operating> = Vec::new();
    for p in points {
        if front.last().is_none_or(|last| p.accuracy > last.accuracy) {
            front.push(p);
        }
    }
    Ok(front)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two exits, four samples: exit 1 is right on the two confident ones.
    fn records() -> ExitRecords {
        ExitRecords {
            confidence: vec![vec![0.9, 0.8, 0.4, 0.3], vec![0.95, 0.9, 0.9, 0.6]],
            correct: vec![
                vec![true, true, false, false],
                vec![true, true, true, false],
            ],
        }
    }

    #[test]
    fn should_evaluate_by_hand() {
        let macs = [100, 300];
        // τ = 0.5: samples 0, 1 leave at exit 1 (right), 2, 3 at exit 2 (right, wrong).
        let p = evaluate(&records(), &macs, &[0.5]).unwrap();
        assert_eq!(p.accuracy, 0.75);
        assert_eq!(p.exit_shares, vec![0.5, 0.5]);
        assert_eq!(p.avg_macs, 200.0);
        // τ = 1 never exits early; τ = 0 always leaves at exit 1.
        assert_eq!(evaluate(&records(), &macs, &[1.0]).unwrap().avg_macs, 300.0);
        let all1 = evaluate(&records(), &macs, &[0.0]).unwrap();
        assert_eq!((all1.accuracy, all1.avg_macs), (0.5, 100.0));
        // Strictly greater: a confidence equal to τ does not exit.
        assert_eq!(
            evaluate(&records(), &macs, &[0.8]).unwrap().exit_shares,
            vec![0.25, 0.75]
        );
    }

    #[test]
    fn should_fit_the_best_thresholds_under_a_budget() {
        let macs = [100, 300];
        let best = fit_budget(&records(), &macs, 200.0).unwrap().unwrap();
        assert_eq!((best.accuracy, best.avg_macs), (0.75, 200.0));
        // At 100 MACs only "everything at exit 1" fits.
        assert_eq!(
            fit_budget(&records(), &macs, 100.0)
                .unwrap()
                .unwrap()
                .accuracy,
            0.5
        );
        assert!(fit_budget(&records(), &macs, 99.0).unwrap().is_none());
    }

    #[test]
    fn should_resolve_every_threshold_choice() {
        let points = pareto(&records(), &[100, 300]).unwrap();
        let stored = [0.7];
        let r = |c: ThresholdChoice| c.resolve(2, &stored, &points);
        assert_eq!(r(ThresholdChoice::Default).unwrap(), vec![0.7]);
        assert_eq!(r(ThresholdChoice::Uniform(0.5)).unwrap(), vec![0.5]);
        assert_eq!(r(ThresholdChoice::PerExit(vec![0.25])).unwrap(), vec![0.25]);
        let within = r(ThresholdChoice::Budget(200.0)).unwrap();
        let p = evaluate(&records(), &[100, 300], &within).unwrap();
        assert_eq!((p.accuracy, p.avg_macs), (0.75, 200.0));
        for bad in [
            ThresholdChoice::Uniform(1.5),
            ThresholdChoice::PerExit(vec![0.5, 0.5]),
            ThresholdChoice::PerExit(vec![f32::NAN]),
            ThresholdChoice::Budget(99.0),
            ThresholdChoice::Budget(f64::NAN),
            ThresholdChoice::Budget(-1.0),
        ] {
            assert!(r(bad.clone()).is_err(), "{bad:?}");
        }
        assert!(ThresholdChoice::Budget(1e9)
            .resolve(2, &stored, &[])
            .is_err());
    }

    #[test]
    fn should_break_ties_towards_the_cheaper_then_the_earlier_point() {
        let op = |t: f32, accuracy: f64, avg_macs: f64| Operating {
            thresholds: vec![t],
            accuracy,
            avg_macs,
            exit_shares: vec![0.5, 0.5],
        };
        let points = [
            op(0.1, 0.8, 150.0),
            op(0.2, 0.8, 120.0),
            op(0.3, 0.8, 120.0),
            op(0.4, 0.9, 250.0),
        ];
        assert_eq!(best_within(&points, 200.0).unwrap().thresholds, vec![0.2]);
        assert_eq!(best_within(&points, 250.0).unwrap().thresholds, vec![0.4]);
        assert!(best_within(&points, 100.0).is_none());
    }

    #[test]
    fn should_trace_a_monotone_front() {
        let front = pareto(&records(), &[100, 300]).unwrap();
        assert_eq!(front.first().unwrap().avg_macs, 100.0);
        assert!(front
            .windows(2)
            .all(|w| w[0].avg_macs < w[1].avg_macs && w[0].accuracy < w[1].accuracy));
        assert_eq!(front.last().unwrap().accuracy, 0.75);
        assert!(evaluate(&records(), &[100], &[]).is_err());
    }
}
