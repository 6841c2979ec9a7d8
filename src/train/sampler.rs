//! Subnet sampling for the sandwich rule under progressive shrinking.

use rand::Rng;

use super::config::Phase;
use crate::space::{Preset, SubnetConfig};

/// Which subnet of the sandwich.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    /// Every choice at its maximum, largest resolution.
    Largest,
    /// Every elastic choice of the phase at its minimum, smallest resolution.
    Smallest,
    /// Elastic choices of the phase at random, random resolution.
    Random,
}

/// A subnet of `phase`: dimensions not yet elastic keep the largest subnet's values.
pub fn sample<R: Rng + ?Sized>(
    preset: &Preset,
    phase: Phase,
    pick: Pick,
    rng: &mut R,
) -> SubnetConfig {
    let largest = SubnetConfig::largest(preset);
    let source = match pick {
        Pick::Largest => return largest,
        Pick::Smallest => SubnetConfig::smallest(preset),
        Pick::Random => SubnetConfig::random(preset, rng),
    };
    let mut c = largest;
    c.resolution = source.resolution;
    if phase != Phase::Full {
        c.kernel = source.kernel;
    }
    if matches!(phase, Phase::Depth | Phase::Expand) {
        c.depth = source.depth;
    }
    if phase == Phase::Expand {
        c.expand = source.expand;
        c.p = source.p;
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    #[test]
    fn phases_open_dimensions_in_order() {
        let preset = Preset::tiny(3, 10).unwrap();
        let largest = SubnetConfig::largest(&preset);
        let mut rng = SmallRng::seed_from_u64(5);
        let s = sample(&preset, Phase::Full, Pick::Smallest, &mut rng);
        assert_eq!(
            (s.kernel.clone(), s.depth.clone()),
            (largest.kernel.clone(), largest.depth.clone())
        );
        assert_eq!(s.resolution, preset.resolutions[0]);
        let s = sample(&preset, Phase::Kernel, Pick::Smallest, &mut rng);
        assert!(s.kernel.iter().flatten().all(|&k| k == 3));
        assert_eq!(s.depth, largest.depth);
        let s = sample(&preset, Phase::Depth, Pick::Smallest, &mut rng);
        assert!(s.depth.iter().flatten().all(|&d| d == 2));
        assert_eq!(
            (s.expand.clone(), s.p.clone()),
            (largest.expand.clone(), largest.p.clone())
        );
        let s = sample(&preset, Phase::Expand, Pick::Smallest, &mut rng);
        assert_eq!(s, SubnetConfig::smallest(&preset));
        for phase in [Phase::Full, Phase::Kernel, Phase::Depth, Phase::Expand] {
            for _ in 0..20 {
                sample(&preset, phase, Pick::Random, &mut rng)
                    .validate(&preset)
                    .unwrap();
            }
        }
    }
}
