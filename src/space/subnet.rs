//! Subnet configurations: one point of the search space (DESIGN §2), with sampling, mutation
//! and crossover for the evolutionary search.

use rand::seq::{IndexedRandom, SliceRandom};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::preset::Preset;
use super::CUT_FRACTIONS;
use crate::error::{Error, Result};

/// A multi-stage subnet. `block` indexes the elastic blocks unit by unit at maximum depth;
/// entries beyond a unit's depth are ignored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubnetConfig {
    /// Input resolution (square).
    pub resolution: u32,
    /// Stage cut fractions p_1 < … < p_{S−1}, each from [`CUT_FRACTIONS`].
    pub p: Vec<f64>,
    /// Cut fractions of the blocks' middle (expanded) and SE-reduced axes when they differ from
    /// `p` (DESIGN §2): a small `p_mid[0]` under a larger `p[0]` gives stage 1 a full-width
    /// trunk with few expanded channels, the shape of a small static net.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_mid: Option<Vec<f64>>,
    /// `kernel[s][block]`: depthwise kernel size of stage s's middle channels.
    pub kernel: Vec<Vec<u32>>,
    /// `depth[s][unit]`: blocks ≥ depth are inactive for stage s.
    pub depth: Vec<Vec<u32>>,
    /// `expand[block]`: expand ratio, shared by all stages.
    pub expand: Vec<u32>,
}

impl SubnetConfig {
    /// Every choice at its maximum; p = the S−1 largest fractions.
    pub fn largest(preset: &Preset) -> Self {
        Self::extreme(preset, true)
    }

    /// Every choice at its minimum; p = the S−1 smallest fractions.
    pub fn smallest(preset: &Preset) -> Self {
        Self::extreme(preset, false)
    }

    fn extreme(preset: &Preset, max: bool) -> Self {
        let pick = |v: &[u32]| if max { v[v.len() - 1] } else { v[0] };
        let s = preset.stages;
        let n = CUT_FRACTIONS.len();
        let p = if max {
            CUT_FRACTIONS[n - (s - 1)..].to_vec()
        } else {
            CUT_FRACTIONS[..s - 1].to_vec()
        };
        let (p, p_mid) = match &preset.cuts {
            Some(fixed) => (fixed.p.clone(), fixed.p_mid.clone()),
            None => (p, None),
        };
        SubnetConfig {
            resolution: pick(&preset.resolutions),
            p,
            p_mid,
            kernel: vec![vec![pick(&preset.kernels); preset.blocks()]; s],
            depth: vec![vec![pick(&preset.depths); preset.units.len()]; s],
            expand: vec![pick(&preset.expand_ratios); preset.blocks()],
        }
    }

    /// The largest subnet at every choice of stage cuts p, in lexicographic order of p:
    /// the widest nets whose early exits range from cheap (small p_1) to costly. A fixed-cut
    /// space has one choice.
    pub fn largest_per_cuts(preset: &Preset) -> Vec<Self> {
        let largest = Self::largest(preset);
        if preset.cuts.is_some() {
            return vec![largest];
        }
        cut_choices(preset.stages - 1)
            .into_iter()
            .map(|p| SubnetConfig {
                p,
                ..largest.clone()
            })
            .collect()
    }

    /// A uniformly random subnet.
    pub fn random<R: Rng + ?Sized>(preset: &Preset, rng: &mut R) -> Self {
        let s = preset.stages;
        let mut c = Self::largest(preset);
        c.resolution = *preset.resolutions.choose(rng).unwrap_or(&c.resolution);
        if preset.cuts.is_none() {
            c.p = random_cuts(s, rng);
        }
        for row in &mut c.kernel {
            row.iter_mut()
                .for_each(|k| *k = *preset.kernels.choose(rng).unwrap_or(k));
        }
        for row in &mut c.depth {
            row.iter_mut()
                .for_each(|d| *d = *preset.depths.choose(rng).unwrap_or(d));
        }
        c.expand
            .iter_mut()
            .for_each(|e| *e = *preset.expand_ratios.choose(rng).unwrap_or(e));
        c
    }

