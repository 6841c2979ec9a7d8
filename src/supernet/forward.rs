//! The all-exits pass of a subnet through the supernet's weights (DESIGN §1–2): masked 1×1
//! convs, per-stage-kernel depthwise convs, batch norms, activations with the per-stage depth
//! gate and weight slices as the custom ops of [`crate::elastic`] (this crate's CPU kernels on
//! burn's CPU backend, its WGSL kernels on wgpu); stage-causal SE, the stem and the exits'
//! products as burn tensor ops. Differentiable on both backends.

use burn::tensor::activation::{hard_sigmoid, hard_swish, relu};
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Distribution, Tensor};

use super::bn::{batch_norm, BnMode};
use super::masks::MaskCache;
use super::params::{BlockParams, ConvBn, Supernet};
use crate::elastic::{self, StageMask};
use crate::error::{Error, Result};
use crate::space::{Activation, BlockPlan, LayerKind, Plan, StageCuts};

/// Options of one pass.
#[derive(Debug)]
pub struct PassOptions<'a> {
    /// Batch-norm statistics to use or record.
    pub bn: BnMode<'a>,
    /// Dropout probability before each classifier (training only; 0 disables it).
    pub dropout: f64,
    /// Detach the features every exit but the last reads, so that their losses reach their
    /// classifiers only (training only).
    pub detach_early_exits: bool,
    /// Run the elastic convolutions, the batch norms and the activations as compositions of
    /// plain burn ops ([`elastic::reference`], burn's activations) instead of the custom ops
    /// ([`elastic`]): for comparison only (slices use [`elastic::narrow`] either way).
    pub composed: bool,
}

/// `a(x)`: the fused op of [`elastic::activation`], or with `composed` burn's own ops.
fn act<const D: usize>(x: Tensor<D>, a: Activation, composed: bool) -> Tensor<D> {
    if !composed {
        return elastic::activation(x, a);
    }
    match a {
        Activation::None => x,
        Activation::Relu => relu(x),
        Activation::Hswish => hard_swish(x),
        Activation::Hsigmoid => hard_sigmoid(x, 1.0 / 6.0, 0.5),
    }
}

/// `t[..dims]` as [`elastic::narrow`] (its gradient one pass; `t` itself when that is all
/// of it).
pub(super) fn leading<const D: usize>(t: Tensor<D>, dims: [usize; D]) -> Result<Tensor<D>> {
    elastic::narrow(t, dims.map(|d| 0..d))
}

/// `w[..o, ..i]` with the causal mask of `(out, inp)` applied.
fn masked_weight(
    w: Tensor<2>,
    out: &StageCuts,
    inp: &StageCuts,
    masks: &mut MaskCache,
) -> Result<Tensor<2>> {
    let (o, i) = (out.width() as usize, inp.width() as usize);
    let w = leading(w, [o, i])?;
    Ok(match masks.causal(out, inp) {
        Some(m) => w * m,
        None => w,
    })
}

fn gate(x: Tensor<4>, mask: Option<Tensor<1>>) -> Tensor<4> {
    match mask {
        Some(m) => {
            let c = m.dims()[0];
            x * m.reshape([1, c, 1, 1])
        }
        None => x,
    }
}

/// `gate(a(x), mask)` in one op ([`elastic::gated_activation`]), or with `composed` as burn's
/// ops.
fn gated_act(
    x: Tensor<4>,
    a: Activation,
    mask: Option<Tensor<1>>,
    composed: bool,
) -> Result<Tensor<4>> {
    if composed {
        Ok(gate(act(x, a, true), mask))
    } else {
        elastic::gated_activation(x, mask, a)
    }
}

pub(super) struct Pass<'a, 'b> {
    masks: &'b mut MaskCache,
    bn: BnMode<'a>,
    bn_index: usize,
    composed: bool,
}

impl Pass<'_, '_> {
    fn conv_bn(
        &mut self,
        x: Tensor<4>,
        p: &ConvBn,
        out: &StageCuts,
        inp: &StageCuts,
    ) -> Result<Tensor<4>> {
        let (o, i) = (out.width() as usize, inp.width() as usize);
        let w = leading(p.weight.val(), [o, i])?;
        let mask = StageMask::new(out, inp);
        let y = if self.composed {
            elastic::reference::pointwise(x, w, &mask)
        } else {
            elastic::pointwise(x, w, mask)?
        };
        batch_norm(y, &p.bn, &mut self.bn, &mut self.bn_index, self.composed)
    }

