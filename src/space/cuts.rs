//! Stage cut points of a channel axis (DESIGN §2).
//!
//! A subnet with S stages cuts every channel axis of active width C into S contiguous slices:
//! `c_0 = 0`, `c_S = C`, and for s = 1 … S−1
//! `c_s = min(max(4·⌊p_s·C/4 + ½⌋, c_{s−1} + 4), 4·⌊(C − 4(S−s))/4⌋)`.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The allowed cut fractions `p_s`.
pub const CUT_FRACTIONS: [f64; 5] = [0.25, 0.375, 0.5, 0.625, 0.75];

/// The most stages a supernet may have.
pub const MAX_STAGES: usize = 4;

/// Cut points `[c_0 = 0, c_1, …, c_S = C]` of one channel axis; stage s (1-based) owns
/// channels `c_{s−1} .. c_s`. Serializes as the list of points.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StageCuts(Vec<u32>);

impl StageCuts {
    /// Cuts from explicit points; checks `0 = c_0 < c_1 < … < c_S` and `1 ≤ S ≤ MAX_STAGES`.
    pub fn new(points: Vec<u32>) -> Result<Self> {
        let stages = points.len().saturating_sub(1);
        if !(1..=MAX_STAGES).contains(&stages) {
            return Err(Error::config(
                "cuts",
                format!("need 2..={} points, got {}", MAX_STAGES + 1, points.len()),
            ));
        }
        if points[0] != 0 {
            return Err(Error::config(
                "cuts[0]",
                format!("must be 0, got {}", points[0]),
            ));
        }
        for s in 1..points.len() {
            if points[s] <= points[s - 1] {
                return Err(Error::config(
                    format!("cuts[{s}]"),
                    format!(
                        "{} is not above cuts[{}] = {}",
                        points[s],
                        s - 1,
                        points[s - 1]
                    ),
                ));
            }
        }
        Ok(StageCuts(points))
    }

    /// A single stage owning all `width` channels (S = 1).
    pub fn single(width: u32) -> Result<Self> {
        Self::new(vec![0, width])
    }

    /// Number of stages S.
    pub fn stages(&self) -> usize {
        self.0.len() - 1
    }

    /// The axis width C = c_S.
    pub fn width(&self) -> u32 {
        self.0[self.0.len() - 1]
    }

    /// All points, `c_0 ..= c_S`.
    pub fn points(&self) -> &[u32] {
        &self.0
    }

    /// End of stage `s` (0-based): channels `< end(s)` belong to stages `≤ s`.
    pub fn end(&self, s: usize) -> u32 {
        self.0[s + 1]
    }

    /// Channel range of stage `s` (0-based).
    pub fn range(&self, s: usize) -> std::ops::Range<usize> {
        self.0[s] as usize..self.0[s + 1] as usize
    }

    /// The 0-based stage that owns channel `c`.
    pub fn stage_of(&self, c: usize) -> usize {
        (0..self.stages())
            .find(|&s| c < self.0[s + 1] as usize)
            .unwrap_or(self.stages() - 1)
    }

    /// Points padded to 8 entries, as the shaders' uniform blocks take them.
    pub fn padded(&self) -> [[u32; 4]; 2] {
        let mut out = [[0u32; 4]; 2];
        for (j, &c) in self.0.iter().enumerate() {
            out[j / 4][j % 4] = c;
        }
        out
    }
}

/// The one set of cut fractions every subnet of a fixed-cut space uses (DESIGN §2): training,
/// search and evaluation then spend everything on these cuts instead of spreading it over all
/// of [`CUT_FRACTIONS`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixedCuts {
    /// Cut fractions of every axis but the middle ones (`SubnetConfig::p`).
    pub p: Vec<f64>,
    /// Cut fractions of the middle and SE-reduced axes (`SubnetConfig::p_mid`); unset: `p`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_mid: Option<Vec<f64>>,
}

impl FixedCuts {
    /// Checks both fraction lists for a space of `stages` stages.
    pub fn validate(&self, stages: usize) -> Result<()> {
        check_fractions("cuts.p", &self.p, stages)?;
        match &self.p_mid {
            Some(p_mid) => check_fractions("cuts.p_mid", p_mid, stages),
            None => Ok(()),
        }
    }
}

/// Checks that `p` holds S − 1 fractions the cut rule accepts (allowed, increasing); the error
/// names `field`.
pub(crate) fn check_fractions(field: &str, p: &[f64], stages: usize) -> Result<()> {
    if p.len() + 1 != stages {
        return Err(Error::config(
            field,
            format!(
                "{} fractions for {stages} stages, need {}",
                p.len(),
                stages - 1
            ),
        ));
    }
    // The cut rule checks membership and order; any width ≥ 4·S will do here.
    stage_cuts(4 * stages as u32, p).map_err(|e| Error::config(field, e.to_string()))?;
    Ok(())
}