    /// Resamples each choice with probability `rate` (p as a whole).
    pub fn mutate<R: Rng + ?Sized>(&self, preset: &Preset, rate: f64, rng: &mut R) -> Self {
        let fresh = Self::random(preset, rng);
        let mut c = self.clone();
        let flip = |rng: &mut R| rng.random_bool(rate.clamp(0.0, 1.0));
        if flip(rng) {
            c.resolution = fresh.resolution;
        }
        if flip(rng) {
            c.p = fresh.p.clone();
        }
        for (row, new) in c.kernel.iter_mut().zip(&fresh.kernel) {
            for (k, &n) in row.iter_mut().zip(new) {
                if flip(rng) {
                    *k = n;
                }
            }
        }
        for (row, new) in c.depth.iter_mut().zip(&fresh.depth) {
            for (d, &n) in row.iter_mut().zip(new) {
                if flip(rng) {
                    *d = n;
                }
            }
        }
        for (e, &n) in c.expand.iter_mut().zip(&fresh.expand) {
            if flip(rng) {
                *e = n;
            }
        }
        c
    }

    /// Takes each choice from either parent with equal probability (p as a whole).
    pub fn crossover<R: Rng + ?Sized>(&self, other: &Self, rng: &mut R) -> Self {
        let mut c = self.clone();
        if rng.random_bool(0.5) {
            c.resolution = other.resolution;
        }
        if rng.random_bool(0.5) {
            c.p = other.p.clone();
        }
        for (row, o) in c.kernel.iter_mut().zip(&other.kernel) {
            for (k, &v) in row.iter_mut().zip(o) {
                if rng.random_bool(0.5) {
                    *k = v;
                }
            }
        }
        for (row, o) in c.depth.iter_mut().zip(&other.depth) {
            for (d, &v) in row.iter_mut().zip(o) {
                if rng.random_bool(0.5) {
                    *d = v;
                }
            }
        }
        for (e, &v) in c.expand.iter_mut().zip(&other.expand) {
            if rng.random_bool(0.5) {
                *e = v;
            }
        }
        c
    }

    /// Checks the config against the preset; the error names the offending field.
    pub fn validate(&self, preset: &Preset) -> Result<()> {
        let s = preset.stages;
        let allowed = |field: String, v: u32, choices: &[u32]| {
            if choices.contains(&v) {
                Ok(())
            } else {
                Err(Error::config(
                    field,
                    format!("{v} is not one of {choices:?}"),
                ))
            }
        };
        allowed("resolution".into(), self.resolution, &preset.resolutions)?;
        if self.p.len() != s - 1 {
            return Err(Error::config(
                "p",
                format!("{} fractions for {s} stages, need {}", self.p.len(), s - 1),
            ));
        }
        // The cut rule checks membership and order; any width ≥ 4·S will do here.
        super::stage_cuts(4 * s as u32, &self.p)?;
        if let Some(fixed) = &preset.cuts {
            if self.p != fixed.p || self.mid_p() != fixed.p_mid.as_deref().unwrap_or(&fixed.p) {
                return Err(Error::config(
                    "p",
                    format!(
                        "the space's cuts are fixed at p = {:?}, p_mid = {:?}",
                        fixed.p, fixed.p_mid
                    ),
                ));
            }
        }
        if let Some(p_mid) = &self.p_mid {
            super::cuts::check_fractions("p_mid", p_mid, s)?;
        }
        let shape = |field: &str, rows: usize, cols: Option<usize>, got: &Vec<Vec<u32>>| {
            if got.len() != rows {
                return Err(Error::config(
                    field,
                    format!("{} rows, need one per stage ({rows})", got.len()),
                ));
            }
            if let Some(cols) = cols {
                if let Some((i, r)) = got.iter().enumerate().find(|(_, r)| r.len() != cols) {
                    return Err(Error::config(
                        format!("{field}[{i}]"),
                        format!("{} entries, need {cols}", r.len()),
                    ));
                }
            }
            Ok(())
        };
        shape("kernel", s, Some(preset.blocks()), &self.kernel)?;
        shape("depth", s, Some(preset.units.len()), &self.depth)?;
        for (si, row) in self.kernel.iter().enumerate() {
            for (b, &k) in row.iter().enumerate() {
                allowed(format!("kernel[{si}][{b}]"), k, &preset.kernels)?;
            }
        }
        for (si, row) in self.depth.iter().enumerate() {
            for (u, &d) in row.iter().enumerate() {
                allowed(format!("depth[{si}][{u}]"), d, &preset.depths)?;
            }
        }
        if self.expand.len() != preset.blocks() {
            return Err(Error::config(
                "expand",
                format!("{} entries, need {}", self.expand.len(), preset.blocks()),
            ));
        }
        for (b, &e) in self.expand.iter().enumerate() {
            allowed(format!("expand[{b}]"), e, &preset.expand_ratios)?;
        }
        Ok(())
    }

