//! Presets: the maximal network a supernet is cut from (DESIGN §1). Presets are data.

use serde::{Deserialize, Serialize};

use super::{Activation, FixedCuts};
use crate::error::{Error, Result};

/// One unit of MBConv blocks sharing an output width.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unit {
    /// Output channels of every block of the unit.
    pub width: u32,
    /// Stride of the unit's first block.
    pub stride: u32,
    /// Whether the unit's blocks have squeeze-excite.
    pub se: bool,
    /// Activation of expand and depthwise.
    pub act: Activation,
}

/// The maximal network and the choices of the search space.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    /// Name (`tiny`, `imagenet`).
    pub name: String,
    /// Input resolutions to choose from, ascending.
    pub resolutions: Vec<u32>,
    /// Stem output channels (3×3 stride-2 conv, hswish); also the fixed first block's width.
    pub stem: u32,
    /// The elastic units.
    pub units: Vec<Unit>,
    /// Depth choices per unit, ascending (the largest is the number of blocks per unit).
    pub depths: Vec<u32>,
    /// Depthwise kernel choices, ascending.
    pub kernels: Vec<u32>,
    /// Expand-ratio choices, ascending.
    pub expand_ratios: Vec<u32>,
    /// Final expand (1×1 conv) channels.
    pub final_expand: u32,
    /// Feature-mix (linear) channels.
    pub feature_mix: u32,
    /// Stages S of the supernet (1 = plain once-for-all).
    pub stages: usize,
    /// Classes of the data set.
    pub classes: usize,
    /// The stage cuts of a fixed-cut space; unset (the default), cuts are a choice of every
    /// subnet (DESIGN §2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cuts: Option<FixedCuts>,
}

fn unit(width: u32, stride: u32, se: bool, act: Activation) -> Unit {
    Unit {
        width,
        stride,
        se,
        act,
    }
}

impl Preset {
    /// The default CPU-trainable preset for 20–32 px inputs.
    pub fn tiny(stages: usize, classes: usize) -> Result<Self> {
        let (r, h) = (Activation::Relu, Activation::Hswish);
        Preset {
            name: "tiny".into(),
            resolutions: vec![20, 24, 28, 32],
            stem: 16,
            units: vec![
                unit(24, 2, false, r),
                unit(32, 2, true, r),
                unit(48, 1, false, h),
                unit(64, 2, true, h),
            ],
            depths: vec![2, 3, 4],
            kernels: vec![3, 5, 7],
            expand_ratios: vec![3, 4, 6],
            final_expand: 256,
            feature_mix: 512,
            stages,
            classes,
            cuts: None,
        }
        .validated()
    }

    /// Once-for-all's MobileNetV3 search space at 128–224 px.
    pub fn imagenet(stages: usize, classes: usize) -> Result<Self> {
        let (r, h) = (Activation::Relu, Activation::Hswish);
        Preset {
            name: "imagenet".into(),
            resolutions: vec![128, 160, 192, 224],
            stem: 16,
            units: vec![
                unit(24, 2, false, r),
                unit(40, 2, true, r),
                unit(80, 2, false, h),
                unit(112, 1, true, h),
                unit(160, 2, true, h),
            ],
            depths: vec![2, 3, 4],
            kernels: vec![3, 5, 7],
            expand_ratios: vec![3, 4, 6],
            final_expand: 960,
            feature_mix: 1280,
            stages,
            classes,
            cuts: None,
        }
        .validated()
    }

    /// A preset by name.
    pub fn by_name(name: &str, stages: usize, classes: usize) -> Result<Self> {
        match name {
            "tiny" => Self::tiny(stages, classes),
            "imagenet" => Self::imagenet(stages, classes),
            other => Err(Error::config(
                "preset",
                format!("unknown preset {other:?} (tiny, imagenet)"),
            )),
        }
    }

    /// The same space with its stage cuts fixed (`Some`) or elastic (`None`).
    pub fn with_cuts(self, cuts: Option<FixedCuts>) -> Result<Self> {
        Preset { cuts, ..self }.validated()
    }

    /// Blocks per unit at maximum depth.
    pub fn max_depth(&self) -> usize {
        self.depths.last().copied().unwrap_or(0) as usize
    }

    /// Elastic blocks at maximum depth, unit by unit.
    pub fn blocks(&self) -> usize {
        self.units.len() * self.max_depth()
    }

