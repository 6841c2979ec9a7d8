//! MACs and parameters of the stage-wise pass, counted from the config alone (DESIGN §2).
//!
//! k×k conv O·I·k²·Ho·Wo; depthwise C·k²·Ho·Wo; 1×1 conv O·I·H·W; linear O·I; the stage-s part
//! of a 1×1 or linear layer costs |out slice s| · c_s(in). SE and every exit head count; BN,
//! biases, activations, pooling, SE scaling, residual adds and the input resize cost 0.
//! Parameters are those an exported net stores: each layer's lower-triangular stage blocks,
//! folded biases, per-stage depthwise kernels at their size, and one classifier per exit; a
//! block inactive for stage s stores nothing for stage s.

use serde::Serialize;

use super::plan::Plan;
use super::preset::Preset;
use super::subnet::SubnetConfig;
use crate::error::{Error, Result};

/// Cost of one subnet, per stage.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Cost {
    /// `macs[s]`: the extra MACs of stage s, its exit head included.
    pub macs: Vec<u64>,
    /// `cum_macs[s]`: MACs up to and including exit s's head.
    pub cum_macs: Vec<u64>,
    /// `params[s]`: parameters stage s adds.
    pub params: Vec<u64>,
}

impl Cost {
    /// Total parameters of the subnet.
    pub fn total_params(&self) -> u64 {
        self.params.iter().sum()
    }
}

/// Parses a MACs count as people write it: `3M`, `2.5e6`, `900k`, `1.2G` (finite, > 0).
pub fn parse_macs(s: &str) -> Result<f64> {
    let t = s.trim();
    let (num, mul) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 1e3),
        Some('m' | 'M') => (&t[..t.len() - 1], 1e6),
        Some('g' | 'G') => (&t[..t.len() - 1], 1e9),
        _ => (t, 1.0),
    };
    let v: f64 = num.parse().map_err(|_| {
        Error::config(
            "MACs",
            format!("'{s}' is not a number of MACs (e.g. 3M, 900k)"),
        )
    })?;
    if !(v.is_finite() && v > 0.0) {
        return Err(Error::config(
            "MACs",
            format!("'{s}' must be a finite number > 0"),
        ));
    }
    Ok(v * mul)
}

/// Counts MACs and parameters of `config`'s stage-wise pass: the sum over its layer list.
pub fn count(preset: &Preset, config: &SubnetConfig) -> Result<Cost> {
    let plan = Plan::new(preset, config)?;
    let mut macs = vec![0; plan.stages];
    let mut params = vec![0; plan.stages];
    for layer in plan.layers() {
        for s in layer.stored_stages() {
            macs[s] += layer.macs(s);
            params[s] += layer.params(s);
        }
    }
    let cum_macs = macs
        .iter()
        .scan(0, |acc, &m| {
            *acc += m;
            Some(*acc)
        })
        .collect();
    Ok(Cost {
        macs,
        cum_macs,
        params,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_parse_macs_with_suffixes_and_refuse_the_rest() {
        assert_eq!(parse_macs("3M").unwrap(), 3e6);
        assert_eq!(parse_macs(" 900k ").unwrap(), 9e5);
        assert_eq!(parse_macs("2.5e6").unwrap(), 2.5e6);
        assert_eq!(parse_macs("1.5g").unwrap(), 1.5e9);
        for bad in ["", "M", "abc", "-1M", "0", "NaN", "infM"] {
            assert!(parse_macs(bad).is_err(), "{bad}");
        }
    }

    fn close(got: u64, want_millions: f64) -> bool {
        ((got as f64 / 1e6) - want_millions).abs() <= 0.006 * want_millions
    }

    #[test]
    fn should_match_the_independent_count_of_the_design() {
        // DESIGN §1: an independent float64 count, tiny at 32 px, 10 classes.
        let dense = Preset::tiny(1, 10).unwrap();
        let staged = Preset::tiny(3, 10).unwrap();
        let big = count(&dense, &SubnetConfig::largest(&dense)).unwrap();
        assert!(close(big.cum_macs[0], 9.28), "{big:?}");
        let big3 = count(&staged, &SubnetConfig::largest(&staged)).unwrap();
        assert!(close(big3.cum_macs[2], 7.75), "{big3:?}");
        assert!(close(big3.cum_macs[0], 4.51), "{big3:?}");
        let mut small = SubnetConfig::smallest(&dense);
        small.resolution = 32;
        assert!(close(count(&dense, &small).unwrap().cum_macs[0], 1.92));
        let mut small3 = SubnetConfig::smallest(&staged);
        small3.resolution = 32;
        assert!(close(count(&staged, &small3).unwrap().cum_macs[2], 1.47));
    }

    #[test]
    fn should_match_the_design_count_for_imagenet() {
        let preset = Preset::imagenet(1, 1000).unwrap();
        let big = count(&preset, &SubnetConfig::largest(&preset)).unwrap();
        assert!(close(big.cum_macs[0], 566.0), "{big:?}");
        let mut small = SubnetConfig::smallest(&preset);
        small.resolution = 224;
        assert!(close(count(&preset, &small).unwrap().cum_macs[0], 121.0));
    }

    #[test]
    fn should_match_a_hand_count() {
        // stem 8, one unit (8, stride 1, no SE) of 2 blocks, mid 24, S = 2, p = 0.5, 4 px input,
        // 2 classes. Cuts: 8 → [0, 4, 8], 24 → [0, 12, 24]; after the stem 2 × 2 = 4 pixels.
        // stage 1: stem 4·27·4 = 432, dw 4·9·4 = 144, project 4·4·4 = 64,
        //          per block (expand 12·4·4 + dw 12·9·4 + project 4·12·4) = 816, ×2,
        //          final expand 4·4·4 = 64, feature mix 4·4 = 16, classifier 2·4 = 8 → 2360.
        // stage 2: 432 + 144 + 4·8·4 + 2·(12·8·4 + 432 + 4·24·4) + 4·8·4 + 4·8 + 2·8 → 3280.
        let preset = Preset {
            name: "hand".into(),
            resolutions: vec![4],
            stem: 8,
            units: vec![crate::space::Unit {
                width: 8,
                stride: 1,
                se: false,
                act: crate::space::Activation::Relu,
            }],
            depths: vec![2],
            kernels: vec![3],
            expand_ratios: vec![3],
            final_expand: 8,
            feature_mix: 8,
            stages: 2,
            classes: 2,
            cuts: None,
        }
        .validated()
        .unwrap();
        let mut config = SubnetConfig::largest(&preset);
        config.p = vec![0.5];
        let cost = count(&preset, &config).unwrap();
        assert_eq!(cost.macs, vec![2360, 3280]);
        assert_eq!(cost.cum_macs, vec![2360, 5640]);
        // Parameters: weights of the lower blocks, folded biases, 2 classifiers.
        assert_eq!(cost.params, vec![682, 930]);
    }

    #[test]
    fn should_skip_blocks_beyond_a_stages_depth() {
        let preset = Preset::tiny(3, 10).unwrap();
        let full = SubnetConfig::largest(&preset);
        let mut gated = full.clone();
        gated.depth[1][2] = 2; // stage 2 skips blocks 2 and 3 of unit 2
        let (a, b) = (
            count(&preset, &full).unwrap(),
            count(&preset, &gated).unwrap(),
        );
        assert_eq!(a.macs[0], b.macs[0]);
        assert!(b.macs[1] < a.macs[1]);
        assert_eq!(a.macs[2], b.macs[2]);
    }
}
