//! Which training images each step sees: fixed-seed permutations per epoch, so that a resumed
//! run sees exactly the batches the uninterrupted run would have.

use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

/// A seed derived from the run seed and a counter (SplitMix64 finaliser).
pub fn derive_seed(seed: u64, salt: u64, counter: u64) -> u64 {
    let mut z = seed
        .wrapping_add(salt.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(counter.wrapping_mul(0xBF58_476D_1CE4_E5B9));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Batches of indices into a training set of `len` images.
#[derive(Debug)]
pub struct Batches {
    len: usize,
    batch: usize,
    seed: u64,
    epoch: Option<(usize, Vec<usize>)>,
}

impl Batches {
    /// Batches of `batch` over `len` images (`len > 0`).
    pub fn new(len: usize, batch: usize, seed: u64) -> Self {
        Batches {
            len,
            batch,
            seed,
            epoch: None,
        }
    }

    fn permutation(&mut self, epoch: usize) -> &[usize] {
        if self.epoch.as_ref().map(|e| e.0) != Some(epoch) {
            let mut p: Vec<usize> = (0..self.len).collect();
            p.shuffle(&mut SmallRng::seed_from_u64(derive_seed(
                self.seed,
                1,
                epoch as u64,
            )));
            self.epoch = Some((epoch, p));
        }
        &self.epoch.as_ref().expect("just set").1
    }

    /// The images of optimizer step `step`.
    pub fn step(&mut self, step: usize) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.batch);
        let mut pos = step * self.batch;
        while out.len() < self.batch {
            let (epoch, off) = (pos / self.len, pos % self.len);
            let take = (self.batch - out.len()).min(self.len - off);
            out.extend_from_slice(&self.permutation(epoch)[off..off + take]);
            pos += take;
        }
        out
    }

    /// Epochs completed after `steps` steps.
    pub fn epochs(&self, steps: usize) -> f64 {
        (steps * self.batch) as f64 / self.len as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_image_once_per_epoch_and_reproducible() {
        let mut b = Batches::new(10, 4, 3);
        let first: Vec<usize> = (0..5).flat_map(|s| b.step(s)).collect();
        let mut e0 = first[..10].to_vec();
        e0.sort();
        assert_eq!(e0, (0..10).collect::<Vec<_>>());
        let mut e1 = first[10..20].to_vec();
        e1.sort();
        assert_eq!(e1, (0..10).collect::<Vec<_>>());
        assert_ne!(first[..10], first[10..20]);
        let mut again = Batches::new(10, 4, 3);
        assert_eq!(again.step(3), first[12..16]);
    }
}
