//! An in-memory labelled image set.

use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::error::{Error, Result};

/// Labelled images of one size, `u8`, channel-major per image.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// Pixels, `len × channels × height × width`.
    pub pixels: Vec<u8>,
    /// Label per image, `< classes.len()`.
    pub labels: Vec<u32>,
    /// Class names.
    pub classes: Vec<String>,
    /// 1 (grey) or 3 (RGB).
    pub channels: usize,
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
}

impl Dataset {
    /// Builds a data set, checking sizes and labels.
    pub fn new(
        pixels: Vec<u8>,
        labels: Vec<u32>,
        classes: Vec<String>,
        (channels, height, width): (usize, usize, usize),
    ) -> Result<Self> {
        let per = channels * height * width;
        if ![1, 3].contains(&channels) || per == 0 {
            return Err(Error::config(
                "dataset",
                format!("image shape {channels}×{height}×{width}"),
            ));
        }
        if pixels.len() != per * labels.len() {
            return Err(Error::Shape {
                op: "dataset",
                what: "pixels",
                expected: per * labels.len(),
                got: pixels.len(),
            });
        }
        if let Some(&l) = labels.iter().find(|&&l| l as usize >= classes.len()) {
            return Err(Error::config(
                "labels",
                format!("label {l} but only {} classes", classes.len()),
            ));
        }
        Ok(Dataset {
            pixels,
            labels,
            classes,
            channels,
            height,
            width,
        })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Bytes per image.
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Pixels of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        &self.pixels[i * self.image_len()..][..self.image_len()]
    }

    /// Pixels of image `i` interleaved (`height × width × channels`), as image files and
    /// [`crate::runtime::preprocess`] take them.
    pub fn interleaved(&self, i: usize) -> Vec<u8> {
        let (c, plane) = (self.channels, self.height * self.width);
        let img = self.image(i);
        (0..plane)
            .flat_map(|p| (0..c).map(move |ch| img[ch * plane + p]))
            .collect()
    }

    /// The images at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        let mut pixels = Vec::with_capacity(indices.len() * self.image_len());
        for &i in indices {
            pixels.extend_from_slice(self.image(i));
        }
        Dataset {
            pixels,
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            classes: self.classes.clone(),
            channels: self.channels,
            height: self.height,
            width: self.width,
        }
    }

    /// Splits off `val_len` images for validation, chosen by a shuffle with `seed`; returns
    /// (train, validation). The same seed always gives the same split.
    pub fn split_validation(&self, val_len: usize, seed: u64) -> Result<(Dataset, Dataset)> {
        if val_len >= self.len() {
            return Err(Error::config(
                "val_len",
                format!("{val_len} of {} images leaves none to train on", self.len()),
            ));
        }
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.shuffle(&mut SmallRng::seed_from_u64(seed));
        let (val, train) = order.split_at(val_len);
        let (mut val, mut train) = (val.to_vec(), train.to_vec());
        val.sort_unstable();
        train.sort_unstable();
        Ok((self.subset(&train), self.subset(&val)))
    }
}
