//! The training log: `log.csv` (one row per step) and `eval.jsonl` (one object per
//! evaluation). Resuming drops the rows past the checkpoint, so the log matches the weights.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::config::Phase;
use crate::atomic::write_atomic;
use crate::error::{Error, Result};

/// One evaluation: a subnet's accuracy per exit on the validation split.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalRow {
    /// Steps done when it was measured.
    pub step: usize,
    /// The phase that just ended.
    pub phase: Phase,
    /// Which subnet (`largest`, `smallest`).
    pub subnet: String,
    /// MACs up to each exit.
    pub cum_macs: Vec<u64>,
    /// Accuracy of each exit.
    pub accuracy: Vec<f64>,
}

impl EvalRow {
    /// One human line.
    pub fn describe(&self) -> String {
        let accs: Vec<String> = self
            .accuracy
            .iter()
            .zip(&self.cum_macs)
            .map(|(a, m)| format!("{:.2}% @ {:.2} M", a * 100.0, *m as f64 / 1e6))
            .collect();
        format!(
            "eval after {} ({} steps), {}: {}",
            self.phase.name(),
            self.step,
            self.subnet,
            accs.join(", ")
        )
    }
}

/// Appends to a run's log files.
#[derive(Debug)]
pub struct TrainLog {
    csv: File,
    evals: File,
    dir: std::path::PathBuf,
}

fn keep_until(path: &Path, step: usize, step_of: impl Fn(&str) -> Option<usize>) -> Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let mut kept = String::new();
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    for line in BufReader::new(file).lines() {
        let line = line.map_err(|e| Error::io(path, e))?;
        if step_of(&line).is_none_or(|s| s <= step) {
            kept.push_str(&line);
            kept.push('\n');
        }
    }
    write_atomic(path, kept.as_bytes())
}

impl TrainLog {
    /// Opens the log in `dir`, dropping rows past `step` (0 starts afresh).
    pub fn open(dir: &Path, stages: usize, step: usize) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::write(dir, e))?;
        let csv_path = dir.join("log.csv");
        let eval_path = dir.join("eval.jsonl");
        if step == 0 {
            let mut header = String::from("step,phase,lr,loss");
            for s in 1..=stages {
                header.push_str(&format!(",acc_exit{s}"));
            }
            header.push_str(",images_per_s,elapsed_s\n");
            write_atomic(&csv_path, header.as_bytes())?;
            write_atomic(&eval_path, b"")?;
        } else {
            keep_until(&csv_path, step, |l| l.split(',').next()?.parse().ok())?;
            keep_until(&eval_path, step, |l| {
                serde_json::from_str::<EvalRow>(l).ok().map(|r| r.step)
            })?;
        }
        let append = |p: &Path| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| Error::io(p, e))
        };
        Ok(TrainLog {
            csv: append(&csv_path)?,
            evals: append(&eval_path)?,
            dir: dir.to_path_buf(),
        })
    }

    /// Logs one step (accuracies are the largest subnet's on this batch).
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        &mut self,
        step: usize,
        phase: Phase,
        lr: f64,
        loss: f32,
        accs: &[f64],
        images_per_s: f64,
        elapsed_s: f64,
    ) -> Result<()> {
        let mut row = format!("{step},{},{lr:.6e},{loss:.5}", phase.name());
        for a in accs {
            row.push_str(&format!(",{a:.4}"));
        }
        row.push_str(&format!(",{images_per_s:.1},{elapsed_s:.1}\n"));
        self.csv
            .write_all(row.as_bytes())
            .map_err(|e| Error::io(self.dir.join("log.csv"), e))?;
        Ok(())
    }

    /// Logs one evaluation.
    pub fn eval(&mut self, row: &EvalRow) -> Result<()> {
        let mut line =
            serde_json::to_string(row).map_err(|e| Error::encode("a validation row", e))?;
        line.push('\n');
        self.evals
            .write_all(line.as_bytes())
            .and_then(|()| self.evals.flush())
            .map_err(|e| Error::io(self.dir.join("eval.jsonl"), e))?;
        Ok(())
    }
}
