//! The weights of one subnet, laid out as the kernels take them.

use rand::rngs::SmallRng;
use rand::Rng;

use crate::error::{Error, Result};
use crate::gpu::GpuContext;
use crate::ops::mbconv::{MbConvSpec, MbConvWeights, DW_STRIDE};
use crate::ops::se::SeWeights;
use crate::space::Plan;

/// Weights of a subnet: host vectors (`Vec<f32>`) or GPU buffers. Affines are folded BN
/// `[scale(C), shift(C)]`; a bias is scale 1.
#[derive(Clone, Debug)]
pub struct NetWeights<T> {
    /// Stem conv `[C, 3, 3, 3]` and affine.
    pub stem: (T, T),
    /// One per block of the plan.
    pub blocks: Vec<MbConvWeights<T>>,
    /// Final expand `[F, last width]` and affine.
    pub final_expand: (T, T),
    /// Feature mix `[M, F]` and its affine (scale 1, shift 0: no BN, no bias).
    pub feature_mix: (T, T),
    /// Per exit s: classifier `[classes, c_s(M)]` and affine (scale 1, shift = bias).
    pub classifiers: Vec<(T, T)>,
}

fn uniform(rng: &mut SmallRng, n: usize, fan_in: usize) -> Vec<f32> {
    // Unit gain for a linear layer, U(−a, a) with a = √(3 / fan_in), so that activations stay
    // O(1) through the network as they do in a trained one with BN.
    let a = (3.0 / fan_in.max(1) as f32).sqrt();
    (0..n).map(|_| rng.random_range(-a..a)).collect()
}

fn affine(rng: &mut SmallRng, c: usize) -> Vec<f32> {
    let mut a: Vec<f32> = (0..c).map(|_| rng.random_range(0.5f32..1.0)).collect();
    a.extend((0..c).map(|_| rng.random_range(-0.2f32..0.2)));
    a
}

fn check(what: &'static str, v: &[f32], expected: usize) -> Result<()> {
    if v.len() != expected {
        return Err(Error::Shape {
            op: "net weights",
            what,
            expected,
            got: v.len(),
        });
    }
    Ok(())
}

impl NetWeights<Vec<f32>> {
    /// Random weights of the right shapes for `plan` (for tests and benchmarks).
    pub fn random(plan: &Plan, rng: &mut SmallRng) -> Self {
        let c0 = plan.stem_cuts.width() as usize;
        let blocks = plan
            .blocks
            .iter()
            .map(|b| {
                let spec = MbConvSpec::from_plan(b, 1);
                let (cin, mid, cout) = (
                    b.in_cuts.width() as usize,
                    spec.mid(),
                    b.out_cuts.width() as usize,
                );
                MbConvWeights {
                    expand: b
                        .expand
                        .then(|| (uniform(rng, mid * cin, cin), affine(rng, mid))),
                    dw: (uniform(rng, mid * DW_STRIDE, 25), affine(rng, mid)),
                    se: b.se_cuts.as_ref().map(|cuts| {
                        let r = cuts.width() as usize;
                        SeWeights {
                            reduce_w: uniform(rng, r * mid, mid),
                            reduce_affine: affine(rng, r),
                            expand_w: uniform(rng, mid * r, r),
                            expand_affine: affine(rng, mid),
                        }
                    }),
                    project: (uniform(rng, cout * mid, mid), affine(rng, cout)),
                }
            })
            .collect();
        let last = plan.last_cuts().width() as usize;
        let (f, m) = (
            plan.final_cuts.width() as usize,
            plan.mix_cuts.width() as usize,
        );
        let mut unit_affine = vec![1.0; m];
        unit_affine.extend(vec![0.0; m]);
        let classifiers = (0..plan.stages)
            .map(|s| {
                let c = plan.mix_cuts.end(s) as usize;
                let mut bias = vec![1.0; plan.classes];
                bias.extend((0..plan.classes).map(|_| rng.random_range(-0.1f32..0.1)));
                (uniform(rng, plan.classes * c, c), bias)
            })
            .collect();
        NetWeights {
            stem: (uniform(rng, c0 * 27, 27), affine(rng, c0)),
            blocks,
            final_expand: (uniform(rng, f * last, last), affine(rng, f)),
            feature_mix: (uniform(rng, m * f, f), unit_affine),
            classifiers,
        }
    }

