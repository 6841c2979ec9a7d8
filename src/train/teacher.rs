//! An external distillation teacher (DESIGN §4): the largest subnet of another trained
//! supernet, e.g. the static S = 1 one teaching a multi-stage supernet, whose last exit's
//! soft targets replace the run's own largest subnet's.

use std::path::Path;

use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::SmallRng;
use rand::SeedableRng;

use super::checkpoint;
use super::config::TrainConfig;
use crate::data::{to_batch, Augment, Dataset};
use crate::error::{Error, Result};
use crate::space::{Plan, SubnetConfig};
use crate::supernet::{forward, BnMode, MaskCache, PassOptions, Supernet};

/// A frozen supernet's largest subnet, run without gradients.
pub struct Teacher {
    net: Supernet,
    plan: Plan,
    masks: MaskCache,
    device: Device,
}

impl Teacher {
    /// Loads the supernet at `path` onto `device` (no autodiff). It must know the same
    /// `classes` and have held out the same validation split as `config`, so that the run
    /// never learns from a teacher that saw its validation images.
    pub fn load(
        path: &Path,
        config: &TrainConfig,
        classes: &[String],
        device: &Device,
    ) -> Result<Self> {
        let c = checkpoint::load(path, device)?;
        if c.header.classes != classes {
            return Err(Error::config(
                "teacher",
                format!("{} was trained on other classes", path.display()),
            ));
        }
        config
            .check_same_split(&c.header.config)
            .map_err(|e| Error::config("teacher", e.to_string()))?;
        let plan = Plan::new(&c.header.preset, &SubnetConfig::largest(&c.header.preset))?;
        Ok(Teacher {
            net: c.net,
            plan,
            masks: MaskCache::new(device),
            device: device.clone(),
        })
    }

    /// Soft targets `[N, classes]` of the images `idx` of `train` with the crops and flips of
    /// `aug_seed` (those of the step's students), on `target` (the training device). Batch
    /// statistics, no dropout, as the run's own teacher.
    pub fn soft_targets(
        &mut self,
        train: &Dataset,
        idx: &[usize],
        aug_seed: u64,
        target: &Device,
    ) -> Result<Tensor<2>> {
        let r = self.plan.resolution;
        let mut rng = SmallRng::seed_from_u64(aug_seed);
        let x = to_batch(train, idx, r, Some((&Augment::default(), &mut rng)))?;
        let x = Tensor::from_data(TensorData::new(x, [idx.len(), 3, r, r]), &self.device);
        let logits = forward(
            &self.net,
            &self.plan,
            x,
            &mut self.masks,
            PassOptions {
                bn: BnMode::Batch,
                dropout: 0.0,
                detach_early_exits: false,
                composed: false,
            },
        )?;
        let last = logits
            .into_iter()
            .last()
            .ok_or_else(|| Error::Device("the teacher has no exit".into()))?;
        Ok(Tensor::from_data(softmax(last, 1).into_data(), target))
    }
}
