//! CIFAR-10 and CIFAR-100 in their binary versions.
//!
//! CIFAR-10: `data_batch_{1..5}.bin` / `test_batch.bin`, records of 1 label byte + 3072 pixel
//! bytes (32×32, R then G then B planes), class names in `batches.meta.txt`. CIFAR-100:
//! `train.bin` / `test.bin`, records of a coarse and a fine label byte + 3072 pixel bytes, fine
//! class names in `fine_label_names.txt`.

use std::path::{Path, PathBuf};

use super::Dataset;
use crate::error::{Error, Result};

const PIXELS: usize = 3 * 32 * 32;

fn class_names(path: &Path, count: usize) -> Vec<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| {
            s.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .filter(|names| names.len() == count)
        .unwrap_or_else(|| (0..count).map(|i| format!("class {i}")).collect())
}

/// Loads the training (all five batches) or test split of CIFAR-10 or CIFAR-100 from `dir`,
/// telling the two apart by their file names.
pub fn load_cifar(dir: &Path, train: bool) -> Result<Dataset> {
    let (files, label_bytes, classes): (Vec<PathBuf>, usize, Vec<String>) =
        if dir.join("test_batch.bin").exists() {
            let files = if train {
                (1..=5)
                    .map(|i| dir.join(format!("data_batch_{i}.bin")))
                    .collect()
            } else {
                vec![dir.join("test_batch.bin")]
            };
            (files, 1, class_names(&dir.join("batches.meta.txt"), 10))
        } else if dir.join("test.bin").exists() {
            let file = dir.join(if train { "train.bin" } else { "test.bin" });
            (
                vec![file],
                2,
                class_names(&dir.join("fine_label_names.txt"), 100),
            )
        } else {
            return Err(Error::data(
                dir,
                "neither CIFAR-10 (test_batch.bin) nor CIFAR-100 (test.bin) binary files",
            ));
        };
    let record = label_bytes + PIXELS;
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for file in &files {
        let bytes = std::fs::read(file).map_err(|e| Error::io(file, e))?;
        if bytes.is_empty() || bytes.len() % record != 0 {
            return Err(Error::data(
                file,
                format!(
                    "{} bytes is not a whole number of {record}-byte records",
                    bytes.len()
                ),
            ));
        }
        for rec in bytes.chunks_exact(record) {
            let label = rec[label_bytes - 1];
            if label as usize >= classes.len() {
                return Err(Error::data(
                    file,
                    format!("label {label} but only {} classes", classes.len()),
                ));
            }
            labels.push(u32::from(label));
            pixels.extend_from_slice(&rec[label_bytes..]);
        }
    }
    Dataset::new(pixels, labels, classes, (3, 32, 32))
}
