//! A subnet config as a fixed-length 0/1 feature vector (one-hot per choice), the input of
//! the accuracy predictor.

use crate::space::{Preset, SubnetConfig, CUT_FRACTIONS};

fn one_hot(out: &mut Vec<f32>, choices: &[u32], v: u32) {
    out.extend(choices.iter().map(|&c| f32::from(u8::from(c == v))));
}

/// Length of [`encode`]'s vector for `preset`.
pub fn encoded_len(preset: &Preset) -> usize {
    let s = preset.stages;
    preset.resolutions.len()
        + (s - 1) * CUT_FRACTIONS.len()
        + s * preset.blocks() * preset.kernels.len()
        + s * preset.units.len() * preset.depths.len()
        + preset.blocks() * preset.expand_ratios.len()
}

/// One-hot features of `config`; kernel and expand entries of blocks a stage does not run
/// are zero, so that equivalent configs encode alike.
pub fn encode(preset: &Preset, config: &SubnetConfig) -> Vec<f32> {
    let mut out = Vec::with_capacity(encoded_len(preset));
    one_hot(&mut out, &preset.resolutions, config.resolution);
    for &p in &config.p {
        out.extend(CUT_FRACTIONS.iter().map(|&c| f32::from(u8::from(c == p))));
    }
    let depth_max = preset.max_depth();
    for s in 0..preset.stages {
        for (b, &k) in config.kernel[s].iter().enumerate() {
            let (unit, i) = (b / depth_max, b % depth_max);
            let runs = config.active(s, unit, i);
            one_hot(&mut out, &preset.kernels, if runs { k } else { 0 });
        }
    }
    for row in &config.depth {
        for &d in row {
            one_hot(&mut out, &preset.depths, d);
        }
    }
    for (b, &e) in config.expand.iter().enumerate() {
        let (unit, i) = (b / depth_max, b % depth_max);
        let runs = (0..preset.stages).any(|s| config.active(s, unit, i));
        one_hot(&mut out, &preset.expand_ratios, if runs { e } else { 0 });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    #[test]
    fn fixed_length_and_one_hot() {
        let preset = Preset::tiny(3, 10).unwrap();
        let mut rng = SmallRng::seed_from_u64(1);
        let n = encoded_len(&preset);
        for _ in 0..20 {
            let c = SubnetConfig::random(&preset, &mut rng);
            let v = encode(&preset, &c);
            assert_eq!(v.len(), n);
            assert!(v.iter().all(|x| *x == 0.0 || *x == 1.0));
        }
        let l = encode(&preset, &SubnetConfig::largest(&preset));
        let s = encode(&preset, &SubnetConfig::smallest(&preset));
        assert_ne!(l, s);
    }
}
