//! From a decoded image of any size to the network's input: the same steps as training
//! (channels → 3, scale to [0, 1], bilinear resize, then [−1, 1]), with a box prefilter for
//! images much larger than the input so that downscaling does not alias.

use crate::error::{Error, Result};
use crate::ops::resize::to_network_input;

/// Largest accepted side, in pixels.
pub const MAX_SIDE: usize = 16_384;

/// `pixels` (`height × width × channels` interleaved `u8`, channels 1 = grey, 2 = grey+alpha,
/// 3 = RGB, 4 = RGBA; alpha is ignored) as a `[3, resolution, resolution]` input.
pub fn preprocess(
    pixels: &[u8],
    width: usize,
    height: usize,
    channels: usize,
    resolution: usize,
) -> Result<Vec<f32>> {
    if !(1..=4).contains(&channels) {
        return Err(Error::config(
            "image",
            format!("{channels} channels (expected 1 to 4)"),
        ));
    }
    if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
        return Err(Error::config(
            "image",
            format!("size {width}×{height} (each side must be 1 to {MAX_SIDE})"),
        ));
    }
    let expected = width * height * channels;
    if pixels.len() != expected {
        return Err(Error::Shape {
            op: "preprocess",
            what: "pixels",
            expected,
            got: pixels.len(),
        });
    }
    if resolution == 0 {
        return Err(Error::config("resolution", "must be > 0"));
    }
    // Planes [3, h, w] in [0, 1]; box-average by an integer factor while far too large.
    let factor = (width.min(height) / (2 * resolution)).max(1);
    let (h, w) = (height / factor, width / factor);
    let rgb = |c: usize| if channels >= 3 { c } else { 0 };
    let mut planes = vec![0f32; 3 * h * w];
    let norm = 1.0 / (255.0 * (factor * factor) as f32);
    for c in 0..3 {
        for y in 0..h {
            for x in 0..w {
                let mut sum = 0u32;
                for dy in 0..factor {
                    let row = (y * factor + dy) * width;
                    for dx in 0..factor {
                        sum += u32::from(pixels[(row + x * factor + dx) * channels + rgb(c)]);
                    }
                }
                planes[(c * h + y) * w + x] = sum as f32 * norm;
            }
        }
    }
    to_network_input(planes, h, w, resolution)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grey_and_rgb_agree_and_sizes_are_checked() {
        let grey: Vec<u8> = (0..28 * 28).map(|i| (i * 7 % 256) as u8).collect();
        let rgb: Vec<u8> = grey.iter().flat_map(|&v| [v, v, v]).collect();
        let rgba: Vec<u8> = grey.iter().flat_map(|&v| [v, v, v, 9]).collect();
        let a = preprocess(&grey, 28, 28, 1, 32).unwrap();
        assert_eq!(a.len(), 3 * 32 * 32);
        assert_eq!(a, preprocess(&rgb, 28, 28, 3, 32).unwrap());
        assert_eq!(a, preprocess(&rgba, 28, 28, 4, 32).unwrap());
        assert!(a.iter().all(|v| (-1.0..=1.0).contains(v)));
        // Same size: only the scaling.
        let b = preprocess(&grey, 28, 28, 1, 28).unwrap();
        assert_eq!(b[5], f32::from(grey[5]) / 255.0 * 2.0 - 1.0);
        // A huge flat image stays flat.
        let big = vec![255u8; 1000 * 700];
        assert!(preprocess(&big, 1000, 700, 1, 24)
            .unwrap()
            .iter()
            .all(|v| (v - 1.0).abs() < 1e-6));
        assert!(preprocess(&grey, 28, 27, 1, 32).is_err());
        assert!(preprocess(&grey, 0, 28, 1, 32).is_err());
        assert!(preprocess(&grey, 28, 28, 5, 32).is_err());
    }
}
