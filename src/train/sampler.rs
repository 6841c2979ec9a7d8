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
    /// Stage 1's elastic kernels and depths at random, every later stage's at its maximum,
    /// expand ratios at their maximum; resolution and (in the expand phase) stage cuts random.
    FirstStage,
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
        Pick::Random | Pick::Widest | Pick::FirstStage => SubnetConfig::random(preset, rng),
    };
    let mut c = largest;
    c.resolution = source.resolution;
    if matches!(pick, Pick::Widest | Pick::FirstStage) {
        if phase == Phase::Expand {
            c.p = source.p;
        }
        if pick == Pick::FirstStage {
            if phase != Phase::Full {
                c.kernel[0].clone_from(&source.kernel[0]);
            }
            if matches!(phase, Phase::Depth | Phase::Expand) {
                c.depth[0].clone_from(&source.depth[0]);
            }
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

    #[test]
    fn first_stage_draws_only_stage_one() {
        let preset = Preset::tiny(2, 10).unwrap();
        let largest = SubnetConfig::largest(&preset);
        let mut rng = SmallRng::seed_from_u64(11);
        let (mut depths, mut kernels) = (Vec::new(), Vec::new());
        for _ in 0..40 {
            let f = sample(&preset, Phase::Expand, Pick::FirstStage, &mut rng);
            f.validate(&preset).unwrap();
            assert_eq!(f.expand, largest.expand);
            assert_eq!(
                (&f.kernel[1..], &f.depth[1..]),
                (&largest.kernel[1..], &largest.depth[1..]),
                "later stages stay at their maximum"
            );
            depths.extend(f.depth[0].iter().copied());
            kernels.extend(f.kernel[0].iter().copied());
            let k = sample(&preset, Phase::Kernel, Pick::FirstStage, &mut rng);
            assert_eq!(
                k.depth, largest.depth,
                "depth is elastic only from the depth phase"
            );
        }
        depths.sort_unstable();
        depths.dedup();
        kernels.sort_unstable();
        kernels.dedup();
        assert_eq!(depths, preset.depths, "every stage-1 depth is drawn");
        assert_eq!(kernels, preset.kernels, "every stage-1 kernel is drawn");
    }
}
