//! The stage-wise pass with early exit (DESIGN §2–3): stage 1 alone, then stage 2 computing
//! only its channel slices and reading the cached activations of stage 1, and so on; after each
//! stage the exit's confidence decides whether to stop.

mod classification;
mod cpu;
mod gpu;
mod preprocess;
pub mod thresholds;

pub use classification::{Classification, ExitClassification};
pub use cpu::StageWiseCpu;
pub use gpu::{StageWiseGpu, GPU_MAX_BATCH};
pub use preprocess::{preprocess, MAX_SIDE};

use serde::Serialize;

use crate::error::{Error, Result};

/// What one exit said about an image.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExitOutput {
    /// Maximum softmax probability.
    pub confidence: f32,
    /// Arg-max class.
    pub class_index: usize,
}

/// The decision for one image.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Decision {
    /// Predicted class.
    pub class_index: usize,
    /// Its confidence.
    pub confidence: f32,
    /// The exit taken, numbered from 1.
    pub exit: usize,
    /// MACs spent (the counter's `cum_macs` of that exit).
    pub macs: u64,
    /// The exits evaluated, in order (exit 1 .. `exit`).
    pub per_exit: Vec<ExitOutput>,
    /// Logits of the exit taken.
    pub logits: Vec<f32>,
}

impl Decision {
    /// The decision of an image leaving at exit `s` (0-based) after `macs`, with what every
    /// exit up to it said (`per_exit`, exit s last) and exit s's logits.
    pub(crate) fn at_exit(s: usize, macs: u64, per_exit: Vec<ExitOutput>, logits: &[f32]) -> Self {
        let last = per_exit
            .last()
            .cloned()
            .unwrap_or_else(|| exit_output(logits));
        Decision {
            class_index: last.class_index,
            confidence: last.confidence,
            exit: s + 1,
            macs,
            per_exit,
            logits: logits.to_vec(),
        }
    }
}

/// Checks exit thresholds: S − 1 values in [0, 1] (exit S always stops).
pub fn check_thresholds(thresholds: &[f32], stages: usize) -> Result<()> {
    if thresholds.len() != stages.saturating_sub(1) {
        return Err(Error::config(
            "thresholds",
            format!(
                "{} values for {stages} stages, need {}",
                thresholds.len(),
                stages.saturating_sub(1)
            ),
        ));
    }
    if let Some((i, t)) = thresholds
        .iter()
        .enumerate()
        .find(|(_, t)| !(0.0..=1.0).contains(*t))
    {
        return Err(Error::config(
            format!("thresholds[{i}]"),
            format!("{t} is not in [0, 1]"),
        ));
    }
    Ok(())
}

/// Checks an image (`[3, R, R]` at the plan's resolution, finite) and the thresholds.
pub(crate) fn check_input(
    image: &[f32],
    thresholds: &[f32],
    plan: &crate::space::Plan,
) -> Result<()> {
    check_thresholds(thresholds, plan.stages)?;
    let r = plan.resolution;
    if image.len() != 3 * r * r {
        return Err(Error::Shape {
            op: "classify",
            what: "image",
            expected: 3 * r * r,
            got: image.len(),
        });
    }
    if image.iter().any(|v| !v.is_finite()) {
        return Err(Error::config("image", "holds a NaN or infinite pixel"));
    }
    Ok(())
}

/// Softmax confidence and arg-max of one exit's logits (first maximum on ties).
pub fn exit_output(logits: &[f32]) -> ExitOutput {
    let (mut arg, mut top) = (0, f32::NEG_INFINITY);
    for (i, &v) in logits.iter().enumerate() {
        if v > top || i == 0 {
            top = v;
            arg = i;
        }
    }
    let sum: f64 = logits
        .iter()
        .map(|&v| (f64::from(v) - f64::from(top)).exp())
        .sum();
    ExitOutput {
        confidence: (1.0 / sum) as f32,
        class_index: arg,
    }
}
