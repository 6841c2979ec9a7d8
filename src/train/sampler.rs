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
    /// Every choice at its maximum except the resolution and (in the expand phase) the stage
    /// cuts, drawn at random.
    Widest,
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
        Pick::Random | Pick::Widest => SubnetConfig::random(preset, rng),
    };
    let mut c = largest;
    c.resolution = source.resolution;
    if pick == Pick::Widest {
        if phase == Phase::Expand {
            c.p = source.p;
        }
        return c;
    }
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

    #[test]
    fn widest_draws_only_resolution_and_cuts() {
        let preset = Preset::tiny(3, 10).unwrap();
        let largest = SubnetConfig::largest(&preset);
        let mut rng = SmallRng::seed_from_u64(9);
        let (mut resolutions, mut cuts) = (Vec::new(), Vec::new());
        for _ in 0..40 {
            let w = sample(&preset, Phase::Expand, Pick::Widest, &mut rng);
            w.validate(&preset).unwrap();
            assert_eq!(
                (&w.kernel, &w.depth, &w.expand),
                (&largest.kernel, &largest.depth, &largest.expand)
            );
            resolutions.push(w.resolution);
            cuts.push(w.p);
            let k = sample(&preset, Phase::Kernel, Pick::Widest, &mut rng);
            assert_eq!(k.p, largest.p, "cuts are elastic only in the expand phase");
        }
        resolutions.sort_unstable();
        resolutions.dedup();
        assert_eq!(resolutions, preset.resolutions, "every resolution is drawn");
        cuts.sort_by(|a, b| a.partial_cmp(b).unwrap());
        cuts.dedup();
        assert!(cuts.len() > 3, "cuts vary: {cuts:?}");
    }
}
