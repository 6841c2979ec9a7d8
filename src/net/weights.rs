//! The weights of one subnet, laid out as the kernels take them.

use rand::rngs::SmallRng;
use rand::Rng;

use crate::error::{Error, Result};
use crate::gpu::GpuContext;
use crate::ops::mbconv::MbConvWeights;
use crate::ops::se::SeWeights;
use crate::space::{Layer, LayerKind, Plan};

/// Weights of a subnet: host vectors (`Vec<f32>`) or GPU buffers. Affines are folded BN
/// `[scale(C), shift(C)]`; a bias is scale 1.
#[derive(Clone, Debug)]
pub struct NetWeights<T> {
    /// Stem conv `[C, 3, 3, 3]` and affine.
    pub stem: (T, T),
    /// One per block of the plan.
    pub blocks: Vec<MbConvWeights<T>>,
    /// Final expand `[F, last width]` and affine.
    pub final_expand: (T, T),
    /// Feature mix `[M, F]` and its affine (scale 1, shift 0: no BN, no bias).
    pub feature_mix: (T, T),
    /// Per exit s: classifier `[classes, c_s(M)]` and affine (scale 1, shift = bias).
    pub classifiers: Vec<(T, T)>,
}

fn uniform(rng: &mut SmallRng, n: usize, fan_in: usize) -> Vec<f32> {
    // Unit gain for a linear layer, U(−a, a) with a = √(3 / fan_in), so that activations stay
    // O(1) through the network as they do in a trained one with BN.
    let a = (3.0 / fan_in.max(1) as f32).sqrt();
    (0..n).map(|_| rng.random_range(-a..a)).collect()
}

/// A random affine for `layer`: BN-like for a BN layer, scale 1 and a small bias for a
/// classifier, the identity for the feature mix.
fn affine(rng: &mut SmallRng, layer: &Layer) -> Vec<f32> {
    let c = layer.out_channels();
    let (scale, shift) = match (&layer.kind, layer.bias) {
        (_, false) => (1.0..=1.0, 0.0..=0.0),
        (LayerKind::Classifier { .. }, true) => (1.0..=1.0, -0.1..=0.1),
        _ => (0.5..=1.0, -0.2..=0.2),
    };
    let mut a: Vec<f32> = (0..c).map(|_| rng.random_range(scale.clone())).collect();
    a.extend((0..c).map(|_| rng.random_range(shift.clone())));
    a
}

impl<T> NetWeights<T> {
    /// Every layer's (weight, affine), in the order of [`Plan::layers`].
    pub fn params(&self) -> Vec<(&T, &T)> {
        fn pair<T>((w, a): &(T, T)) -> (&T, &T) {
            (w, a)
        }
        let mut all = vec![pair(&self.stem)];
        for b in &self.blocks {
            all.extend(b.expand.as_ref().map(pair));
            all.push(pair(&b.dw));
            if let Some(se) = &b.se {
                all.extend([
                    (&se.reduce_w, &se.reduce_affine),
                    (&se.expand_w, &se.expand_affine),
                ]);
            }
            all.push(pair(&b.project));
        }
        all.extend([pair(&self.final_expand), pair(&self.feature_mix)]);
        all.extend(self.classifiers.iter().map(pair));
        all
    }

