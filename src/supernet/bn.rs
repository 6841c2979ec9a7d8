//! Batch norm with three modes: batch statistics (training), fixed statistics (evaluation
//! and export) and recording (BN re-estimation, DESIGN §4).

use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::forward::leading;
use super::params::Bn;
use crate::elastic;
use crate::error::{Error, Result};

pub use crate::elastic::BN_EPS;

/// Per-subnet statistics of every batch-norm layer, in execution order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BnStats {
    /// `(mean, var)` of each layer over its active channels.
    pub layers: Vec<(Vec<f32>, Vec<f32>)>,
}

/// Sums of batch means and second moments, turned into [`BnStats`] by [`BnRecorder::finish`].
#[derive(Clone, Debug, Default)]
pub struct BnRecorder {
    sums: Vec<(Vec<f64>, Vec<f64>)>,
    batches: usize,
    index: usize,
}

impl BnRecorder {
    /// Marks the start of the next calibration batch.
    pub fn next_batch(&mut self) {
        self.batches += 1;
        self.index = 0;
    }

    /// The statistics averaged over every recorded batch (equal-sized batches).
    pub fn finish(self) -> Result<BnStats> {
        if self.batches == 0 {
            return Err(Error::config("bn", "no calibration batch was recorded"));
        }
        let n = self.batches as f64;
        let layers = self
            .sums
            .into_iter()
            .map(|(m, sq)| {
                let mean: Vec<f32> = m.iter().map(|v| (v / n) as f32).collect();
                let var = m
                    .iter()
                    .zip(&sq)
                    .map(|(m, sq)| ((sq / n) - (m / n).powi(2)).max(0.0) as f32)
                    .collect();
                (mean, var)
            })
            .collect();
        Ok(BnStats { layers })
    }
}

/// Which statistics a forward pass normalises with.
#[derive(Debug)]
pub enum BnMode<'a> {
    /// The batch's own (training).
    Batch,
    /// Fixed statistics, layer by layer.
    Fixed(&'a BnStats),
    /// The batch's own, also recorded.
    Record(&'a mut BnRecorder),
}

fn to_vec(t: Tensor<1>) -> Result<Vec<f32>> {
    t.into_data()
        .try_into_vec::<f32>()
        .map_err(|e| Error::Device(format!("reading statistics: {e:?}")))
}

/// Normalises `x` `[N, C, H, W]` over its `C` leading channels of `bn`; `index` counts layers.
/// Over batch statistics it runs [`elastic::batch_norm`] (the fused op), or with
/// `composed` the composition of burn ops.
pub fn batch_norm(
    x: Tensor<4>,
    bn: &Bn,
    mode: &mut BnMode,
    index: &mut usize,
    composed: bool,
) -> Result<Tensor<4>> {
    let [_, c, _, _] = x.dims();
    let layer = *index;
    *index += 1;
    let gamma = leading(bn.gamma.val(), [c])?;
    let beta = leading(bn.beta.val(), [c])?;
    match mode {
        BnMode::Fixed(stats) => {
            let (m, v) = stats
                .layers
                .get(layer)
                .ok_or_else(|| Error::config("bn", format!("no statistics for layer {layer}")))?;
            if m.len() != c || v.len() != c {
                return Err(Error::Shape {
                    op: "batch norm",
                    what: "statistics",
                    expected: c,
                    got: m.len().min(v.len()),
                });
            }
            let device = x.device();
            let mean = Tensor::<1>::from_data(TensorData::new(m.clone(), [c]), &device);
            let var = Tensor::<1>::from_data(TensorData::new(v.clone(), [c]), &device);
            Ok(elastic::reference::normalize(x, gamma, beta, mean, var))
        }
        BnMode::Batch | BnMode::Record(_) => {
            let (y, mean, var) = if composed {
                elastic::reference::batch_norm(x, gamma, beta)
            } else {
                elastic::batch_norm(x, gamma, beta)?
            };
            if let BnMode::Record(rec) = mode {
                let (m, v) = (to_vec(mean.clone())?, to_vec(var.clone())?);
                if rec.sums.len() <= layer {
                    rec.sums.resize(layer + 1, (Vec::new(), Vec::new()));
                }
                let (sm, sq) = &mut rec.sums[layer];
                sm.resize(c, 0.0);
                sq.resize(c, 0.0);
                for i in 0..c {
                    let (m, v) = (f64::from(m[i]), f64::from(v[i]));
                    sm[i] += m;
                    sq[i] += v + m * m;
                }
            }
            Ok(y)
        }
    }
}