    /// Checks the preset (choices sorted and allowed, every channel axis ≥ 4·S wide).
    pub fn validated(self) -> Result<Self> {
        let sorted = |v: &[u32]| !v.is_empty() && v.windows(2).all(|w| w[0] < w[1]);
        if !(1..=super::MAX_STAGES).contains(&self.stages) {
            return Err(Error::config(
                "stages",
                format!("{} is not in 1..={}", self.stages, super::MAX_STAGES),
            ));
        }
        for (field, v) in [
            ("resolutions", &self.resolutions),
            ("depths", &self.depths),
            ("kernels", &self.kernels),
            ("expand_ratios", &self.expand_ratios),
        ] {
            if !sorted(v) {
                return Err(Error::config(
                    field,
                    format!("{v:?} must be non-empty and ascending"),
                ));
            }
        }
        // Bounds that keep every size computation far from overflow (hostile model files).
        let too_big = |field: &str, v: u64, max: u64| {
            if v > max {
                Err(Error::config(
                    field,
                    format!("{v} exceeds the supported {max}"),
                ))
            } else {
                Ok(())
            }
        };
        too_big(
            "resolutions",
            u64::from(*self.resolutions.last().unwrap_or(&0)),
            4096,
        )?;
        too_big("depths", u64::from(*self.depths.last().unwrap_or(&0)), 16)?;
        too_big(
            "expand_ratios",
            u64::from(*self.expand_ratios.last().unwrap_or(&0)),
            16,
        )?;
        too_big("units", self.units.len() as u64, 64)?;
        too_big("classes", self.classes as u64, 1 << 20)?;
        let widest = self
            .units
            .iter()
            .map(|u| u.width)
            .chain([self.stem, self.final_expand, self.feature_mix])
            .max();
        too_big("width", u64::from(widest.unwrap_or(0)), 1 << 14)?;
        if self.depths[0] < 2 {
            return Err(Error::config(
                "depths",
                "every unit keeps at least 2 blocks",
            ));
        }
        if let Some(k) = self.kernels.iter().find(|k| ![3, 5, 7].contains(*k)) {
            return Err(Error::config("kernels", format!("{k} is not 3, 5 or 7")));
        }
        if self.classes == 0 {
            return Err(Error::config("classes", "at least one class"));
        }
        if let Some(cuts) = &self.cuts {
            cuts.validate(self.stages)?;
        }
        let min = 4 * self.stages as u32;
        let e_min = self.expand_ratios[0];
        let mut axes = vec![("stem".to_string(), self.stem)];
        for (i, u) in self.units.iter().enumerate() {
            if ![1, 2].contains(&u.stride) {
                return Err(Error::config(
                    format!("units[{i}].stride"),
                    format!("{} is not 1 or 2", u.stride),
                ));
            }
            axes.push((format!("units[{i}].width"), u.width));
            let mid = make_divisible(u.width.min(self.prev_width(i)) * e_min);
            axes.push((format!("units[{i}] middle"), mid));
            if u.se {
                axes.push((format!("units[{i}] SE"), se_reduced(mid)));
            }
        }
        axes.push(("final_expand".into(), self.final_expand));
        axes.push(("feature_mix".into(), self.feature_mix));
        if let Some((name, w)) = axes.into_iter().find(|(_, w)| *w < min) {
            return Err(Error::config(
                name,
                format!("{w} channels cannot hold {} stages of ≥ 4", self.stages),
            ));
        }
        Ok(self)
    }

    /// Input width of unit `i`'s first block.
    pub fn prev_width(&self, i: usize) -> u32 {
        if i == 0 {
            self.stem
        } else {
            self.units[i - 1].width
        }
    }
}

/// Once-for-all's `make_divisible(v, 8)`: round to the nearest multiple of 8, never below 90 %
/// of `v` (and at least 8).
pub fn make_divisible(v: u32) -> u32 {
    let d = 8;
    let mut n = ((v + d / 2) / d * d).max(d);
    if (n as f64) < 0.9 * v as f64 {
        n += d;
    }
    n
}

/// SE reduced channels for `mid` middle channels: make_divisible(mid / 4).
pub fn se_reduced(mid: u32) -> u32 {
    make_divisible(mid / 4)
}
