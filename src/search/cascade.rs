//! The confidence cascade of two static subnets (DESIGN §5), the baseline a multi-stage net
//! must beat: run the cheap subnet; when its confidence is not above the threshold, run the
//! big one as well and take its answer. Both costs are charged. As a two-exit net its records
//! are the cheap subnet's last exit and the big one's, at cumulative MACs (cheap, cheap + big),
//! so the thresholds are fitted exactly as a multi-stage net's are.
//!
//! The same pair with the cheap member's cost refunded on the inputs that go on
//! ([`CascadeCost::Reused`], cumulative MACs (cheap, big)) is the *reuse bound*: a multi-stage
//! net whose exit 1 were as good as the cheap subnet and whose last exit were as good as the
//! big one at the big one's cost alone, stage 1's work reused in full. A multi-stage net does
//! better only where its exits beat static subnets of their cost, so the bound's margin over the
//! cascade is what reusing stage 1 can buy on the data (DESIGN §5).

use serde::{Deserialize, Serialize};

use super::{pareto_filter, Measured};
use crate::error::{Error, Result};
use crate::runtime::thresholds::{fit_budget, pareto, ExitRecords, Operating};
use crate::space::SubnetConfig;

/// What an input that goes on to the big member costs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CascadeCost {
    /// Both members' MACs: the cascade as it runs.
    Both,
    /// The big member's MACs alone, the cheap member's work reused in full: the reuse bound.
    Reused,
}

/// A cascade of two static subnets with its threshold and what it gives.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CascadePoint {
    /// The subnet that always runs.
    pub cheap: SubnetConfig,
    /// The subnet that runs when the cheap one is unsure.
    pub big: SubnetConfig,
    /// One threshold on the cheap subnet's confidence; accuracy, average MACs (both costs
    /// charged) and the shares answered by each subnet.
    pub operating: Operating,
}

/// The records and cumulative MACs of the cascade `members` (each a member's records and MACs,
/// in the order they run; their last exits), charged by `cost`: an input that stops at member
/// k costs the sum of members 1 … k (`Both`) or the costliest of them (`Reused`).
pub fn cascade_records(
    members: &[(&ExitRecords, u64)],
    cost: CascadeCost,
) -> Result<(ExitRecords, Vec<u64>)> {
    let mut records = ExitRecords {
        confidence: Vec::new(),
        correct: Vec::new(),
    };
    let mut cum: Vec<u64> = Vec::new();
    for &(r, macs) in members {
        let (Some(c), Some(k)) = (r.confidence.last(), r.correct.last()) else {
            return Err(Error::config("cascade", "a member has no exit records"));
        };
        if let Some(first) = records.confidence.first() {
            if first.len() != c.len() {
                return Err(Error::config(
                    "cascade",
                    format!(
                        "members measured on {} and {} samples",
                        first.len(),
                        c.len()
                    ),
                ));
            }
        }
        records.confidence.push(c.clone());
        records.correct.push(k.clone());
        cum.push(match (cost, cum.last()) {
            (CascadeCost::Both, Some(&prev)) => prev.saturating_add(macs),
            (CascadeCost::Reused, Some(&prev)) => prev.max(macs),
            (_, None) => macs,
        });
    }
    Ok((records, cum))
}

/// The measured static subnets a cascade is built from, ascending cost. Every one is kept, not
/// only the accurate-for-their-cost ones: a subnet's use as the cheap member depends on how
/// well its confidence ranks its errors, which its accuracy does not show.
pub fn cascade_members(measured: &[Measured]) -> Vec<&Measured> {
    let mut members: Vec<&Measured> = measured.iter().collect();
    members.sort_by_key(|m| m.last_macs());
    members
}

/// Every (cheap, big) pair of `members` (ascending cost) whose big member costs more.
fn pairs<'a>(members: &[&'a Measured]) -> Vec<(&'a Measured, &'a Measured)> {
    let mut out = Vec::new();
    for (i, &a) in members.iter().enumerate() {
        for &b in &members[i + 1..] {
            if b.last_macs() > a.last_macs() {
                out.push((a, b));
            }
        }
    }
    out
}

/// The most accurate cascade of two of `members` (cheap one first) within `budget` average
/// MACs charged by `cost` (ties: the cheaper); `None` when no pair fits.
pub fn best_cascade_at(
    members: &[&Measured],
    budget: f64,
    cost: CascadeCost,
) -> Result<Option<CascadePoint>> {
    let mut best: Option<CascadePoint> = None;
    for (a, b) in pairs(members) {
        let (records, cum) = cascade_records(
            &[(&a.records, a.last_macs()), (&b.records, b.last_macs())],
            cost,
        )?;
        if let Some(op) = fit_budget(&records, &cum, budget)? {
            let better = best.as_ref().is_none_or(|p| {
                op.accuracy
                    .total_cmp(&p.operating.accuracy)
                    .then(p.operating.avg_macs.total_cmp(&op.avg_macs))
                    .is_gt()
            });
            if better {
                best = Some(CascadePoint {
                    cheap: a.config.clone(),
                    big: b.config.clone(),
                    operating: op,
                });
            }
        }
    }
    Ok(best)
}

