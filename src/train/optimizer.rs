//! The trainer's optimizer: AdamW with each parameter tensor's update fused into one op.
//!
//! [`FusedAdamW`] is a burn [`Optimizer`] that computes exactly what burn's `AdamW` does (same
//! state type, so checkpoints written with either load in the other) but updates each
//! parameter with [`crate::elastic::adamw`]: one kernel launch per tensor on a GPU instead of
//! about fifteen.

use burn::optim::{AdamWState, AdaptiveMomentumState, LearningRate, ModuleOptimizer, Optimizer};
use burn::tensor::{Device, Tensor};

use crate::elastic::{adamw, AdamWStep};

/// AdamW with decoupled weight decay, one fused update per parameter tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct FusedAdamW {
    /// First-moment decay β1 (0.9).
    pub beta1: f32,
    /// Second-moment decay β2 (0.999).
    pub beta2: f32,
    /// ε (1e-5, burn's default).
    pub eps: f32,
    /// Decoupled weight decay λ.
    pub weight_decay: f32,
}

impl FusedAdamW {
    /// burn's `AdamWConfig` defaults with weight decay `weight_decay`.
    pub fn new(weight_decay: f32) -> Self {
        FusedAdamW {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-5,
            weight_decay,
        }
    }

    /// The whole-module optimizer.
    pub fn init(self) -> ModuleOptimizer {
        self.into()
    }
}

impl Optimizer for FusedAdamW {
    type State<const D: usize> = AdamWState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let dims = grad.dims();
        // A state of another shape (a foreign record) restarts the moments, like a missing one.
        let (time, m1, m2) = match state {
            Some(s) if s.momentum.moment_1.dims() == dims && s.momentum.moment_2.dims() == dims => {
                (s.momentum.time, s.momentum.moment_1, s.momentum.moment_2)
            }
            _ => (0, grad.zeros_like(), grad.zeros_like()),
        };
        let step = AdamWStep::new(
            lr,
            f64::from(self.weight_decay),
            self.beta1,
            self.beta2,
            self.eps,
            time + 1,
        );
        match adamw(tensor.clone(), grad, m1, m2, step) {
            Ok((tensor, m1, m2)) => (
                tensor,
                Some(AdamWState::new(AdaptiveMomentumState::new(
                    time + 1,
                    m1,
                    m2,
                ))),
            ),
            // Unreachable: the parameter and its gradient share a shape, the moments were
            // checked above. Leave the parameter as it was rather than panic.
            Err(_) => (tensor, None),
        }
    }

    fn to_device<const D: usize>(mut state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.momentum = state.momentum.to_device(device);
        state
    }
}
