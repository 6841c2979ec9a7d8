//! The accuracy predictor (DESIGN §5): ridge regression from a subnet's summary features —
//! input resolution and the logarithm of the MACs up to each exit, and their squares — to every
//! exit's accuracy, refitted on all measured subnets; and the cross-validated Spearman rank
//! correlation that reports how well it ranks subnets it was not fitted on.

use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::space::{count, Preset, SubnetConfig};

/// L2 penalty of the ridge fit (not applied to the intercept).
const RIDGE: f64 = 1e-4;
/// Shuffles the cross-validated rank correlation is averaged over.
const CV_REPEATS: u64 = 10;

/// Summary features of `config`: 1 (intercept); the resolution scaled to [0, 1] over the
/// preset's range and ln(cum_macs[s]) / 16 for every exit; the squares of those.
pub fn features(preset: &Preset, config: &SubnetConfig) -> Result<Vec<f64>> {
    let (lo, hi) = match (preset.resolutions.first(), preset.resolutions.last()) {
        (Some(&lo), Some(&hi)) => (f64::from(lo), f64::from(hi)),
        _ => return Err(Error::config("preset", "no resolutions")),
    };
    let span = (hi - lo).max(1.0);
    let mut f = vec![1.0, (f64::from(config.resolution) - lo) / span];
    f.extend(
        count(preset, config)?
            .cum_macs
            .iter()
            .map(|&m| (m.max(1) as f64).ln() / 16.0),
    );
    let squares: Vec<f64> = f[1..].iter().map(|x| x * x).collect();
    f.extend(squares);
    Ok(f)
}

/// A fitted predictor: one weight vector per exit over [`features`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Predictor {
    weights: Vec<Vec<f64>>,
}

impl Predictor {
    /// Fits `x → y` (rows of equal length, x's first column the intercept) by ridge regression.
    pub fn fit(x: &[Vec<f64>], y: &[Vec<f64>]) -> Result<Self> {
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
        // Normal equations (XᵀX + λI') w = Xᵀy, I' without the intercept.
        let mut gram = vec![vec![0.0; inputs]; inputs];
        for r in x {
            for i in 0..inputs {
                for j in 0..inputs {
                    gram[i][j] += r[i] * r[j];
                }
            }
        }
        for (i, row) in gram.iter_mut().enumerate().skip(1) {
            row[i] += RIDGE;
        }
        let weights = (0..outputs)
            .map(|o| {
                let rhs: Vec<f64> = (0..inputs)
                    .map(|i| x.iter().zip(y).map(|(r, t)| r[i] * t[o]).sum())
                    .collect();
                solve(gram.clone(), rhs)
            })
            .collect::<Result<_>>()?;
        Ok(Predictor { weights })
    }

    /// Predicted accuracy of every exit for one feature row.
    pub fn predict(&self, x: &[f64]) -> Vec<f64> {
        self.weights
            .iter()
            .map(|w| w.iter().zip(x).map(|(a, b)| a * b).sum())
            .collect()
    }
}

/// Solves `a · w = b` by Gaussian elimination with partial pivoting.
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Result<Vec<f64>> {
    let n = b.len();
    for i in 0..n {
        let p = (i..n)
            .max_by(|&r, &s| a[r][i].abs().total_cmp(&a[s][i].abs()))
            .unwrap_or(i);
        if a[p][i].abs() < 1e-12 {
            return Err(Error::config("predictor", "singular features"));
        }
        a.swap(i, p);
        b.swap(i, p);
        let pivot = a[i].clone();
        for r in i + 1..n {
            let f = a[r][i] / pivot[i];
            for (x, p) in a[r][i..].iter_mut().zip(&pivot[i..]) {
                *x -= f * p;
            }
            b[r] -= f * b[i];
        }
    }
    let mut w = vec![0.0; n];
    for i in (0..n).rev() {
        let s: f64 = (i + 1..n).map(|k| a[i][k] * w[k]).sum();
        w[i] = (b[i] - s) / a[i][i];
    }
    Ok(w)
}

