//! Shared test helpers: one GPU context per test binary (lavapipe where there is no GPU), fresh
//! seeds, and the perturbations of the stage-causality tests.
#![allow(dead_code)]

use std::sync::OnceLock;

use enas4d::gpu::{GpuContext, GpuOptions};
use enas4d::ops::mbconv::{MbConvSpec, MbConvWeights, DW_STRIDE};
use enas4d::space::StageCuts;
use rand::rngs::SmallRng;
use rand::Rng;

/// The test device. The test command installs lavapipe, so a missing adapter is a failure.
pub fn gpu() -> &'static GpuContext {
    static CTX: OnceLock<GpuContext> = OnceLock::new();
    CTX.get_or_init(|| {
        pollster::block_on(GpuContext::new(&GpuOptions::default()))
            .unwrap_or_else(|e| panic!("no GPU context ({e}); scripts/setup.sh installs lavapipe"))
    })
}

pub use enas4d::test_seed::fresh_seed;

/// Kinds of perturbation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Poison {
    /// Add uniform noise in ±10.
    Noise,
    /// Replace by NaN.
    Nan,
    /// Replace by ±∞.
    Inf,
}

pub fn poison(v: &mut f32, kind: Poison, rng: &mut SmallRng) {
    *v = match kind {
        Poison::Noise => *v + rng.random_range(-10.0f32..10.0),
        Poison::Nan => f32::NAN,
        Poison::Inf => {
            if rng.random_bool(0.5) {
                f32::INFINITY
            } else {
                f32::NEG_INFINITY
            }
        }
    };
}

/// Perturbs the entries of a `[rows, cols]` matrix that a stage ≤ s row must not read: rows of
/// later stages, and the upper blocks (columns of later stages) of earlier rows.
pub fn poison_matrix(
    w: &mut [f32],
    rows: &StageCuts,
    cols: &StageCuts,
    s: usize,
    kind: Poison,
    rng: &mut SmallRng,
) {
    let n = cols.width() as usize;
    for (i, v) in w.iter_mut().enumerate() {
        if rows.stage_of(i / n) > s || cols.stage_of(i % n) > s {
            poison(v, kind, rng);
        }
    }
}

/// Perturbs per-channel tensors laid out `[.., C, stride]` (or affines `[scale(C), shift(C)]`).
pub fn poison_channels(
    v: &mut [f32],
    cuts: &StageCuts,
    per: usize,
    s: usize,
    kind: Poison,
    rng: &mut SmallRng,
) {
    let c = cuts.width() as usize;
    for (i, x) in v.iter_mut().enumerate() {
        if cuts.stage_of((i / per) % c) > s {
            poison(x, kind, rng);
        }
    }
}

pub fn poison_affine(a: &mut [f32], cuts: &StageCuts, s: usize, kind: Poison, rng: &mut SmallRng) {
    poison_channels(a, cuts, 1, s, kind, rng);
}

pub fn perturb(
    spec: &MbConvSpec,
    x: &[f32],
    w: &MbConvWeights<Vec<f32>>,
    s: usize,
    kind: Poison,
    rng: &mut SmallRng,
) -> (Vec<f32>, MbConvWeights<Vec<f32>>) {
    let mut x = x.to_vec();
    let mut w = w.clone();
    poison_channels(
        &mut x,
        &spec.in_cuts,
        spec.height * spec.width,
        s,
        kind,
        rng,
    );
    if let Some((ew, ea)) = w.expand.as_mut() {
        poison_matrix(ew, &spec.mid_cuts, &spec.in_cuts, s, kind, rng);
        poison_affine(ea, &spec.mid_cuts, s, kind, rng);
    }
    poison_channels(&mut w.dw.0, &spec.mid_cuts, DW_STRIDE, s, kind, rng);
    poison_affine(&mut w.dw.1, &spec.mid_cuts, s, kind, rng);
    if let (Some(se), Some(red)) = (w.se.as_mut(), spec.se_cuts.as_ref()) {
        poison_matrix(&mut se.reduce_w, red, &spec.mid_cuts, s, kind, rng);
        poison_affine(&mut se.reduce_affine, red, s, kind, rng);
        poison_matrix(&mut se.expand_w, &spec.mid_cuts, red, s, kind, rng);
        poison_affine(&mut se.expand_affine, &spec.mid_cuts, s, kind, rng);
    }
    poison_matrix(
        &mut w.project.0,
        &spec.out_cuts,
        &spec.mid_cuts,
        s,
        kind,
        rng,
    );
    poison_affine(&mut w.project.1, &spec.out_cuts, s, kind, rng);
    (x, w)
}
