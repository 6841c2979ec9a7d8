//! The supernet's parameters at maximal size (DESIGN §1): one burn `Module`.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::error::Result;
use crate::space::{Plan, Preset, SubnetConfig};

/// Batch-norm scale and shift of one layer (statistics live in [`super::BnStats`]).
#[derive(Module, Debug)]
pub struct Bn {
    /// Scale γ.
    pub gamma: Param<Tensor<1>>,
    /// Shift β.
    pub beta: Param<Tensor<1>>,
}

/// A 1×1 conv (or linear layer) `[out, in]` followed by batch norm.
#[derive(Module, Debug)]
pub struct ConvBn {
    /// Weight `[out, in]`.
    pub weight: Param<Tensor<2>>,
    /// Its batch norm.
    pub bn: Bn,
}

/// Squeeze-excite: reduce `[r, mid]` + bias, expand `[mid, r]` + bias.
#[derive(Module, Debug)]
pub struct SeParams {
    /// Reduce weight `[r, mid]`.
    pub reduce: Param<Tensor<2>>,
    /// Reduce bias `[r]`.
    pub reduce_bias: Param<Tensor<1>>,
    /// Expand weight `[mid, r]`.
    pub expand: Param<Tensor<2>>,
    /// Expand bias `[mid]`.
    pub expand_bias: Param<Tensor<1>>,
}

/// One MBConv block at its maximal middle width.
#[derive(Module, Debug)]
pub struct BlockParams {
    /// 1×1 expand, absent in the fixed first block.
    pub expand: Option<ConvBn>,
    /// Depthwise 7×7 master kernels `[mid, 7, 7]`.
    pub dw: Param<Tensor<3>>,
    /// 7→5 transform `[25, 25]`, indexed [out, in].
    pub m25: Param<Tensor<2>>,
    /// 5→3 transform `[9, 9]`.
    pub m9: Param<Tensor<2>>,
    /// Depthwise batch norm.
    pub dw_bn: Bn,
    /// Squeeze-excite, when the unit has it.
    pub se: Option<SeParams>,
    /// 1×1 project `[out, mid]` + batch norm.
    pub project: ConvBn,
}

/// One exit's classifier `[classes, feature mix]` with bias.
#[derive(Module, Debug)]
pub struct Classifier {
    /// Weight `[classes, feature mix]`; exit s reads columns `[0, c_s)`.
    pub weight: Param<Tensor<2>>,
    /// Bias `[classes]`.
    pub bias: Param<Tensor<1>>,
}

/// Every weight of the supernet at maximal size.
#[derive(Module, Debug)]
pub struct Supernet {
    /// Stem conv `[stem, 3, 3, 3]`.
    pub stem: Param<Tensor<4>>,
    /// Stem batch norm.
    pub stem_bn: Bn,
    /// The fixed first block, then every elastic block at maximal depth.
    pub blocks: Vec<BlockParams>,
    /// Final expand `[final, last width]` + batch norm.
    pub final_expand: ConvBn,
    /// Feature mix `[mix, final]` (no bias, no batch norm).
    pub feature_mix: Param<Tensor<2>>,
    /// One classifier per exit.
    pub classifiers: Vec<Classifier>,
}

struct Init<'a> {
    rng: SmallRng,
    device: &'a Device,
}

impl Init<'_> {
    fn tensor<const D: usize>(&self, v: Vec<f32>, shape: [usize; D]) -> Param<Tensor<D>> {
        Param::from_tensor(Tensor::from_data(TensorData::new(v, shape), self.device))
    }

    /// He-uniform for a layer read by `fan_in` inputs.
    fn weight<const D: usize>(&mut self, shape: [usize; D], fan_in: usize) -> Param<Tensor<D>> {
        let a = (6.0 / fan_in.max(1) as f32).sqrt();
        let n = shape.iter().product();
        let v = (0..n).map(|_| self.rng.random_range(-a..a)).collect();
        self.tensor(v, shape)
    }

    fn constant<const D: usize>(&self, value: f32, shape: [usize; D]) -> Param<Tensor<D>> {
        self.tensor(vec![value; shape.iter().product()], shape)
    }

    fn identity(&self, n: usize) -> Param<Tensor<2>> {
        let mut v = vec![0.0; n * n];
        for i in 0..n {
            v[i * n + i] = 1.0;
        }
        self.tensor(v, [n, n])
    }

    fn bn(&self, c: usize, gamma: f32) -> Bn {
        Bn {
            gamma: self.constant(gamma, [c]),
            beta: self.constant(0.0, [c]),
        }
    }

    fn conv_bn(&mut self, out: usize, inp: usize, gamma: f32) -> ConvBn {
        ConvBn {
            weight: self.weight([out, inp], inp),
            bn: self.bn(out, gamma),
        }
    }
}