    /// The depthwise kernels `[mid, k, k]` for each size in use, from the 7×7 masters.
    pub(super) fn kernels(
        p: &BlockParams,
        mid: usize,
        sizes: &[usize],
    ) -> Result<[Option<Tensor<3>>; 3]> {
        let k7 = leading(p.dw.val(), [mid, 7, 7])?;
        let need5 = sizes.iter().any(|&k| k <= 5);
        let need3 = sizes.contains(&3);
        let transform = |k: Tensor<3>, m: Tensor<2>, from: usize, to: usize| -> Result<_> {
            let (a, b) = ((from - to) / 2, (from + to) / 2);
            let centre = elastic::narrow(k, [0..mid, a..b, a..b])?.reshape([mid, to * to]);
            Ok(centre.matmul(m.transpose()).reshape([mid, to, to]))
        };
        let k5 = if need5 {
            Some(transform(k7.clone(), p.m25.val(), 7, 5)?)
        } else {
            None
        };
        let k3 = match (need3, k5.clone()) {
            (true, Some(k5)) => Some(transform(k5, p.m9.val(), 5, 3)?),
            _ => None,
        };
        Ok([k3, k5, sizes.contains(&7).then_some(k7)])
    }

    fn depthwise(&mut self, x: Tensor<4>, p: &BlockParams, b: &BlockPlan) -> Result<Tensor<4>> {
        let cuts = &b.mid_cuts;
        let mid = cuts.width() as usize;
        let [n, _, h, wd] = x.dims();
        let kernels = Self::kernels(p, mid, &b.kernels)?;
        // Consecutive stages with one kernel size share one conv.
        let mut runs: Vec<(usize, std::ops::Range<usize>)> = Vec::new();
        for (s, &k) in b.kernels.iter().enumerate() {
            let r = cuts.range(s);
            match runs.last_mut() {
                Some((k0, r0)) if *k0 == k => r0.end = r.end,
                _ => runs.push((k, r)),
            }
        }
        let outs = runs
            .into_iter()
            .map(|(k, r)| {
                let kk = kernels
                    .get((k / 2).wrapping_sub(1))
                    .cloned()
                    .flatten()
                    .ok_or_else(|| Error::config("kernel", format!("size {k} is not 3, 5 or 7")))?;
                let xs = elastic::narrow(x.clone(), [0..n, r.clone(), 0..h, 0..wd])?;
                let ks = elastic::narrow(kk, [r, 0..k, 0..k])?;
                if self.composed {
                    Ok(elastic::reference::depthwise(xs, ks, b.stride))
                } else {
                    elastic::depthwise(xs, ks, b.stride)
                }
            })
            .collect::<Result<Vec<Tensor<4>>>>()?;
        Ok(match <[Tensor<4>; 1]>::try_from(outs) {
            Ok([one]) => one,
            Err(outs) => Tensor::cat(outs, 1),
        })
    }
}

