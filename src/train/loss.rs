//! The multi-exit loss: label-smoothed cross-entropy at every exit plus distillation from the
//! largest subnet's last exit and, optionally, from the subnet's own last exit (DESIGN §4).

use burn::tensor::activation::{log_softmax, softmax};
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

/// Mean over the batch of `−Σ_c target_c · log softmax(logits)_c`: the fused op of
/// [`crate::elastic::soft_cross_entropy`] (the target takes no gradient).
pub fn soft_cross_entropy(logits: Tensor<2>, target: Tensor<2>) -> Tensor<1> {
    match crate::elastic::soft_cross_entropy(logits.clone(), target.clone()) {
        Ok(loss) => loss,
        // Shapes the fused op refuses: burn's composition, which reports them.
        Err(_) => (target * log_softmax(logits, 1)).sum_dim(1).mean().neg(),
    }
}

/// How the exits of one subnet are taught. The default: labels only, every exit weighed 1/S.
#[derive(Clone, Copy, Debug, Default)]
pub struct LossWeights<'a> {
    /// Weight of the term distilled from the largest subnet's last exit.
    pub distill: f64,
    /// Weight of the term each exit s < S distils from its own subnet's last exit.
    pub self_distill: f64,
    /// Exit weights `w_s`, one per exit, summing to 1; `None`: 1/S each.
    pub exits: Option<&'a [f64]>,
}

/// `Σ_s w_s [CE(exit_s, targets) + distill · CE(exit_s, teacher) +
/// self_distill · [s < S] · CE(exit_s, softmax(exit_S))]`, the last exit detached in the
/// self-distillation term.
pub fn multi_exit_loss(
    logits: &[Tensor<2>],
    targets: &Tensor<2>,
    teacher: Option<&Tensor<2>>,
    weights: LossWeights<'_>,
) -> Tensor<1> {
    let uniform = 1.0 / logits.len().max(1) as f64;
    let own_teacher = match logits.last() {
        Some(last) if weights.self_distill > 0.0 && logits.len() > 1 => {
            Some(softmax(last.clone().detach(), 1))
        }
        _ => None,
    };
    let mut total: Option<Tensor<1>> = None;
    for (s, l) in logits.iter().enumerate() {
        let mut term = soft_cross_entropy(l.clone(), targets.clone());
        if let (Some(t), true) = (teacher, weights.distill > 0.0) {
            term = term + soft_cross_entropy(l.clone(), t.clone()) * weights.distill;
        }
        if let (Some(t), true) = (&own_teacher, s + 1 < logits.len()) {
            term = term + soft_cross_entropy(l.clone(), t.clone()) * weights.self_distill;
        }
        let w = weights
            .exits
            .and_then(|w| w.get(s).copied())
            .unwrap_or(uniform);
        let term = term * w;
        total = Some(match total {
            Some(acc) => acc + term,
            None => term,
        });
    }
    total.unwrap_or_else(|| Tensor::zeros([1], &targets.device()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::SmallRng, Rng, SeedableRng};

    fn random(rng: &mut SmallRng, n: usize, k: usize, device: &Device) -> Tensor<2> {
        let v: Vec<f32> = (0..n * k).map(|_| rng.random_range(-3.0..3.0)).collect();
        Tensor::from_data(TensorData::new(v, [n, k]), device)
    }

    /// CE(logits, softmax(teacher)) in f64, averaged over rows.
    fn ce(logits: &[f32], teacher: &[f32], k: usize) -> f64 {
        let rows = logits.len() / k;
        let lse = |r: &[f32]| {
            let m = r.iter().fold(f32::MIN, |a, &b| a.max(b)) as f64;
            m + r.iter().map(|&x| (x as f64 - m).exp()).sum::<f64>().ln()
        };
        let mut sum = 0.0;
        for i in 0..rows {
            let (l, t) = (&logits[i * k..][..k], &teacher[i * k..][..k]);
            let (ll, lt) = (lse(l), lse(t));
            for c in 0..k {
                sum -= (t[c] as f64 - lt).exp() * (l[c] as f64 - ll);
            }
        }
        sum / rows as f64
    }

    #[test]
    fn self_distillation_teaches_every_exit_but_the_last_from_the_last() {
        let device = Device::flex();
        let mut rng = SmallRng::seed_from_u64(7);
        let (n, k) = (5, 7);
        let exits: Vec<Tensor<2>> = (0..3).map(|_| random(&mut rng, n, k, &device)).collect();
        let labels: Vec<u32> = (0..n).map(|_| rng.random_range(0..k as u32)).collect();
        let targets = smoothed_targets(&labels, k, 0.1, &device);
        let loss = |self_distill: f64| -> f64 {
            let w = LossWeights {
                distill: 0.0,
                self_distill,
                exits: Some(&[0.2, 0.3, 0.5]),
            };
            let v = multi_exit_loss(&exits, &targets, None, w).into_data();
            v.try_to_vec::<f32>().unwrap()[0] as f64
        };
        let data: Vec<Vec<f32>> = exits
            .iter()
            .map(|e| e.clone().into_data().try_to_vec::<f32>().unwrap())
            .collect();
        let expected = 0.2 * ce(&data[0], &data[2], k) + 0.3 * ce(&data[1], &data[2], k);
        let got = (loss(0.7) - loss(0.0)) / 0.7;
        assert!(
            (got - expected).abs() <= 1e-4 * expected.abs().max(1.0),
            "{got} vs {expected}"
        );
    }
}