impl Supernet {
    /// The same supernet with `stages` exits: keeps the classifiers of exits 1 … `stages`−1
    /// that it has and of the last exit; an exit it lacks starts as a copy of its last exit's
    /// classifier (read through its own, narrower columns). Every other weight is shared by all
    /// S, so this is the warm start of a run with another number of stages.
    pub fn with_stages(mut self, stages: usize) -> Result<Self> {
        let Some(last) = self.classifiers.pop().filter(|_| stages > 0) else {
            return Err(crate::error::Error::config(
                "stages",
                format!("cannot make {stages} exits"),
            ));
        };
        self.classifiers.truncate(stages - 1);
        while self.classifiers.len() < stages - 1 {
            self.classifiers.push(Classifier {
                weight: Param::from_tensor(last.weight.val()),
                bias: Param::from_tensor(last.bias.val()),
            });
        }
        self.classifiers.push(last);
        Ok(self)
    }

    /// A freshly initialised supernet for `preset` on `device` (He-uniform weights, identity
    /// kernel transforms, BN γ = 1 except 0 on residual branches' last BN).
    pub fn new(preset: &Preset, device: &Device, seed: u64) -> Result<Self> {
        let plan = Plan::new(preset, &SubnetConfig::largest(preset))?;
        let mut init = Init {
            rng: SmallRng::seed_from_u64(seed),
            device,
        };
        let stem = plan.stem_cuts.width() as usize;
        let blocks = plan
            .blocks
            .iter()
            .map(|b| {
                let (cin, mid, cout) = (
                    b.in_cuts.width() as usize,
                    b.mid_cuts.width() as usize,
                    b.out_cuts.width() as usize,
                );
                BlockParams {
                    expand: b.expand.then(|| init.conv_bn(mid, cin, 1.0)),
                    dw: init.weight([mid, 7, 7], 49),
                    m25: init.identity(25),
                    m9: init.identity(9),
                    dw_bn: init.bn(mid, 1.0),
                    se: b.se_cuts.as_ref().map(|cuts| {
                        let r = cuts.width() as usize;
                        SeParams {
                            reduce: init.weight([r, mid], mid),
                            reduce_bias: init.constant(0.0, [r]),
                            expand: init.weight([mid, r], r),
                            expand_bias: init.constant(0.0, [mid]),
                        }
                    }),
                    project: init.conv_bn(cout, mid, if b.residual() { 0.0 } else { 1.0 }),
                }
            })
            .collect();
        let last = plan.last_cuts().width() as usize;
        let (f, m) = (
            plan.final_cuts.width() as usize,
            plan.mix_cuts.width() as usize,
        );
        let classifiers = (0..plan.stages)
            .map(|s| {
                let c = plan.mix_cuts.end(s) as usize;
                // Exit s reads columns [0, c_s) only; the rest never gets a gradient.
                let w = init.weight([plan.classes, m], c);
                Classifier {
                    weight: w,
                    bias: init.constant(0.0, [plan.classes]),
                }
            })
            .collect();
        Ok(Supernet {
            stem: init.weight([stem, 3, 3, 3], 27),
            stem_bn: init.bn(stem, 1.0),
            blocks,
            final_expand: init.conv_bn(f, last, 1.0),
            feature_mix: init.weight([m, f], f),
            classifiers,
        })
    }
}
