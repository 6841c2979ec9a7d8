//! The accuracy predictor (DESIGN §5): a small MLP (one hidden ReLU layer) from the encoded
//! config to every exit's accuracy, trained full-batch with Adam on measured subnets, plus
//! the Spearman rank correlation used to report how well it ranks held-out subnets.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A trained predictor.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Predictor {
    inputs: usize,
    hidden: usize,
    outputs: usize,
    /// `[hidden, inputs]`, `[hidden]`, `[outputs, hidden]`, `[outputs]`.
    w1: Vec<f32>,
    b1: Vec<f32>,
    w2: Vec<f32>,
    b2: Vec<f32>,
    /// Mean of the targets (predictions are offsets from it).
    mean: Vec<f32>,
}

impl Predictor {
    /// Fits `x → y` (rows of equal length) with `hidden` units for `epochs` full-batch Adam
    /// steps, L2 `decay`.
    pub fn fit(
        x: &[Vec<f32>],
        y: &[Vec<f32>],
        hidden: usize,
        epochs: usize,
        decay: f32,
        seed: u64,
    ) -> Result<Self> {
        let (n, inputs) = (x.len(), x.first().map_or(0, Vec::len));
        let outputs = y.first().map_or(0, Vec::len);
        if n == 0 || n != y.len() || inputs == 0 || outputs == 0 {
            return Err(Error::config(
                "predictor",
                "needs matching, non-empty samples",
            ));
        }
        if x.iter().any(|r| r.len() != inputs) || y.iter().any(|r| r.len() != outputs) {
            return Err(Error::config("predictor", "rows of different lengths"));
        }
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut init = |len: usize, fan_in: usize| -> Vec<f32> {
            let a = (6.0 / fan_in as f32).sqrt();
            (0..len).map(|_| rng.random_range(-a..a)).collect()
        };
        let mean: Vec<f32> = (0..outputs)
            .map(|o| y.iter().map(|r| r[o]).sum::<f32>() / n as f32)
            .collect();
        let mut p = Predictor {
            inputs,
            hidden,
            outputs,
            w1: init(hidden * inputs, inputs),
            b1: vec![0.0; hidden],
            w2: init(outputs * hidden, hidden)
                .iter()
                .map(|v| v * 0.1)
                .collect(),
            b2: vec![0.0; outputs],
            mean,
        };
        let sizes = [p.w1.len(), p.b1.len(), p.w2.len(), p.b2.len()];
        let mut m: Vec<Vec<f32>> = sizes.iter().map(|&l| vec![0.0; l]).collect();
        let mut v = m.clone();
        let (lr, b1, b2, eps) = (3e-3f32, 0.9f32, 0.999f32, 1e-8f32);
        for t in 1..=epochs {
            let mut g: Vec<Vec<f32>> = sizes.iter().map(|&l| vec![0.0; l]).collect();
            for (xi, yi) in x.iter().zip(y) {
                let h: Vec<f32> = (0..hidden)
                    .map(|j| (p.b1[j] + dot(&p.w1[j * inputs..][..inputs], xi)).max(0.0))
                    .collect();
                for o in 0..outputs {
                    let pred = p.mean[o] + p.b2[o] + dot(&p.w2[o * hidden..][..hidden], &h);
                    let d = 2.0 * (pred - yi[o]) / (n * outputs) as f32;
                    g[3][o] += d;
                    for j in 0..hidden {
                        g[2][o * hidden + j] += d * h[j];
                        if h[j] > 0.0 {
                            let dh = d * p.w2[o * hidden + j];
                            g[1][j] += dh;
                            for (k, &xk) in xi.iter().enumerate() {
                                if xk != 0.0 {
                                    g[0][j * inputs + k] += dh * xk;
                                }
                            }
                        }
                    }
                }
            }
            let params = [&mut p.w1, &mut p.b1, &mut p.w2, &mut p.b2];
            for (i, param) in params.into_iter().enumerate() {
                for (k, w) in param.iter_mut().enumerate() {
                    let grad = g[i][k] + if i % 2 == 0 { decay * *w } else { 0.0 };
                    m[i][k] = b1 * m[i][k] + (1.0 - b1) * grad;
                    v[i][k] = b2 * v[i][k] + (1.0 - b2) * grad * grad;
                    let mh = m[i][k] / (1.0 - b1.powi(t as i32));
                    let vh = v[i][k] / (1.0 - b2.powi(t as i32));
                    *w -= lr * mh / (vh.sqrt() + eps);
                }
            }
        }
        Ok(p)
    }

    /// Predicted outputs for one encoded config.
    pub fn predict(&self, x: &[f32]) -> Vec<f32> {
        let h: Vec<f32> = (0..self.hidden)
            .map(|j| (self.b1[j] + dot(&self.w1[j * self.inputs..][..self.inputs], x)).max(0.0))
            .collect();
        (0..self.outputs)
            .map(|o| {
                self.mean[o] + self.b2[o] + dot(&self.w2[o * self.hidden..][..self.hidden], &h)
            })
            .collect()
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
            j += 1;
        }
        for &k in &idx[i..=j] {
            r[k] = (i + j) as f64 / 2.0;
        }
        i = j + 1;
    }
    r
}

/// Spearman's rank correlation of `a` and `b` (ties share their mean rank); 0 when either is
/// constant.
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    let (ra, rb) = (ranks(a), ranks(b));
    let n = ra.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let cov: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = ra.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = rb.iter().map(|y| (y - mb).powi(2)).sum();
    if va == 0.0 || vb == 0.0 {
        0.0
    } else {
        cov / (va * vb).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spearman_of_known_orders() {
        assert!((spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]) - 1.0).abs() < 1e-12);
        assert!((spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        assert_eq!(spearman(&[1.0, 1.0], &[1.0, 2.0]), 0.0);
    }

    /// On a noiseless additive target the predictor ranks held-out samples well.
    #[test]
    fn learns_an_additive_target() {
        let mut rng = SmallRng::seed_from_u64(9);
        let weights: Vec<f32> = (0..30).map(|_| rng.random_range(-0.05..0.05)).collect();
        let sample = |rng: &mut SmallRng| {
            let x: Vec<f32> = (0..30)
                .map(|_| f32::from(u8::from(rng.random_bool(0.5))))
                .collect();
            let y = 0.8 + dot(&x, &weights);
            (x, vec![y, y - 0.1])
        };
        let (x, y): (Vec<_>, Vec<_>) = (0..80).map(|_| sample(&mut rng)).unzip();
        let p = Predictor::fit(&x, &y, 32, 800, 1e-4, 1).unwrap();
        let (tx, ty): (Vec<_>, Vec<_>) = (0..40).map(|_| sample(&mut rng)).unzip();
        let pred: Vec<f64> = tx.iter().map(|x| f64::from(p.predict(x)[0])).collect();
        let truth: Vec<f64> = ty.iter().map(|y| f64::from(y[0])).collect();
        let rho = spearman(&pred, &truth);
        assert!(rho > 0.9, "rank correlation {rho}");
    }
}