/// Runs `plan` through `net` on `images` `[N, 3, R, R]` and returns every exit's logits
/// `[N, classes]`.
pub fn forward(
    net: &Supernet,
    plan: &Plan,
    images: Tensor<4>,
    masks: &mut MaskCache,
    options: PassOptions,
) -> Result<Vec<Tensor<2>>> {
    let [n, ch, h, w] = images.dims();
    if ch != 3 || h != plan.resolution || w != plan.resolution {
        return Err(Error::Shape {
            op: "supernet",
            what: "image side",
            expected: plan.resolution,
            got: if ch != 3 { ch } else { h.max(w) },
        });
    }
    let mut pass = Pass {
        masks,
        bn: options.bn,
        bn_index: 0,
        composed: options.composed,
    };
    let broken = || Error::config("supernet", "the layer list is out of order");
    // The current block's input (the stem's output before the first block), its middle
    // activation, the SE's reduced channels, the pooled head and the features.
    let (mut x, mut hidden, mut red): (Option<Tensor<4>>, Option<Tensor<4>>, Option<Tensor<2>>) =
        (None, None, None);
    let (mut pooled, mut features) = (None, None);
    let mut logits = Vec::with_capacity(plan.stages);
    for layer in plan.layers() {
        let (rows, cols) = (&layer.rows, &layer.cols);
        let block = match layer.block {
            Some(i) => {
                let b = &plan.blocks[i];
                // The fixed first block is slot 0; elastic blocks follow at maximal depth.
                let slot = b.elastic_index.map_or(0, |i| i + 1);
                let p = net.blocks.get(slot).ok_or_else(|| {
                    Error::config("supernet", "the plan has more blocks than the supernet")
                })?;
                Some((b, p))
            }
            None => None,
        };
        match (&layer.kind, block) {
            (LayerKind::Stem, _) => {
                let stem = net.stem.val();
                let [_, sc, sk, _] = stem.dims();
                let stem = leading(stem, [rows.width() as usize, sc, sk, sk])?;
                let y = conv2d(
                    images.clone(),
                    stem,
                    None,
                    ConvOptions::new([2, 2], [1, 1], [1, 1], 1),
                );
                let y = batch_norm(
                    y,
                    &net.stem_bn,
                    &mut pass.bn,
                    &mut pass.bn_index,
                    pass.composed,
                )?;
                x = Some(act(y, layer.act, pass.composed));
            }
            (LayerKind::Expand, Some((b, p))) => {
                let e = p.expand.as_ref().ok_or_else(broken)?;
                let y = pass.conv_bn(x.clone().ok_or_else(broken)?, e, rows, cols)?;
                let mask = pass.masks.channel(rows, &b.active);
                hidden = Some(gated_act(y, layer.act, mask, pass.composed)?);
            }
            (LayerKind::Depthwise { .. }, Some((b, p))) => {
                let from = if b.expand { hidden.take() } else { x.clone() };
                let y = pass.depthwise(from.ok_or_else(broken)?, p, b)?;
                let y = batch_norm(y, &p.dw_bn, &mut pass.bn, &mut pass.bn_index, pass.composed)?;
                let mask = pass.masks.channel(rows, &b.active);
                hidden = Some(gated_act(y, layer.act, mask, pass.composed)?);
            }
            (LayerKind::SeReduce, Some((b, p))) => {
                let se = p.se.as_ref().ok_or_else(broken)?;
                let [n, c, _, _] = hidden.as_ref().ok_or_else(broken)?.dims();
                let r = rows.width() as usize;
                let mean = hidden
                    .clone()
                    .ok_or_else(broken)?
                    .mean_dim(3)
                    .mean_dim(2)
                    .reshape([n, c]);
                let w = masked_weight(se.reduce.val(), rows, cols, pass.masks)?;
                let y = mean.matmul(w.transpose())
                    + leading(se.reduce_bias.val(), [r])?.reshape([1, r]);
                let y = act(y, layer.act, pass.composed);
                red = Some(match pass.masks.channel(rows, &b.active) {
                    Some(m) => y * m.reshape([1, r]),
                    None => y,
                });
            }
            (LayerKind::SeExpand, Some((_, p))) => {
                let se = p.se.as_ref().ok_or_else(broken)?;
                let mid = hidden.take().ok_or_else(broken)?;
                let [n, c, _, _] = mid.dims();
                let w = masked_weight(se.expand.val(), rows, cols, pass.masks)?;
                let y = red.take().ok_or_else(broken)?.matmul(w.transpose())
                    + leading(se.expand_bias.val(), [c])?.reshape([1, c]);
                hidden = Some(mid * act(y, layer.act, pass.composed).reshape([n, c, 1, 1]));
            }
            (LayerKind::Project { residual }, Some((b, p))) => {
                let y = pass.conv_bn(hidden.take().ok_or_else(broken)?, &p.project, rows, cols)?;
                let input = x.take().ok_or_else(broken)?;
                x = Some(if *residual {
                    input + gate(y, pass.masks.channel(rows, &b.active))
                } else {
                    y
                });
            }
            (LayerKind::FinalExpand, _) => {
                let y =
                    pass.conv_bn(x.take().ok_or_else(broken)?, &net.final_expand, rows, cols)?;
                let f = rows.width() as usize;
                pooled = Some(
                    act(y, layer.act, pass.composed)
                        .mean_dim(3)
                        .mean_dim(2)
                        .reshape([n, f]),
                );
            }
            (LayerKind::FeatureMix, _) => {
                let w = masked_weight(net.feature_mix.val(), rows, cols, pass.masks)?;
                let y = pooled.take().ok_or_else(broken)?.matmul(w.transpose());
                features = Some(act(y, layer.act, pass.composed));
            }
            (LayerKind::Classifier { stage }, _) => {
                let head = net.classifiers.get(*stage).ok_or_else(broken)?;
                let c = cols.end(*stage) as usize;
                let mut feats = leading(features.clone().ok_or_else(broken)?, [n, c])?;
                if options.detach_early_exits && *stage + 1 < plan.stages {
                    feats = feats.detach();
                }
                if options.dropout > 0.0 {
                    let keep = 1.0 - options.dropout;
                    let device = pass.masks.device();
                    let m = Tensor::<2>::random([n, c], Distribution::Bernoulli(keep), device);
                    feats = feats * m / keep;
                }
                let wc = leading(head.weight.val(), [plan.classes, c])?;
                let bias = head.bias.val().reshape([1, plan.classes]);
                logits.push(act(
                    feats.matmul(wc.transpose()) + bias,
                    layer.act,
                    pass.composed,
                ));
            }
            _ => return Err(broken()),
        }
    }
    Ok(logits)
}
