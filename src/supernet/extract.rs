//! A subnet's weights taken out of the supernet, BN folded, kernels transformed: the input of
//! the reference network, the runtime and the exporter.

use burn::tensor::Tensor;

use super::bn::{BnStats, BN_EPS};
use super::forward::Pass;
use super::params::{Bn, Supernet};
use crate::error::{Error, Result};
use crate::net::NetWeights;
use crate::ops::mbconv::{MbConvWeights, DW_STRIDE};
use crate::ops::se::SeWeights;
use crate::space::Plan;

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

/// The weights of `plan` in `net`, BN folded with `stats` (recorded for this subnet).
pub fn extract(net: &Supernet, plan: &Plan, stats: &BnStats) -> Result<NetWeights<Vec<f32>>> {
    let mut bn = Folder { stats, index: 0 };
    let c0 = plan.stem_cuts.width() as usize;
    let stem = (
        host(net.stem.val().slice(0..c0))?,
        bn.fold(&net.stem_bn, c0)?,
    );
    let mut blocks = Vec::with_capacity(plan.blocks.len());
    for b in &plan.blocks {
        let slot = b.elastic_index.map_or(0, |i| i + 1);
        let p = net.blocks.get(slot).ok_or_else(|| {
            Error::config("supernet", "the plan has more blocks than the supernet")
        })?;
        let (cin, mid, cout) = (
            b.in_cuts.width() as usize,
            b.mid_cuts.width() as usize,
            b.out_cuts.width() as usize,
        );
        let expand = match &p.expand {
            Some(e) if b.expand => {
                Some((rows_cols(e.weight.val(), mid, cin)?, bn.fold(&e.bn, mid)?))
            }
            _ => None,
        };
        let kernels = Pass::kernels(p, mid, &b.kernels);
        let mut dw = vec![0.0; mid * DW_STRIDE];
        for (s, &k) in b.kernels.iter().enumerate() {
            let kk = kernels[k / 2 - 1]
                .clone()
                .ok_or_else(|| Error::config("kernel", format!("size {k} not prepared")))?;
            let v = host(kk)?;
            for c in b.mid_cuts.range(s) {
                dw[c * DW_STRIDE..c * DW_STRIDE + k * k]
                    .copy_from_slice(&v[c * k * k..(c + 1) * k * k]);
            }
        }
        let dw = (dw, bn.fold(&p.dw_bn, mid)?);
        let se = match (&p.se, &b.se_cuts) {
            (Some(se), Some(rc)) => {
                let r = rc.width() as usize;
                Some(SeWeights {
                    reduce_w: rows_cols(se.reduce.val(), r, mid)?,
                    reduce_affine: bias_affine(host(se.reduce_bias.val().slice(0..r))?),
                    expand_w: rows_cols(se.expand.val(), mid, r)?,
                    expand_affine: bias_affine(host(se.expand_bias.val().slice(0..mid))?),
                })
            }
            _ => None,
        };
        let project = (
            rows_cols(p.project.weight.val(), cout, mid)?,
            bn.fold(&p.project.bn, cout)?,
        );
        blocks.push(MbConvWeights {
            expand,
            dw,
            se,
            project,
        });
    }
    let last = plan.last_cuts().width() as usize;
    let (f, m) = (
        plan.final_cuts.width() as usize,
        plan.mix_cuts.width() as usize,
    );
    let final_expand = (
        rows_cols(net.final_expand.weight.val(), f, last)?,
        bn.fold(&net.final_expand.bn, f)?,
    );
    let feature_mix = (
        rows_cols(net.feature_mix.val(), m, f)?,
        bias_affine(vec![0.0; m]),
    );
    let classifiers = net
        .classifiers
        .iter()
        .take(plan.stages)
        .enumerate()
        .map(|(s, head)| {
            let c = plan.mix_cuts.end(s) as usize;
            Ok((
                rows_cols(head.weight.val(), plan.classes, c)?,
                bias_affine(host(head.bias.val())?),
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let w = NetWeights {
        stem,
        blocks,
        final_expand,
        feature_mix,
        classifiers,
    };
    w.check(plan)?;
    Ok(w)
}
