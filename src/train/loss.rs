//! The multi-exit loss: label-smoothed cross-entropy at every exit plus distillation from the
//! largest subnet's last exit (DESIGN §4).

use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Tensor, TensorData};

/// Smoothed one-hot targets `[N, classes]`: `1 − ε + ε/K` on the label, `ε/K` elsewhere.
pub fn smoothed_targets(labels: &[u32], classes: usize, eps: f64, device: &Device) -> Tensor<2> {
    let off = (eps / classes as f64) as f32;
    let on = (1.0 - eps) as f32 + off;
    let mut v = vec![off; labels.len() * classes];
    for (i, &l) in labels.iter().enumerate() {
        v[i * classes + l as usize] = on;
    }
    Tensor::from_data(TensorData::new(v, [labels.len(), classes]), device)
}

/// Mean over the batch of `−Σ_c target_c · log softmax(logits)_c`.
pub fn soft_cross_entropy(logits: Tensor<2>, target: Tensor<2>) -> Tensor<1> {
    (target * log_softmax(logits, 1)).sum_dim(1).mean().neg()
}

/// `Σ_s w_s [CE(exit_s, targets) + distill · CE(exit_s, teacher)]` with the exit weights
/// `weights` (one per exit, summing to 1; `None`: 1/S each).
pub fn multi_exit_loss(
    logits: &[Tensor<2>],
    targets: &Tensor<2>,
    teacher: Option<&Tensor<2>>,
    distill: f64,
    weights: Option<&[f64]>,
) -> Tensor<1> {
    let uniform = 1.0 / logits.len().max(1) as f64;
    let mut total: Option<Tensor<1>> = None;
    for (s, l) in logits.iter().enumerate() {
        let mut term = soft_cross_entropy(l.clone(), targets.clone());
        if let (Some(t), true) = (teacher, distill > 0.0) {
            term = term + soft_cross_entropy(l.clone(), t.clone()) * distill;
        }
        let w = weights.and_then(|w| w.get(s).copied()).unwrap_or(uniform);
        let term = term * w;
        total = Some(match total {
            Some(acc) => acc + term,
            None => term,
        });
    }
    total.unwrap_or_else(|| Tensor::zeros([1], &targets.device()))
}
