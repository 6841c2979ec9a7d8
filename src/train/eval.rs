//! Evaluating a subnet: BN re-estimation, then every exit on a labelled set in one
//! all-exits pass per batch.

use burn::tensor::{Device, Tensor, TensorData};

use crate::data::{to_batch, Dataset};
use crate::error::{Error, Result};
use crate::runtime::thresholds::ExitRecords;
use crate::space::Plan;
use crate::supernet::{forward, BnMode, BnRecorder, BnStats, MaskCache, PassOptions, Supernet};

/// Images per evaluation batch.
pub const EVAL_BATCH: usize = 250;

/// The images at `indices` as a tensor at the plan's resolution.
pub fn image_tensor(
    data: &Dataset,
    indices: &[usize],
    resolution: usize,
    device: &Device,
) -> Result<Tensor<4>> {
    let v = to_batch(data, indices, resolution, None)?;
    Ok(Tensor::from_data(
        TensorData::new(v, [indices.len(), 3, resolution, resolution]),
        device,
    ))
}

/// Re-estimates every BN layer's statistics for `plan` on the first `images` of `data`
/// (in batches of [`EVAL_BATCH`]; at least one batch).
pub fn calibrate(
    net: &Supernet,
    plan: &Plan,
    data: &Dataset,
    images: usize,
    device: &Device,
) -> Result<BnStats> {
    let n = images.min(data.len());
    if n == 0 {
        return Err(Error::config("bn_images", "no calibration images"));
    }
    let batch = EVAL_BATCH.min(n);
    let mut rec = BnRecorder::default();
    let mut masks = MaskCache::new(device);
    for start in (0..n - n % batch).step_by(batch) {
        let idx: Vec<usize> = (start..start + batch).collect();
        let x = image_tensor(data, &idx, plan.resolution, device)?;
        rec.next_batch();
        forward(
            net,
            plan,
            x,
            &mut masks,
            PassOptions {
                bn: BnMode::Record(&mut rec),
                dropout: 0.0,
                detach_early_exits: false,
                composed: false,
            },
        )?;
    }
    rec.finish()
}

/// Every exit's logits on `data`, one `[images × classes]` row-major vector per exit.
pub fn exit_logits(
    net: &Supernet,
    plan: &Plan,
    stats: &BnStats,
    data: &Dataset,
    device: &Device,
) -> Result<Vec<Vec<f32>>> {
    let mut out = vec![Vec::with_capacity(data.len() * plan.classes); plan.stages];
    let mut masks = MaskCache::new(device);
    for start in (0..data.len()).step_by(EVAL_BATCH) {
        let idx: Vec<usize> = (start..(start + EVAL_BATCH).min(data.len())).collect();
        let x = image_tensor(data, &idx, plan.resolution, device)?;
        let logits = forward(
            net,
            plan,
            x,
            &mut masks,
            PassOptions {
                bn: BnMode::Fixed(stats),
                dropout: 0.0,
                detach_early_exits: false,
                composed: false,
            },
        )?;
        for (s, l) in logits.into_iter().enumerate() {
            let v = l
                .into_data()
                .try_into_vec::<f32>()
                .map_err(|e| Error::Device(format!("reading logits: {e:?}")))?;
            if v.iter().any(|x| !x.is_finite()) {
                return Err(Error::config(
                    "supernet",
                    "an exit produced non-finite logits",
                ));
            }
            out[s].extend(v);
        }
    }
    Ok(out)
}

/// Per-sample confidence (max softmax probability) and correctness at every exit.
pub fn exit_records(
    net: &Supernet,
    plan: &Plan,
    stats: &BnStats,
    data: &Dataset,
    device: &Device,
) -> Result<ExitRecords> {
    let logits = exit_logits(net, plan, stats, data, device)?;
    Ok(records_from_logits(&logits, plan.classes, &data.labels))
}

/// Per-sample confidence and correctness from every exit's logits (see [`exit_logits`]).
fn records_from_logits(logits: &[Vec<f32>], classes: usize, labels: &[u32]) -> ExitRecords {
    let (confidence, correct) = logits
        .iter()
        .map(|exit| {
            exit.chunks(classes)
                .zip(labels)
                .map(|(row, &label)| {
                    let (conf, class) = softmax_top(row);
                    (conf, class == label as usize)
                })
                .unzip()
        })
        .unzip();
    ExitRecords {
        confidence,
        correct,
    }
}

/// Max softmax probability and its class.
pub fn softmax_top(row: &[f32]) -> (f32, usize) {
    let (mut best, mut arg) = (f32::NEG_INFINITY, 0);
    for (i, &v) in row.iter().enumerate() {
        if v > best {
            best = v;
            arg = i;
        }
    }
    let sum: f32 = row.iter().map(|v| (v - best).exp()).sum();
    (1.0 / sum, arg)
}

/// Accuracy of every exit.
pub fn exit_accuracies(records: &ExitRecords) -> Vec<f64> {
    records
        .correct
        .iter()
        .map(|c| c.iter().filter(|x| **x).count() as f64 / c.len().max(1) as f64)
        .collect()
}