    /// Parses a config from JSON (unknown keys are errors) and validates it.
    pub fn from_json(json: &str, preset: &Preset) -> Result<Self> {
        let c: Self = serde_json::from_str(json)
            .map_err(|e| Error::config("subnet config", e.to_string()))?;
        c.validate(preset)?;
        Ok(c)
    }

    /// The cut fractions of the middle and SE-reduced axes: `p_mid`, or `p` when unset.
    pub fn mid_p(&self) -> &[f64] {
        self.p_mid.as_deref().unwrap_or(&self.p)
    }

    /// Number of blocks of `unit` that run in any stage (max over stages of the depth).
    pub fn unit_blocks(&self, unit: usize) -> u32 {
        self.depth.iter().map(|row| row[unit]).max().unwrap_or(0)
    }

    /// Whether elastic block `index` of `unit` runs for stage `s`.
    pub fn active(&self, s: usize, unit: usize, index: usize) -> bool {
        (index as u32) < self.depth[s][unit]
    }
}

/// Every set of `k` distinct sorted cut fractions, in lexicographic order.
fn cut_choices(k: usize) -> Vec<Vec<f64>> {
    fn extend(from: usize, k: usize, prefix: &mut Vec<f64>, out: &mut Vec<Vec<f64>>) {
        if k == 0 {
            out.push(prefix.clone());
            return;
        }
        let last = CUT_FRACTIONS.len().saturating_sub(k);
        for (i, &f) in CUT_FRACTIONS.iter().enumerate().take(last + 1).skip(from) {
            prefix.push(f);
            extend(i + 1, k - 1, prefix, out);
            prefix.pop();
        }
    }
    let mut out = Vec::new();
    extend(0, k, &mut Vec::new(), &mut out);
    out
}