    /// Weights from every layer's (weight, affine) in the order of [`Plan::layers`] (the
    /// inverse of [`NetWeights::params`]).
    pub fn from_params(plan: &Plan, params: Vec<(T, T)>) -> Result<Self> {
        let expected = plan.layers().len();
        if params.len() != expected {
            return Err(Error::Shape {
                op: "net weights",
                what: "layers",
                expected,
                got: params.len(),
            });
        }
        let mut it = params.into_iter();
        let mut next = || {
            it.next()
                .ok_or_else(|| Error::config("weights", "too few layers"))
        };
        let stem = next()?;
        let mut blocks = Vec::with_capacity(plan.blocks.len());
        for b in &plan.blocks {
            let expand = if b.expand { Some(next()?) } else { None };
            let dw = next()?;
            let se = match b.se_cuts {
                Some(_) => {
                    let (reduce_w, reduce_affine) = next()?;
                    let (expand_w, expand_affine) = next()?;
                    Some(SeWeights {
                        reduce_w,
                        reduce_affine,
                        expand_w,
                        expand_affine,
                    })
                }
                None => None,
            };
            blocks.push(MbConvWeights {
                expand,
                dw,
                se,
                project: next()?,
            });
        }
        let final_expand = next()?;
        let feature_mix = next()?;
        let classifiers = (0..plan.stages).map(|_| next()).collect::<Result<_>>()?;
        Ok(NetWeights {
            stem,
            blocks,
            final_expand,
            feature_mix,
            classifiers,
        })
    }
}

impl NetWeights<Vec<f32>> {
    /// Random weights of the right shapes for `plan` (for tests and benchmarks).
    pub fn random(plan: &Plan, rng: &mut SmallRng) -> Self {
        let params = plan
            .layers()
            .iter()
            .map(|l| (uniform(rng, l.weight_len(), l.fan_in()), affine(rng, l)))
            .collect();
        // One pair per layer by construction.
        Self::from_params(plan, params).expect("one (weight, affine) per layer")
    }

    /// Fails when any weight is NaN or infinite (a loaded model must be finite; the causality
    /// tests poison weights on purpose and skip this).
    pub fn check_finite(&self) -> Result<()> {
        if self
            .params()
            .iter()
            .any(|(w, a)| w.iter().chain(a.iter()).any(|v| !v.is_finite()))
        {
            return Err(Error::config("weights", "hold a NaN or infinite value"));
        }
        Ok(())
    }

    /// Checks every tensor's size against `plan`.
    pub fn check(&self, plan: &Plan) -> Result<()> {
        let params = self.params();
        let layers = plan.layers();
        // A block or classifier too many or too few shows as a count mismatch; a block with an
        // expand or SE the plan lacks (or the reverse) as a size mismatch further on.
        let shape = |what, expected, got| Error::Shape {
            op: "net weights",
            what,
            expected,
            got,
        };
        if self.blocks.len() != plan.blocks.len() {
            return Err(shape("blocks", plan.blocks.len(), self.blocks.len()));
        }
        if self.classifiers.len() != plan.stages {
            return Err(shape("classifiers", plan.stages, self.classifiers.len()));
        }
        for (b, w) in plan.blocks.iter().zip(&self.blocks) {
            if w.expand.is_some() != b.expand || w.se.is_some() != b.se_cuts.is_some() {
                return Err(Error::config(
                    "blocks",
                    "an expand or SE present where the plan has none, or missing",
                ));
            }
        }
        if params.len() != layers.len() {
            return Err(shape("layers", layers.len(), params.len()));
        }
        for (layer, (w, a)) in layers.iter().zip(&params) {
            if w.len() != layer.weight_len() {
                return Err(shape("weight", layer.weight_len(), w.len()));
            }
            if a.len() != 2 * layer.out_channels() {
                return Err(shape("affine", 2 * layer.out_channels(), a.len()));
            }
        }
        Ok(())
    }

    /// Copies the weights to the GPU.
    pub fn upload(&self, ctx: &GpuContext) -> NetWeights<wgpu::Buffer> {
        let pair = |(w, a): &(Vec<f32>, Vec<f32>), name: &str| {
            (ctx.upload_f32(name, w), ctx.upload_f32(name, a))
        };
        NetWeights {
            stem: pair(&self.stem, "stem"),
            blocks: self.blocks.iter().map(|b| b.upload(ctx)).collect(),
            final_expand: pair(&self.final_expand, "final expand"),
            feature_mix: pair(&self.feature_mix, "feature mix"),
            classifiers: self
                .classifiers
                .iter()
                .map(|c| pair(c, "classifier"))
                .collect(),
        }
    }
}