/// The accuracy / average-MACs front over every threshold of every pair of `members`,
/// charged by `cost`.
pub fn cascade_front(members: &[&Measured], cost: CascadeCost) -> Result<Vec<CascadePoint>> {
    let mut points = Vec::new();
    for (a, b) in pairs(members) {
        let (records, cum) = cascade_records(
            &[(&a.records, a.last_macs()), (&b.records, b.last_macs())],
            cost,
        )?;
        for op in pareto(&records, &cum)? {
            points.push(CascadePoint {
                cheap: a.config.clone(),
                big: b.config.clone(),
                operating: op,
            });
        }
    }
    Ok(pareto_filter(points, |p| {
        (p.operating.avg_macs, p.operating.accuracy)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::Preset;

    fn member(config: SubnetConfig, macs: u64, conf: Vec<f32>, correct: Vec<bool>) -> Measured {
        let acc = correct.iter().filter(|c| **c).count() as f64 / correct.len() as f64;
        Measured {
            config,
            cum_macs: vec![macs],
            exit_accuracy: vec![acc],
            records: ExitRecords {
                confidence: vec![conf],
                correct: vec![correct],
            },
        }
    }

    #[test]
    fn a_cascade_charges_both_costs_and_beats_its_members_by_hand() {
        let preset = Preset::tiny(1, 10).unwrap();
        // Cheap: right on the two confident samples. Big: right on all but the last.
        let cheap = member(
            SubnetConfig::smallest(&preset),
            100,
            vec![0.9, 0.8, 0.4, 0.3],
            vec![true, true, false, false],
        );
        let big = member(
            SubnetConfig::largest(&preset),
            400,
            vec![0.9, 0.9, 0.9, 0.6],
            vec![true, true, true, false],
        );
        // A costly, poor member is kept but never wins.
        let worse = member(
            SubnetConfig {
                resolution: 28,
                ..SubnetConfig::largest(&preset)
            },
            500,
            vec![0.5; 4],
            vec![true, false, false, false],
        );
        let measured = [worse, big.clone(), cheap.clone()];
        let members = cascade_members(&measured);
        let costs: Vec<u64> = members.iter().map(|m| m.last_macs()).collect();
        assert_eq!(costs, vec![100, 400, 500]);
        // Budget 300: the two unsure samples go on to the big net, 100 + 0.5 · 400.
        let best = best_cascade_at(&members, 300.0, CascadeCost::Both)
            .unwrap()
            .unwrap();
        assert_eq!(best.operating.avg_macs, 300.0);
        assert_eq!(best.operating.accuracy, 0.75);
        assert_eq!(best.operating.exit_shares, vec![0.5, 0.5]);
        assert_eq!(
            (best.cheap.clone(), best.big.clone()),
            (cheap.config, big.config)
        );
        // Below the cheap net's own cost nothing fits; the front ends at the big net's
        // accuracy for less than both costs summed.
        assert!(best_cascade_at(&members, 99.0, CascadeCost::Both)
            .unwrap()
            .is_none());
        let front = cascade_front(&members, CascadeCost::Both).unwrap();
        let top = front.last().unwrap();
        assert_eq!(top.operating.accuracy, 0.75);
        assert!(top.operating.avg_macs < 500.0);
        // The reuse bound refunds the cheap net's 100 on the inputs that go on: the same
        // threshold costs 0.5 · 100 + 0.5 · 400 = 250 (the cascade: 300), so within 250 MACs
        // the bound reaches 0.75 and the cascade does not.
        let (records, cum) = cascade_records(
            &[(&cheap.records, 100), (&big.records, 400)],
            CascadeCost::Reused,
        )
        .unwrap();
        assert_eq!(cum, vec![100, 400]);
        let op = crate::runtime::thresholds::evaluate(&records, &cum, &[0.5]).unwrap();
        assert_eq!((op.avg_macs, op.accuracy), (250.0, 0.75));
        let bound = best_cascade_at(&members, 250.0, CascadeCost::Reused)
            .unwrap()
            .unwrap();
        assert_eq!(
            (bound.operating.avg_macs, bound.operating.accuracy),
            (250.0, 0.75)
        );
        assert!(best_cascade_at(&members, 250.0, CascadeCost::Both)
            .unwrap()
            .is_none_or(|p| p.operating.accuracy < 0.75));
        // A longer chain: each exit costs the members run so far, summed or the costliest.
        let chain = [
            (&cheap.records, 100),
            (&big.records, 400),
            (&big.records, 50),
        ];
        let both = cascade_records(&chain, CascadeCost::Both).unwrap();
        assert_eq!(both.1, vec![100, 500, 550]);
        assert_eq!(both.0.confidence.len(), 3);
        let reused = cascade_records(&chain, CascadeCost::Reused).unwrap();
        assert_eq!(reused.1, vec![100, 400, 400]);
    }

    #[test]
    fn members_measured_on_other_samples_are_an_error() {
        let preset = Preset::tiny(1, 10).unwrap();
        let a = member(SubnetConfig::smallest(&preset), 1, vec![0.5], vec![true]);
        let b = member(
            SubnetConfig::largest(&preset),
            2,
            vec![0.5, 0.5],
            vec![true, true],
        );
        let err = best_cascade_at(&[&a, &b], 10.0, CascadeCost::Both)
            .unwrap_err()
            .to_string();
        assert!(err.contains("cascade"), "{err}");
    }
}