/// Spearman rank correlation of the last exit's predictions when each of `folds` folds is
/// predicted by a model fitted on the others, averaged over [`CV_REPEATS`] seeded shuffles;
/// `None` below 2·folds samples.
pub fn cross_validated_rank(
    x: &[Vec<f64>],
    y: &[Vec<f64>],
    folds: usize,
    seed: u64,
) -> Result<Option<f64>> {
    let n = x.len();
    if folds < 2 || n < 2 * folds {
        return Ok(None);
    }
    let truth: Vec<f64> = y.iter().map(|r| *r.last().unwrap_or(&0.0)).collect();
    let mut sum = 0.0;
    for repeat in 0..CV_REPEATS {
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut SmallRng::seed_from_u64(seed.wrapping_add(repeat)));
        let mut pred = vec![0.0; n];
        for k in 0..folds {
            let held: Vec<usize> = order.iter().skip(k).step_by(folds).copied().collect();
            let (fx, fy): (Vec<_>, Vec<_>) = (0..n)
                .filter(|i| !held.contains(i))
                .map(|i| (x[i].clone(), y[i].clone()))
                .unzip();
            let p = Predictor::fit(&fx, &fy)?;
            for &i in &held {
                pred[i] = *p.predict(&x[i]).last().unwrap_or(&0.0);
            }
        }
        sum += spearman(&pred, &truth);
    }
    Ok(Some(sum / CV_REPEATS as f64))
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
    use rand::Rng;

    #[test]
    fn spearman_of_known_orders() {
        assert!((spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]) - 1.0).abs() < 1e-12);
        assert!((spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        assert_eq!(spearman(&[1.0, 1.0], &[1.0, 2.0]), 0.0);
    }

    /// A noiseless linear target is recovered, and ranked perfectly under cross-validation.
    #[test]
    fn recovers_a_linear_target() {
        let mut rng = SmallRng::seed_from_u64(9);
        let w = [0.8, 0.05, -0.02, 0.03];
        let (x, y): (Vec<Vec<f64>>, Vec<Vec<f64>>) = (0..37)
            .map(|_| {
                let mut r = vec![1.0];
                r.extend((0..3).map(|_| rng.random_range(0.0..1.0)));
                let t: f64 = r.iter().zip(&w).map(|(a, b)| a * b).sum();
                (r, vec![t - 0.1, t])
            })
            .unzip();
        let p = Predictor::fit(&x, &y).unwrap();
        let probe = [1.0, 0.3, 0.9, 0.1];
        let want: f64 = probe.iter().zip(&w).map(|(a, b)| a * b).sum();
        let got = p.predict(&probe);
        assert!(
            (got[1] - want).abs() < 1e-3 && (got[0] - want + 0.1).abs() < 1e-3,
            "{got:?}"
        );
        let rho = cross_validated_rank(&x, &y, 4, 1).unwrap().unwrap();
        assert!(rho > 0.99, "rank correlation {rho}");
        assert_eq!(cross_validated_rank(&x[..5], &y[..5], 4, 1).unwrap(), None);
    }

    #[test]
    fn features_grow_with_resolution_and_cost() {
        let preset = Preset::tiny(3, 10).unwrap();
        let small = features(&preset, &SubnetConfig::smallest(&preset)).unwrap();
        let large = features(&preset, &SubnetConfig::largest(&preset)).unwrap();
        assert_eq!(small.len(), 1 + 2 * (1 + preset.stages));
        assert_eq!((small[1], large[1]), (0.0, 1.0));
        assert!(small.iter().zip(&large).skip(2).all(|(a, b)| a < b));
        let half = 1 + preset.stages;
        assert!(
            (large[1 + half] - 1.0).abs() < 1e-12
                && (large[2 + half] - large[2].powi(2)).abs() < 1e-12
        );
    }
}