/// S − 1 distinct sorted cut fractions drawn uniformly.
fn random_cuts<R: Rng + ?Sized>(stages: usize, rng: &mut R) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..CUT_FRACTIONS.len()).collect();
    idx.shuffle(rng);
    let mut chosen: Vec<usize> = idx.into_iter().take(stages - 1).collect();
    chosen.sort_unstable();
    chosen.into_iter().map(|i| CUT_FRACTIONS[i]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::FixedCuts;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    #[test]
    fn should_sample_valid_configs() {
        let preset = Preset::tiny(3, 10).unwrap();
        let mut rng = SmallRng::seed_from_u64(1);
        let largest = SubnetConfig::largest(&preset);
        assert_eq!(largest.p, vec![0.625, 0.75]);
        assert_eq!(SubnetConfig::smallest(&preset).p, vec![0.25, 0.375]);
        largest.validate(&preset).unwrap();
        for _ in 0..200 {
            let a = SubnetConfig::random(&preset, &mut rng);
            let b = SubnetConfig::random(&preset, &mut rng);
            a.validate(&preset).unwrap();
            a.mutate(&preset, 0.3, &mut rng).validate(&preset).unwrap();
            a.crossover(&b, &mut rng).validate(&preset).unwrap();
        }
    }

    #[test]
    fn should_give_the_largest_net_at_every_cut_choice() {
        for (stages, n) in [(1, 1), (2, 5), (3, 10), (4, 10)] {
            let preset = Preset::tiny(stages, 10).unwrap();
            let largest = SubnetConfig::largest(&preset);
            let all = SubnetConfig::largest_per_cuts(&preset);
            assert_eq!(all.len(), n, "C(5, {}) cut choices", stages - 1);
            for (i, c) in all.iter().enumerate() {
                c.validate(&preset).unwrap();
                assert_eq!(
                    SubnetConfig {
                        p: largest.p.clone(),
                        ..c.clone()
                    },
                    largest
                );
                assert!(all[..i].iter().all(|o| o.p != c.p), "distinct cuts");
            }
            assert!(all.contains(&largest));
            assert_eq!(
                all[0],
                SubnetConfig {
                    p: SubnetConfig::smallest(&preset).p,
                    ..largest
                }
            );
        }
    }

    #[test]
    fn a_fixed_cut_space_gives_only_its_cuts() {
        let fixed = FixedCuts {
            p: vec![0.625, 0.75],
            p_mid: Some(vec![0.25, 0.5]),
        };
        let preset = Preset::tiny(3, 10)
            .unwrap()
            .with_cuts(Some(fixed.clone()))
            .unwrap();
        let mut rng = SmallRng::seed_from_u64(3);
        let mut all = vec![
            SubnetConfig::largest(&preset),
            SubnetConfig::smallest(&preset),
        ];
        all.extend(SubnetConfig::largest_per_cuts(&preset));
        for _ in 0..50 {
            let a = SubnetConfig::random(&preset, &mut rng);
            let b = SubnetConfig::random(&preset, &mut rng);
            all.push(a.crossover(&b, &mut rng).mutate(&preset, 0.5, &mut rng));
        }
        for c in &all {
            c.validate(&preset).unwrap();
            assert_eq!((&c.p, &c.p_mid), (&fixed.p, &fixed.p_mid));
        }
        assert_eq!(all[2], all[0], "one largest net");
        let plan = crate::space::Plan::new(&preset, &all[0]).unwrap();
        let b = &plan.blocks[3];
        // The middle axis is cut at 0.25 / 0.5, the block's output at 0.625 / 0.75.
        let mid = b.mid_cuts.width();
        assert_eq!(
            b.mid_cuts,
            crate::space::stage_cuts(mid, &[0.25, 0.5]).unwrap()
        );
        let out = b.out_cuts.width();
        assert_eq!(
            b.out_cuts,
            crate::space::stage_cuts(out, &[0.625, 0.75]).unwrap()
        );
        // A config at other cuts does not belong to the space.
        let mut other = all[0].clone();
        other.p_mid = None;
        let err = other.validate(&preset).unwrap_err().to_string();
        assert!(err.contains("fixed"), "{err}");
    }

    #[test]
    fn should_name_the_offending_field() {
        let preset = Preset::tiny(3, 10).unwrap();
        let mut c = SubnetConfig::largest(&preset);
        c.kernel[1][5] = 4;
        assert!(c
            .validate(&preset)
            .unwrap_err()
            .to_string()
            .contains("kernel[1][5]"));
        let mut c = SubnetConfig::largest(&preset);
        c.p = vec![0.75, 0.5];
        assert!(c
            .validate(&preset)
            .unwrap_err()
            .to_string()
            .contains("p[1]"));
        let mut c = SubnetConfig::largest(&preset);
        c.depth[2].pop();
        assert!(c
            .validate(&preset)
            .unwrap_err()
            .to_string()
            .contains("depth[2]"));
        let mut c = SubnetConfig::largest(&preset);
        c.resolution = 31;
        assert!(c
            .validate(&preset)
            .unwrap_err()
            .to_string()
            .contains("resolution"));
    }

    #[test]
    fn should_reject_unknown_json_keys() {
        let preset = Preset::tiny(3, 10).unwrap();
        let mut json = serde_json::to_value(SubnetConfig::largest(&preset)).unwrap();
        let back = SubnetConfig::from_json(&json.to_string(), &preset).unwrap();
        assert_eq!(back, SubnetConfig::largest(&preset));
        json["kernels"] = serde_json::json!(3);
        let err = SubnetConfig::from_json(&json.to_string(), &preset)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `kernels`"), "{err}");
    }

    #[test]
    fn should_check_presets() {
        assert!(Preset::tiny(5, 10).is_err());
        assert!(Preset::by_name("huge", 3, 10).is_err());
        // Every axis ≥ 4·S: 4 stages need 16 channels, the tiny stem has exactly 16.
        Preset::tiny(4, 10).unwrap();
        let mut p = Preset::tiny(3, 10).unwrap();
        p.stem = 8;
        assert!(p.validated().unwrap_err().to_string().contains("stem"));
        let mut p = Preset::tiny(3, 10).unwrap();
        p.units[1].width = u32::MAX;
        assert!(p.validated().unwrap_err().to_string().contains("width"));
    }
}
