//! The weights of one subnet, laid out as the kernels take them.

use rand::rngs::SmallRng;
use rand::Rng;

use crate::error::{Error, Result};
use crate::gpu::GpuContext;
use crate::space::{Layer, LayerKind, Plan};

/// Weights of a subnet: host vectors (`Vec<f32>`) or GPU buffers, one `(weight, affine)` per
/// layer of [`Plan::layers`] in its order, each weight dense at the layer's full width
/// ([`Layer::weight_len`]). Affines are folded BN `[scale(C), shift(C)]`; a bias is scale 1.
#[derive(Clone, Debug)]
pub struct NetWeights<T> {
    /// Per layer: the weight and the affine.
    pub layers: Vec<(T, T)>,
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
        self.layers.iter().map(|(w, a)| (w, a)).collect()
    }

    /// Weights from every layer's (weight, affine) in the order of [`Plan::layers`] (the
    /// inverse of [`NetWeights::params`]); the sizes are checked by [`NetWeights::check`].
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
        Ok(NetWeights { layers: params })
    }

    /// The weight and affine of the layer named `name` (`feature_mix`, `blocks.3.dw`, …).
    pub fn layer_mut(&mut self, plan: &Plan, name: &str) -> Option<&mut (T, T)> {
        let i = plan.layers().iter().position(|l| l.name == name)?;
        self.layers.get_mut(i)
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
        let layers = plan.layers();
        let shape = |what, expected, got| Error::Shape {
            op: "net weights",
            what,
            expected,
            got,
        };
        if self.layers.len() != layers.len() {
            return Err(shape("layers", layers.len(), self.layers.len()));
        }
        for (layer, (w, a)) in layers.iter().zip(&self.layers) {
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
        NetWeights {
            layers: self
                .layers
                .iter()
                .map(|(w, a)| (ctx.upload_f32("weight", w), ctx.upload_f32("affine", a)))
                .collect(),
        }
    }
}
