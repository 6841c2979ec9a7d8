//! From stored images to NCHW `f32` batches: grey to 3 channels, optional random crop (zero
//! padding, as for CIFAR) and horizontal flip, bilinear resize to the subnet's resolution,
//! then scaling to [−1, 1].

use rand::rngs::SmallRng;
use rand::Rng;

use super::Dataset;
use crate::error::Result;
use crate::ops::resize::to_network_input;

/// Training-time augmentation.
#[derive(Clone, Copy, Debug)]
pub struct Augment {
    /// Random crop: shift by up to `pad` pixels each way, filling with 0 (default 2).
    pub pad: usize,
    /// Random horizontal flip with probability ½.
    pub flip: bool,
}

impl Default for Augment {
    fn default() -> Self {
        Augment { pad: 2, flip: true }
    }
}

/// The images at `indices` as a `[B, 3, resolution, resolution]` batch in [−1, 1], augmented
/// when `augment` is given.
pub fn to_batch(
    data: &Dataset,
    indices: &[usize],
    resolution: usize,
    mut augment: Option<(&Augment, &mut SmallRng)>,
) -> Result<Vec<f32>> {
    let (h, w) = (data.height, data.width);
    let mut out = Vec::with_capacity(indices.len() * 3 * resolution * resolution);
    let mut planes = vec![0f32; 3 * h * w];
    for &i in indices {
        let img = data.image(i);
        let (dy, dx, flip) = match augment.as_mut() {
            Some((a, rng)) => {
                let p = a.pad as i64;
                let dy = rng.random_range(-p..=p) as isize;
                let dx = rng.random_range(-p..=p) as isize;
                (dy, dx, a.flip && rng.random_bool(0.5))
            }
            None => (0, 0, false),
        };
        for c in 0..3 {
            let src = &img[(c % data.channels) * h * w..][..h * w];
            for y in 0..h {
                for x in 0..w {
                    let sy = y as isize + dy;
                    let sx0 = if flip { w - 1 - x } else { x } as isize + dx;
                    let v = if sy >= 0 && sy < h as isize && sx0 >= 0 && sx0 < w as isize {
                        f32::from(src[sy as usize * w + sx0 as usize]) / 255.0
                    } else {
                        0.0
                    };
                    planes[(c * h + y) * w + x] = v;
                }
            }
        }
        out.extend(to_network_input(planes.clone(), h, w, resolution)?);
    }
    Ok(out)
}
