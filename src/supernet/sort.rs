//! Sorting middle and SE-reduced channels by importance before widths become elastic
//! (DESIGN §1, as once-for-all): the L1 norm of the weights that read a channel ranks it, and
//! the same permutation is applied to every tensor that indexes it. Channels move only inside
//! their stage's slice of the largest subnet (DESIGN §2): a channel moved across a stage cut
//! would read, or be read by, other stages than it was trained with.

use burn::module::Param;
use burn::tensor::{Int, Tensor, TensorData};

use super::params::{Bn, Supernet};
use crate::error::{Error, Result};
use crate::space::{Plan, Preset, StageCuts, SubnetConfig};

/// The permutation that orders the columns of `w` `[rows, cols]` by descending L1 norm inside
/// each stage's slice of `cuts`.
fn by_column_norm(w: &Tensor<2>, cuts: &StageCuts) -> Result<Vec<i64>> {
    let [rows, cols] = w.dims();
    let v = w
        .clone()
        .into_data()
        .try_into_vec::<f32>()
        .map_err(|e| Error::Device(format!("reading weights: {e:?}")))?;
    let mut norm = vec![0f64; cols];
    for r in 0..rows {
        for (c, n) in norm.iter_mut().enumerate() {
            *n += f64::from(v[r * cols + c].abs());
        }
    }
    if cuts.width() as usize != cols {
        return Err(Error::config(
            "sort",
            format!("{cols} channels against cuts of width {}", cuts.width()),
        ));
    }
    let mut order: Vec<usize> = (0..cols).collect();
    for s in 0..cuts.stages() {
        order[cuts.range(s)].sort_by(|&a, &b| norm[b].total_cmp(&norm[a]));
    }
    Ok(order.into_iter().map(|i| i as i64).collect())
}

fn pick<const D: usize>(p: Param<Tensor<D>>, dim: usize, idx: &Tensor<1, Int>) -> Param<Tensor<D>> {
    let idx = idx.clone();
    p.map(|t| {
        let t = t.select(dim, idx).detach();
        if t.is_autodiff() {
            t.require_grad()
        } else {
            t
        }
    })
}

fn pick_bn(bn: Bn, idx: &Tensor<1, Int>) -> Bn {
    Bn {
        gamma: pick(bn.gamma, 0, idx),
        beta: pick(bn.beta, 0, idx),
    }
}

/// The supernet of `preset` with every elastic block's middle (and SE-reduced) channels in
/// descending order of importance inside each stage. The function the largest subnet
/// computes is unchanged.
pub fn sort_channels(net: Supernet, preset: &Preset) -> Result<Supernet> {
    let plan = Plan::new(preset, &SubnetConfig::largest(preset))?;
    if plan.blocks.len() != net.blocks.len() {
        return Err(Error::config(
            "sort",
            format!(
                "the supernet has {} blocks, its preset {}",
                net.blocks.len(),
                plan.blocks.len()
            ),
        ));
    }
    let device = net.stem.val().device();
    let index = |v: Vec<i64>| {
        let n = v.len();
        Tensor::<1, Int>::from_data(TensorData::new(v, [n]), &device)
    };
    let mut blocks = Vec::with_capacity(net.blocks.len());
    for (mut b, bp) in net.blocks.into_iter().zip(&plan.blocks) {
        let Some(expand) = b.expand.take() else {
            blocks.push(b);
            continue;
        };
        let mid = index(by_column_norm(&b.project.weight.val(), &bp.mid_cuts)?);
        b.expand = Some(super::params::ConvBn {
            weight: pick(expand.weight, 0, &mid),
            bn: pick_bn(expand.bn, &mid),
        });
        b.dw = pick(b.dw, 0, &mid);
        b.dw_bn = pick_bn(b.dw_bn, &mid);
        b.project.weight = pick(b.project.weight, 1, &mid);
        if let Some(mut se) = b.se.take() {
            se.reduce = pick(se.reduce, 1, &mid);
            se.expand = pick(se.expand, 0, &mid);
            se.expand_bias = pick(se.expand_bias, 0, &mid);
            let se_cuts = bp
                .se_cuts
                .as_ref()
                .ok_or_else(|| Error::config("sort", "an SE block without SE cuts"))?;
            let red = index(by_column_norm(&se.expand.val(), se_cuts)?);
            se.reduce = pick(se.reduce, 0, &red);
            se.reduce_bias = pick(se.reduce_bias, 0, &red);
            se.expand = pick(se.expand, 1, &red);
            b.se = Some(se);
        }
        blocks.push(b);
    }
    Ok(Supernet { blocks, ..net })
}