/// Cut points of an axis of active width `width` for the fractions `p` (S = p.len() + 1 stages),
/// by the rounding rule of DESIGN §2.
///
/// Fails when a fraction is not one of [`CUT_FRACTIONS`], the fractions do not increase, or the
/// axis is narrower than 4·S channels.
pub fn stage_cuts(width: u32, p: &[f64]) -> Result<StageCuts> {
    let stages = p.len() + 1;
    if stages > MAX_STAGES {
        return Err(Error::config(
            "p",
            format!(
                "{} fractions give {stages} stages, at most {MAX_STAGES} allowed",
                p.len()
            ),
        ));
    }
    for (i, &f) in p.iter().enumerate() {
        if !CUT_FRACTIONS.contains(&f) {
            return Err(Error::config(
                format!("p[{i}]"),
                format!("{f} is not one of {CUT_FRACTIONS:?}"),
            ));
        }
        if i > 0 && f <= p[i - 1] {
            return Err(Error::config(
                format!("p[{i}]"),
                format!("{f} does not exceed p[{}] = {}", i - 1, p[i - 1]),
            ));
        }
    }
    let c = i64::from(width);
    if c < 4 * stages as i64 {
        return Err(Error::config(
            "width",
            format!("{width} channels cannot hold {stages} stages of at least 4"),
        ));
    }
    let mut points = vec![0u32];
    let mut prev = 0i64;
    for (i, &f) in p.iter().enumerate() {
        let s = (i + 1) as i64;
        let rounded = 4 * (f * c as f64 / 4.0 + 0.5).floor() as i64;
        let upper = 4 * ((c - 4 * (stages as i64 - s)) / 4);
        let cut = rounded.max(prev + 4).min(upper);
        points.push(cut as u32);
        prev = cut;
    }
    points.push(width);
    StageCuts::new(points)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_cuts_are_checked() {
        let ok = FixedCuts {
            p: vec![0.625, 0.75],
            p_mid: Some(vec![0.25, 0.5]),
        };
        ok.validate(3).unwrap();
        let err = ok.validate(2).unwrap_err().to_string();
        assert!(err.contains("cuts.p"), "{err}");
        let bad = FixedCuts {
            p_mid: Some(vec![0.5, 0.3]),
            ..ok
        };
        let err = bad.validate(3).unwrap_err().to_string();
        assert!(err.contains("cuts.p_mid"), "{err}");
    }

    #[test]
    fn should_round_half_up_to_multiples_of_four() {
        // 0.375 · 24 = 9 → 4·⌊2.25 + ½⌋ = 8; 0.625 · 24 = 15 → 4·⌊3.75 + ½⌋ = 16.
        assert_eq!(
            stage_cuts(24, &[0.375, 0.625]).unwrap().points(),
            &[0, 8, 16, 24]
        );
        // 0.5 · 40 = 20 → 4·⌊5.5⌋ = 20.
        assert_eq!(stage_cuts(40, &[0.5]).unwrap().points(), &[0, 20, 40]);
        // 0.25 · 24 = 6 → 4·⌊1.5 + ½⌋ = 8 (half rounds up).
        assert_eq!(stage_cuts(24, &[0.25]).unwrap().points(), &[0, 8, 24]);
    }

    #[test]
    fn should_keep_four_channels_per_stage() {
        // C = 12, S = 3: every stage exactly 4 wide whatever p says.
        assert_eq!(
            stage_cuts(12, &[0.25, 0.375]).unwrap().points(),
            &[0, 4, 8, 12]
        );
        assert_eq!(
            stage_cuts(12, &[0.625, 0.75]).unwrap().points(),
            &[0, 4, 8, 12]
        );
        // C = 16, p = (0.25, 0.375): 4, then max(8, 8) = 8.
        assert_eq!(
            stage_cuts(16, &[0.25, 0.375]).unwrap().points(),
            &[0, 4, 8, 16]
        );
    }

    #[test]
    fn should_reject_bad_fractions_and_narrow_axes() {
        assert!(stage_cuts(24, &[0.3]).is_err());
        assert!(stage_cuts(24, &[0.5, 0.5]).is_err());
        assert!(stage_cuts(8, &[0.25, 0.5]).is_err());
        let err = stage_cuts(24, &[0.5, 0.4]).unwrap_err().to_string();
        assert!(err.contains("p[1]"), "{err}");
    }

    #[test]
    fn should_find_the_stage_of_a_channel() {
        let cuts = stage_cuts(24, &[0.375, 0.625]).unwrap();
        assert_eq!(cuts.stage_of(0), 0);
        assert_eq!(cuts.stage_of(7), 0);
        assert_eq!(cuts.stage_of(8), 1);
        assert_eq!(cuts.stage_of(23), 2);
        assert_eq!(cuts.padded(), [[0, 8, 16, 24], [0, 0, 0, 0]]);
    }
}
