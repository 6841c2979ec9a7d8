//! A subnet's weights taken out of the supernet, BN folded, kernels transformed: the input of
//! the reference network, the runtime and the exporter.

use burn::tensor::Tensor;

use super::bn::{BnStats, BN_EPS};
use super::forward::Pass;
use super::params::{Bn, Supernet};
use crate::error::{Error, Result};
use crate::net::NetWeights;
use crate::space::{LayerKind, Plan, DW_STRIDE};

fn host<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.into_data()
        .try_into_vec::<f32>()
        .map_err(|e| Error::Device(format!("reading weights: {e:?}")))
}

/// `w[..rows, ..cols]` of a `[R, C]` tensor, row-major.
fn rows_cols(w: Tensor<2>, rows: usize, cols: usize) -> Result<Vec<f32>> {
    host(w.slice([0..rows, 0..cols]))
}

/// `[scale(C), shift(C)]` with scale 1 and shift `bias`.
fn bias_affine(bias: Vec<f32>) -> Vec<f32> {
    let mut a = vec![1.0; bias.len()];
    a.extend(bias);
    a
}

struct Folder<'a> {
    stats: &'a BnStats,
    index: usize,
}

impl Folder<'_> {
    /// The next layer's BN as `[scale(c), shift(c)]`.
    fn fold(&mut self, bn: &Bn, c: usize) -> Result<Vec<f32>> {
        let (mean, var) = self.stats.layers.get(self.index).ok_or_else(|| {
            Error::config("bn", format!("no statistics for layer {}", self.index))
        })?;
        self.index += 1;
        if mean.len() != c || var.len() != c {
            return Err(Error::Shape {
                op: "fold bn",
                what: "statistics",
                expected: c,
                got: mean.len().min(var.len()),
            });
        }
        let gamma = host(bn.gamma.val().slice(0..c))?;
        let beta = host(bn.beta.val().slice(0..c))?;
        let scale: Vec<f32> = (0..c)
            .map(|i| (f64::from(gamma[i]) / (f64::from(var[i]) + BN_EPS).sqrt()) as f32)
            .collect();
        let shift: Vec<f32> = (0..c).map(|i| beta[i] - mean[i] * scale[i]).collect();
        let mut a = scale;
        a.extend(shift);
        Ok(a)
    }
}

/// The weights of `plan` in `net`, BN folded with `stats` (recorded for this subnet): each
/// layer of the layer list, in order, taken from the supernet's parameters.
pub fn extract(net: &Supernet, plan: &Plan, stats: &BnStats) -> Result<NetWeights<Vec<f32>>> {
    let mut bn = Folder { stats, index: 0 };
    let mut params = Vec::with_capacity(plan.layers().len());
    for layer in plan.layers() {
        let (rows, cols) = (layer.rows.width() as usize, layer.cols.width() as usize);
        let block = |i: usize| {
            let slot = plan
                .blocks
                .get(i)
                .and_then(|b| b.elastic_index)
                .map_or(0, |e| e + 1);
            net.blocks.get(slot).ok_or_else(|| {
                Error::config("supernet", "the plan has more blocks than the supernet")
            })
        };
        let no_part =
            |part: &str| Error::config(layer.name.clone(), format!("the supernet has no {part}"));
        let pair = match (&layer.kind, layer.block) {
            (LayerKind::Stem, _) => (
                host(net.stem.val().slice(0..rows))?,
                bn.fold(&net.stem_bn, rows)?,
            ),
            (LayerKind::Expand, Some(i)) => {
                let e = block(i)?.expand.as_ref().ok_or_else(|| no_part("expand"))?;
                (
                    rows_cols(e.weight.val(), rows, cols)?,
                    bn.fold(&e.bn, rows)?,
                )
            }
            (LayerKind::Depthwise { kernels, .. }, Some(i)) => {
                let p = block(i)?;
                let prepared = Pass::kernels(p, rows, kernels)?;
                let mut dw = vec![0.0; rows * DW_STRIDE];
                for (s, &k) in kernels.iter().enumerate() {
                    let kk = prepared[k / 2 - 1]
                        .clone()
                        .ok_or_else(|| Error::config("kernel", format!("size {k} not prepared")))?;
                    let v = host(kk)?;
                    for c in layer.rows.range(s) {
                        dw[c * DW_STRIDE..c * DW_STRIDE + k * k]
                            .copy_from_slice(&v[c * k * k..(c + 1) * k * k]);
                    }
                }
                (dw, bn.fold(&p.dw_bn, rows)?)
            }
            (LayerKind::SeReduce, Some(i)) => {
                let se = block(i)?.se.as_ref().ok_or_else(|| no_part("SE"))?;
                (
                    rows_cols(se.reduce.val(), rows, cols)?,
                    bias_affine(host(se.reduce_bias.val().slice(0..rows))?),
                )
            }
            (LayerKind::SeExpand, Some(i)) => {
                let se = block(i)?.se.as_ref().ok_or_else(|| no_part("SE"))?;
                (
                    rows_cols(se.expand.val(), rows, cols)?,
                    bias_affine(host(se.expand_bias.val().slice(0..rows))?),
                )
            }
            (LayerKind::Project { .. }, Some(i)) => {
                let p = &block(i)?.project;
                (
                    rows_cols(p.weight.val(), rows, cols)?,
                    bn.fold(&p.bn, rows)?,
                )
            }
            (LayerKind::FinalExpand, _) => (
                rows_cols(net.final_expand.weight.val(), rows, cols)?,
                bn.fold(&net.final_expand.bn, rows)?,
            ),
            (LayerKind::FeatureMix, _) => (
                rows_cols(net.feature_mix.val(), rows, cols)?,
                bias_affine(vec![0.0; rows]),
            ),
            (LayerKind::Classifier { stage }, _) => {
                let head = net
                    .classifiers
                    .get(*stage)
                    .ok_or_else(|| no_part("classifier"))?;
                (
                    rows_cols(head.weight.val(), layer.out_channels(), layer.row_stride())?,
                    bias_affine(host(head.bias.val())?),
                )
            }
            _ => return Err(Error::config(layer.name.clone(), "not in a block")),
        };
        params.push(pair);
    }
    let w = NetWeights::from_params(plan, params)?;
    w.check(plan)?;
    Ok(w)
}
