//! The layer plan of a subnet: every layer's stage cuts, sizes and choices, derived from the
//! preset and the config alone. The MACs counter, the reference network, the supernet and the
//! runtime all walk this one plan; it serializes to JSON for tools outside the crate.

use serde::Serialize;

use super::layers::Layer;
use super::preset::{make_divisible, se_reduced, Preset};
use super::subnet::SubnetConfig;
use super::Activation;
use super::{stage_cuts, StageCuts};
use crate::error::{Error, Result};

/// One MBConv block of the subnet.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BlockPlan {
    /// Input channel cuts.
    pub in_cuts: StageCuts,
    /// Middle channel cuts (= input cuts when the block does not expand).
    pub mid_cuts: StageCuts,
    /// Output channel cuts.
    pub out_cuts: StageCuts,
    /// SE reduced-channel cuts, when the block has SE.
    pub se_cuts: Option<StageCuts>,
    /// Whether the block has a 1×1 expand (the fixed first block does not).
    pub expand: bool,
    /// Depthwise stride.
    pub stride: usize,
    /// Input height = width.
    pub size: usize,
    /// Depthwise kernel per stage.
    pub kernels: Vec<usize>,
    /// Activation of expand and depthwise.
    pub act: Activation,
    /// Per stage: does the block run?
    pub active: Vec<bool>,
    /// Elastic block index (unit · max depth + index in unit), `None` for the fixed first block.
    pub elastic_index: Option<usize>,
}

impl BlockPlan {
    /// Output height = width.
    pub fn out_size(&self) -> usize {
        self.size.div_ceil(self.stride)
    }

    /// Whether the block adds its input (stride 1 and unchanged width).
    pub fn residual(&self) -> bool {
        self.stride == 1 && self.in_cuts == self.out_cuts
    }
}

/// Most activation floats one image may need (256 MiB): six times what the `imagenet` preset's
/// largest subnet needs at 224 px, far below what a hostile file could ask for.
pub const MAX_ACTIVATION_FLOATS: u64 = 1 << 26;

/// Every layer of a subnet, in execution order.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Plan {
    /// Stages S.
    pub stages: usize,
    /// Input resolution.
    pub resolution: usize,
    /// Stem output cuts (3×3 stride-2 conv from the image, hswish).
    pub stem_cuts: StageCuts,
    /// The fixed first block, then the elastic blocks that run in some stage.
    pub blocks: Vec<BlockPlan>,
    /// Final-expand output cuts (1×1 conv, BN, hswish) at the last block's size.
    pub final_cuts: StageCuts,
    /// Feature-mix output cuts (stage-causal linear, no bias, hswish).
    pub mix_cuts: StageCuts,
    /// Classes of every exit.
    pub classes: usize,
    /// Every layer that holds weights, in execution order ([`Plan::layers`]).
    #[serde(skip)]
    layers: Vec<Layer>,
}

impl Plan {
    /// The plan of `config` in `preset` (validates the config).
    pub fn new(preset: &Preset, config: &SubnetConfig) -> Result<Self> {
        config.validate(preset)?;
        let s_n = preset.stages;
        let (p, p_mid) = (&config.p, config.mid_p());
        let stem_cuts = stage_cuts(preset.stem, p)?;
        let mut size = (config.resolution as usize).div_ceil(2);
        let mut blocks = vec![BlockPlan {
            in_cuts: stem_cuts.clone(),
            mid_cuts: stem_cuts.clone(),
            out_cuts: stem_cuts.clone(),
            se_cuts: None,
            expand: false,
            stride: 1,
            size,
            kernels: vec![3; s_n],
            act: Activation::Relu,
            active: vec![true; s_n],
            elastic_index: None,
        }];
        let mut in_cuts = stem_cuts.clone();
        for (u, unit) in preset.units.iter().enumerate() {
            let out_cuts = stage_cuts(unit.width, p)?;
            for i in 0..config.unit_blocks(u) as usize {
                let index = u * preset.max_depth() + i;
                let mid = make_divisible(in_cuts.width() * config.expand[index]);
                let stride = if i == 0 { unit.stride as usize } else { 1 };
                let block = BlockPlan {
                    in_cuts: in_cuts.clone(),
                    mid_cuts: stage_cuts(mid, p_mid)?,
                    out_cuts: out_cuts.clone(),
                    se_cuts: if unit.se {
                        Some(stage_cuts(se_reduced(mid), p_mid)?)
                    } else {
                        None
                    },
                    expand: true,
                    stride,
                    size,
                    kernels: (0..s_n).map(|s| config.kernel[s][index] as usize).collect(),
                    act: unit.act,
                    active: (0..s_n).map(|s| config.active(s, u, i)).collect(),
                    elastic_index: Some(index),
                };
                size = block.out_size();
                in_cuts = out_cuts.clone();
                blocks.push(block);
            }
        }
        let mut plan = Plan {
            stages: s_n,
            resolution: config.resolution as usize,
            stem_cuts,
            blocks,
            final_cuts: stage_cuts(preset.final_expand, p)?,
            mix_cuts: stage_cuts(preset.feature_mix, p)?,
            classes: preset.classes,
            layers: Vec::new(),
        };
        plan.layers = plan.build_layers(&StageCuts::single(preset.classes as u32)?);
        let floats = plan.activation_floats();
        if floats > MAX_ACTIVATION_FLOATS {
            return Err(Error::config(
                "resolution",
                format!(
                    "{} px needs {} MiB of activations per image, more than the supported {} MiB",
                    plan.resolution,
                    (floats * 4) >> 20,
                    (MAX_ACTIVATION_FLOATS * 4) >> 20
                ),
            ));
        }
        Ok(plan)
    }

