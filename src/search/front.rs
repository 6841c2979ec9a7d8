//! What a search reports (`front.json`): per budget the chosen multi-stage net beside the best
//! static subnet, the best cascade of two static subnets and the reuse bound, each scored on the
//! test split with thresholds fitted on validation, and the whole curves (DESIGN §5).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{CascadePoint, FrontPoint};
use crate::atomic::write_atomic;
use crate::error::{Error, Result};
use crate::runtime::thresholds::Operating;
use crate::space::SubnetConfig;

/// Accuracy and cost of one subnet on validation and test.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scored {
    /// The subnet.
    pub config: SubnetConfig,
    /// On the validation split (thresholds fitted here).
    pub val: Operating,
    /// On the test split with the same thresholds.
    pub test: Operating,
}

/// A cascade of two static subnets on validation (threshold fitted) and test.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScoredCascade {
    /// The subnet every input runs.
    pub cheap: SubnetConfig,
    /// The subnet an unsure input runs next.
    pub big: SubnetConfig,
    /// On the validation split (threshold fitted here).
    pub val: Operating,
    /// On the test split with the same threshold.
    pub test: Operating,
}

/// The nets chosen for one average-MACs budget.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BudgetResult {
    /// The budget, in MACs.
    pub budget: f64,
    /// The searched multi-stage net, if one fits.
    pub multi_stage: Option<Scored>,
    /// The best static subnet, if one fits.
    pub best_static: Option<Scored>,
    /// The best cascade of two static subnets, if one fits.
    pub best_cascade: Option<ScoredCascade>,
    /// The best pair under the reuse bound (the cheap member's cost refunded on the inputs
    /// that go on: what a multi-stage net would reach with exits as good as two such nets), if
    /// one fits.
    #[serde(default)]
    pub reuse_bound: Option<ScoredCascade>,
}

/// One point of a curve: thresholds fitted on validation, scored on the test split.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    /// Accuracy on validation.
    pub val_accuracy: f64,
    /// Average MACs on validation.
    pub val_avg_macs: f64,
    /// Accuracy on the test split.
    pub accuracy: f64,
    /// Average MACs on the test split.
    pub avg_macs: f64,
}

impl CurvePoint {
    /// The point of a validation fit and its test score.
    pub fn new(val: &Operating, test: &Operating) -> Self {
        CurvePoint {
            val_accuracy: val.accuracy,
            val_avg_macs: val.avg_macs,
            accuracy: test.accuracy,
            avg_macs: test.avg_macs,
        }
    }
}

/// The curves of the Pareto plot, on the test split.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TestCurves {
    /// The multi-stage nets of the validation front.
    pub multi_stage: Vec<CurvePoint>,
    /// The static subnets of the validation front.
    pub best_static: Vec<CurvePoint>,
    /// The cascades of the validation front.
    pub static_cascade: Vec<CurvePoint>,
    /// The reuse bound (the cascades with the cheap member's cost refunded on the inputs that
    /// go on) at each point of its validation front.
    #[serde(default)]
    pub reuse_bound: Vec<CurvePoint>,
}

/// A search's report, as `front.json` holds it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Front {
    /// The multi-stage supernet searched.
    pub model: String,
    /// The static supernet of the baselines, if any.
    pub static_model: Option<String>,
    /// Held-out rank correlation of the multi-stage search's predictor.
    pub predictor_rank_correlation: Option<f64>,
    /// The same for the static search.
    pub static_predictor_rank_correlation: Option<f64>,
    /// Subnets measured by the multi-stage search.
    pub measured: usize,
    /// One result per budget, in the order asked.
    pub budgets: Vec<BudgetResult>,
    /// The largest static subnet, scored.
    pub largest_static: Option<Scored>,
    /// The multi-stage validation front.
    pub front: Vec<FrontPoint>,
    /// The static validation front.
    pub static_front: Vec<FrontPoint>,
    /// The cascade validation front.
    pub cascade_front: Vec<CascadePoint>,
    /// The curves on the test split.
    pub test_curves: TestCurves,
}

impl Front {
    /// Writes the report to `path` atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let json =
            serde_json::to_vec_pretty(self).map_err(|e| Error::encode("the search report", e))?;
        write_atomic(path, &json)
    }

    /// Reads a report written by [`Front::save`].
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        serde_json::from_str(&text)
            .map_err(|e| Error::data(path, format!("not a search report (front.json): {e}")))
    }

    /// The multi-stage net chosen for `budget` MACs (within 1 ppm), or for the first budget
    /// when `None`; the error lists the budgets the report has.
    pub fn chosen(&self, budget: Option<f64>) -> Result<&Scored> {
        let result = self
            .budgets
            .iter()
            .find(|b| budget.is_none_or(|w| (b.budget - w).abs() <= w * 1e-6))
            .ok_or_else(|| {
                let have: Vec<String> = self
                    .budgets
                    .iter()
                    .map(|b| format!("{}M", b.budget / 1e6))
                    .collect();
                Error::config(
                    "budget",
                    format!(
                        "the search has no result for it (it has: {})",
                        if have.is_empty() {
                            "none".to_string()
                        } else {
                            have.join(", ")
                        }
                    ),
                )
            })?;
        result.multi_stage.as_ref().ok_or_else(|| {
            Error::config(
                "budget",
                format!(
                    "the search found no multi-stage net within {}M MACs",
                    result.budget / 1e6
                ),
            )
        })
    }
}
