//! The [`Evaluator`] of a trained supernet: BN re-estimation on training images, then every
//! exit on the validation images.

use burn::tensor::Device;

use super::Evaluator;
use crate::data::Dataset;
use crate::error::Result;
use crate::runtime::thresholds::ExitRecords;
use crate::space::{Plan, Preset, SubnetConfig};
use crate::supernet::Supernet;
use crate::train::{calibrate, exit_records};

/// Measures subnets of a trained supernet.
pub struct SupernetEvaluator<'a> {
    /// The supernet (without autodiff).
    pub net: &'a Supernet,
    /// Its preset.
    pub preset: &'a Preset,
    /// Images for BN re-estimation (from the training split).
    pub bn_data: &'a Dataset,
    /// How many of them.
    pub bn_images: usize,
    /// The labelled images the records are taken on.
    pub data: &'a Dataset,
    /// Where to run.
    pub device: Device,
}

impl Evaluator for SupernetEvaluator<'_> {
    fn measure(&mut self, config: &SubnetConfig) -> Result<ExitRecords> {
        let plan = Plan::new(self.preset, config)?;
        let stats = calibrate(self.net, &plan, self.bn_data, self.bn_images, &self.device)?;
        exit_records(self.net, &plan, &stats, self.data, &self.device)
    }
}