    /// Every tensor, in a fixed order.
    fn tensors(&self) -> Vec<&Vec<f32>> {
        let mut all = vec![&self.stem.0, &self.stem.1];
        for b in &self.blocks {
            if let Some((w, a)) = &b.expand {
                all.extend([w, a]);
            }
            all.extend([&b.dw.0, &b.dw.1]);
            if let Some(se) = &b.se {
                all.extend([
                    &se.reduce_w,
                    &se.reduce_affine,
                    &se.expand_w,
                    &se.expand_affine,
                ]);
            }
            all.extend([&b.project.0, &b.project.1]);
        }
        all.extend([
            &self.final_expand.0,
            &self.final_expand.1,
            &self.feature_mix.0,
            &self.feature_mix.1,
        ]);
        for (w, b) in &self.classifiers {
            all.extend([w, b]);
        }
        all
    }

    /// Fails when any weight is NaN or infinite (a loaded model must be finite; the causality
    /// tests poison weights on purpose and skip this).
    pub fn check_finite(&self) -> Result<()> {
        if self
            .tensors()
            .iter()
            .any(|t| t.iter().any(|v| !v.is_finite()))
        {
            return Err(Error::config("weights", "hold a NaN or infinite value"));
        }
        Ok(())
    }

    /// Checks every tensor's size against `plan`.
    pub fn check(&self, plan: &Plan) -> Result<()> {
        let c0 = plan.stem_cuts.width() as usize;
        check("stem", &self.stem.0, c0 * 27)?;
        check("stem affine", &self.stem.1, 2 * c0)?;
        if self.blocks.len() != plan.blocks.len() {
            return Err(Error::Shape {
                op: "net weights",
                what: "blocks",
                expected: plan.blocks.len(),
                got: self.blocks.len(),
            });
        }
        for (b, w) in plan.blocks.iter().zip(&self.blocks) {
            let spec = MbConvSpec::from_plan(b, 1);
            let (cin, mid, cout) = (
                b.in_cuts.width() as usize,
                spec.mid(),
                b.out_cuts.width() as usize,
            );
            match (&w.expand, b.expand) {
                (Some((ew, ea)), true) => {
                    check("expand", ew, mid * cin)?;
                    check("expand affine", ea, 2 * mid)?;
                }
                (None, false) => {}
                _ => {
                    return Err(Error::config(
                        "blocks.expand",
                        "present where the plan has none, or missing",
                    ))
                }
            }
            check("depthwise", &w.dw.0, mid * DW_STRIDE)?;
            check("depthwise affine", &w.dw.1, 2 * mid)?;
            match (&w.se, &b.se_cuts) {
                (Some(se), Some(cuts)) => {
                    let r = cuts.width() as usize;
                    check("se reduce", &se.reduce_w, r * mid)?;
                    check("se reduce affine", &se.reduce_affine, 2 * r)?;
                    check("se expand", &se.expand_w, mid * r)?;
                    check("se expand affine", &se.expand_affine, 2 * mid)?;
                }
                (None, None) => {}
                _ => {
                    return Err(Error::config(
                        "blocks.se",
                        "present where the plan has none, or missing",
                    ))
                }
            }
            check("project", &w.project.0, cout * mid)?;
            check("project affine", &w.project.1, 2 * cout)?;
        }
        let last = plan.last_cuts().width() as usize;
        let (f, m) = (
            plan.final_cuts.width() as usize,
            plan.mix_cuts.width() as usize,
        );
        check("final expand", &self.final_expand.0, f * last)?;
        check("final expand affine", &self.final_expand.1, 2 * f)?;
        check("feature mix", &self.feature_mix.0, m * f)?;
        check("feature mix affine", &self.feature_mix.1, 2 * m)?;
        if self.classifiers.len() != plan.stages {
            return Err(Error::Shape {
                op: "net weights",
                what: "classifiers",
                expected: plan.stages,
                got: self.classifiers.len(),
            });
        }
        for (s, (w, b)) in self.classifiers.iter().enumerate() {
            check(
                "classifier",
                w,
                plan.classes * plan.mix_cuts.end(s) as usize,
            )?;
            check("classifier bias", b, 2 * plan.classes)?;
        }
        Ok(())
    }

    /// Copies the weights to the GPU.
    pub fn upload(&self, ctx: &GpuContext) -> NetWeights<wgpu::Buffer> {
        let pair = |(w, a): &(Vec<f32>, Vec<f32>), name: &str| {
            (ctx.upload_f32(name, w), ctx.upload_f32(name, a))
        };
        NetWeights {
            stem: pair(&self.stem, "stem"),
            blocks: self.blocks.iter().map(|b| b.upload(ctx)).collect(),
            final_expand: pair(&self.final_expand, "final expand"),
            feature_mix: pair(&self.feature_mix, "feature mix"),
            classifiers: self
                .classifiers
                .iter()
                .map(|c| pair(c, "classifier"))
                .collect(),
        }
    }
}