    /// Floats of one image's activation tensors over the whole pass: the input, the stem, every
    /// block's input, middle (before and after the depthwise conv) and output, and the head.
    fn activation_tensors(&self) -> Vec<u64> {
        let sq = |n: usize| (n * n) as u64;
        let w = |c: &StageCuts| u64::from(c.width());
        let mut t = vec![
            3 * sq(self.resolution),
            sq(self.stem_size()) * w(&self.stem_cuts),
        ];
        for b in &self.blocks {
            t.extend([
                sq(b.size) * w(&b.in_cuts),
                sq(b.size) * w(&b.mid_cuts),
                sq(b.out_size()) * w(&b.mid_cuts),
                sq(b.out_size()) * w(&b.out_cuts),
            ]);
        }
        t.extend([
            sq(self.final_size()) * w(&self.final_cuts),
            w(&self.final_cuts),
            w(&self.mix_cuts),
            (self.stages * self.classes) as u64,
        ]);
        t
    }

    /// Floats of one image's activations over the whole pass: an upper bound of what a runtime
    /// keeps per image.
    pub fn activation_floats(&self) -> u64 {
        self.activation_tensors().iter().sum()
    }

    /// Floats of one image's largest activation tensor (a GPU runtime's largest buffer per image).
    pub fn largest_activation_floats(&self) -> u64 {
        self.activation_tensors().into_iter().max().unwrap_or(0)
    }

    /// Every layer that holds weights, in execution order: the one list the MACs counter, the
    /// file format and the weight containers walk.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// Height = width after the stem.
    pub fn stem_size(&self) -> usize {
        self.resolution.div_ceil(2)
    }

    /// Height = width of the last block's output (where the final expand runs).
    pub fn final_size(&self) -> usize {
        self.blocks
            .last()
            .map_or(self.stem_size(), BlockPlan::out_size)
    }

    /// Channels of the last block's output.
    pub fn last_cuts(&self) -> &StageCuts {
        self.blocks.last().map_or(&self.stem_cuts, |b| &b.out_cuts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activations_are_bounded() {
        let preset = Preset::by_name("imagenet", 1, 1000).unwrap();
        let largest = Plan::new(&preset, &SubnetConfig::largest(&preset)).unwrap();
        let floats = largest.activation_floats();
        assert!(floats * 6 <= MAX_ACTIVATION_FLOATS, "{floats}");
        assert!(largest.largest_activation_floats() * 4 < floats);
        // The same net at 8× the resolution needs 64× the activations: refused.
        let mut big = preset.clone();
        big.resolutions = vec![224 * 8];
        let mut config = SubnetConfig::largest(&preset);
        config.resolution = 224 * 8;
        let err = Plan::new(&big, &config).unwrap_err().to_string();
        assert!(err.contains("resolution") && err.contains("MiB"), "{err}");
    }

    /// `examples/torch_train_step.py` reads these fields; cuts serialize as their points.
    #[test]
    fn should_serialize_the_fields_outside_tools_read() {
        let preset = Preset::tiny(3, 10).unwrap();
        let plan = Plan::new(&preset, &SubnetConfig::smallest(&preset)).unwrap();
        let v = serde_json::to_value(&plan).unwrap();
        let points = |c: &StageCuts| serde_json::to_value(c.points()).unwrap();
        assert_eq!(v["stem_cuts"], points(&plan.stem_cuts));
        assert_eq!(v["mix_cuts"], points(&plan.mix_cuts));
        assert_eq!(v["resolution"], plan.resolution);
        assert_eq!(v["stages"], 3);
        let blocks = v["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), plan.blocks.len());
        for (j, b) in blocks.iter().zip(&plan.blocks) {
            assert_eq!(j["mid_cuts"], points(&b.mid_cuts));
            assert_eq!(j["kernels"], serde_json::to_value(&b.kernels).unwrap());
            assert_eq!(j["active"], serde_json::to_value(&b.active).unwrap());
            assert_eq!(j["act"], serde_json::to_value(b.act).unwrap());
            assert_eq!(j["se_cuts"].is_null(), b.se_cuts.is_none());
            for key in ["in_cuts", "out_cuts", "expand", "stride", "size"] {
                assert!(!j[key].is_null(), "missing {key}");
            }
        }
    }
}
