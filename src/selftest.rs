//! Checks every kernel against its plain-Rust reference on the current device, on fresh random
//! inputs with odd sizes, both strides and batches > 1. `enas4d selftest`, the browser selftest
//! and the test suite all run these cases.
//!
//! Error measure: normwise relative error `max_i |gpu_i − ref_i| / max_i |ref_i|`, the reference
//! accumulating in f64. Bounds: 1e-5 for kernels summing ≤ 10³ f32 terms (GEMM, convs, pool,
//! SE, the block), 1e-6 for the SE channel scale (one product per element), 1e-5 for softmax
//! (f32 `exp`) and for bilinear resize (4 terms, but the source coordinate `(o + ½)·in/out − ½`
//! is rounded in f32, an error of up to ~in·2⁻²⁴ in each interpolation weight); arg-max must
//! match exactly.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::error::Result;
use crate::gpu::{AdapterSummary, GpuContext};
use crate::ops::conv::{conv_reference, encode_conv, ConvSpec};
use crate::ops::dwconv::{dwconv_reference, encode_dwconv, DwConvSpec};
use crate::ops::gemm::{encode_gemm, gemm_reference, GemmSpec};
use crate::ops::kernel_transform::{
    encode_kernel_transform, kernel_transform_reference, KernelTransformSpec,
};
use crate::ops::mbconv::{encode_mbconv, mbconv_reference, MbConvSpec, MbConvWeights, DW_STRIDE};
use crate::ops::pool::{encode_pool, pool_reference};
use crate::ops::resize::{encode_resize, resize_reference, ResizeSpec};
use crate::ops::se::{
    encode_se, encode_se_scale, se_reference, se_scale_reference, SeSpec, SeWeights,
};
use crate::ops::softmax::{encode_softmax, softmax_reference};
use crate::ops::{Activation, Planes};
use crate::space::stage_cuts;

/// Bound for kernels that sum up to 10³ f32 terms.
pub const SUM_BOUND: f64 = 1e-5;
/// Bound of element-wise kernels (one rounding per element).
pub const ELEMENTWISE_BOUND: f64 = 1e-6;
/// Bound for the bilinear resize.
pub const RESIZE_BOUND: f64 = 1e-5;

/// One checked case.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// Kernel name (the shader file without `.wgsl`, or the composition).
    pub kernel: String,
    /// The case: shapes and options.
    pub case: String,
    /// Normwise relative error against the reference.
    pub max_rel_err: f64,
    /// The bound it must stay within.
    pub bound: f64,
    /// Whether it did.
    pub pass: bool,
}

/// The selftest's result.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The adapter the kernels ran on.
    pub adapter: AdapterSummary,
    /// The seed of the random inputs (rerun with it to reproduce).
    pub seed: u64,
    /// One row per case.
    pub rows: Vec<Row>,
    /// All rows passed.
    pub passed: bool,
}

/// Normwise relative error `max |a − b| / max |b|`; NaN or ∞ anywhere gives ∞.
pub fn max_rel_err(got: &[f32], want: &[f32]) -> f64 {
    if got.len() != want.len() {
        return f64::INFINITY;
    }
    let mut diff = 0f64;
    let mut scale = 0f64;
    for (&a, &b) in got.iter().zip(want) {
        let d = (f64::from(a) - f64::from(b)).abs();
        if !d.is_finite() {
            return f64::INFINITY;
        }
        diff = diff.max(d);
        scale = scale.max(f64::from(b).abs());
    }
    if diff == 0.0 {
        0.0
    } else {
        diff / scale.max(f64::MIN_POSITIVE)
    }
}

/// Uniform random values in [−1, 1).
pub fn random_vec(rng: &mut SmallRng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

/// A random folded-BN affine `[scale ∈ [0.5, 1.5), shift ∈ [−0.5, 0.5)]` for `c` channels.
pub fn random_affine(rng: &mut SmallRng, c: usize) -> Vec<f32> {
    let mut a: Vec<f32> = (0..c).map(|_| rng.random_range(0.5f32..1.5)).collect();
    a.extend((0..c).map(|_| rng.random_range(-0.5f32..0.5)));
    a
}

/// Random weights for a block.
pub fn random_mbconv_weights(rng: &mut SmallRng, spec: &MbConvSpec) -> MbConvWeights<Vec<f32>> {
    let (cin, mid, cout) = (
        spec.in_cuts.width() as usize,
        spec.mid(),
        spec.out_cuts.width() as usize,
    );
    MbConvWeights {
        expand: spec
            .expand
            .then(|| (random_vec(rng, mid * cin), random_affine(rng, mid))),
        dw: (random_vec(rng, mid * DW_STRIDE), random_affine(rng, mid)),
        se: spec.se_cuts.as_ref().map(|cuts| {
            let r = cuts.width() as usize;
            SeWeights {
                reduce_w: random_vec(rng, r * mid),
                reduce_affine: random_affine(rng, r),
                expand_w: random_vec(rng, mid * r),
                expand_affine: random_affine(rng, mid),
            }
        }),
        project: (random_vec(rng, cout * mid), random_affine(rng, cout)),
    }
}

/// The block shape the selftest and the causality test use: S = 3, p = (0.375, 0.625),
/// 24 → 72 → 24 channels with SE (24 reduced), k = (3, 5, 7), residual.
pub fn sample_block(batch: usize, size: usize, active: Vec<bool>) -> Result<MbConvSpec> {
    let p = [0.375, 0.625];
    Ok(MbConvSpec {
        batch,
        height: size,
        width: size,
        stride: 1,
        in_cuts: stage_cuts(24, &p)?,
        mid_cuts: stage_cuts(72, &p)?,
        out_cuts: stage_cuts(24, &p)?,
        se_cuts: Some(stage_cuts(24, &p)?),
        expand: true,
        kernels: vec![3, 5, 7],
        act: Activation::Hswish,
        active,
    })
}

fn row(kernel: &str, case: String, err: f64, bound: f64) -> Row {
    Row {
        kernel: kernel.into(),
        case,
        max_rel_err: err,
        bound,
        pass: err <= bound,
    }
}

async fn check_gemm(ctx: &GpuContext, rng: &mut SmallRng, spec: GemmSpec) -> Result<Row> {
    let (nx, nw, _, ny) = spec.lens();
    let (x, w, a) = (
        random_vec(rng, nx),
        random_vec(rng, nw),
        random_affine(rng, spec.rows),
    );
    let r = spec.residual.then(|| random_vec(rng, ny));
    let want = gemm_reference(&spec, &x, &w, &a, r.as_deref())?;
    let y = ctx.storage("y", ny);
    let rb = r.as_ref().map(|r| ctx.upload_f32("res", r));
    let mut enc = ctx.encoder();
    let (xb, wb, ab) = (
        ctx.upload_f32("x", &x),
        ctx.upload_f32("w", &w),
        ctx.upload_f32("a", &a),
    );
    encode_gemm(ctx, &mut enc, &spec, &xb, &wb, &ab, rb.as_ref(), &y)?;
    ctx.submit(enc);
    let got = ctx.read_f32(&y).await?;
    let case = format!(
        "B{} O{} I{}{} P{} S{} {:?}{}{}",
        spec.batch,
        spec.rows,
        spec.depth,
        if spec.in_width > spec.depth {
            format!("/{}", spec.in_width)
        } else {
            String::new()
        },
        spec.cols,
        spec.out_cuts.stages(),
        spec.act,
        if spec.residual { " +res" } else { "" },
        if spec.active.iter().all(|&a| a) {
            ""
        } else {
            " gated"
        },
    );
    Ok(row("gemm", case, max_rel_err(&got, &want), SUM_BOUND))
}

async fn check_dwconv(ctx: &GpuContext, rng: &mut SmallRng, spec: DwConvSpec) -> Result<Row> {
    let (nx, nw, _, ny) = spec.lens();
    let (x, w, a) = (
        random_vec(rng, nx),
        random_vec(rng, nw),
        random_affine(rng, spec.channels),
    );
    let want = dwconv_reference(&spec, &x, &w, &a)?;
    let y = ctx.storage("y", ny);
    let mut enc = ctx.encoder();
    let (xb, wb, ab) = (
        ctx.upload_f32("x", &x),
        ctx.upload_f32("w", &w),
        ctx.upload_f32("a", &a),
    );
    encode_dwconv(ctx, &mut enc, &spec, &xb, &wb, &ab, &y)?;
    ctx.submit(enc);
    let got = ctx.read_f32(&y).await?;
    let case = format!(
        "B{} C{} {}x{} s{} k{:?}{}",
        spec.batch,
        spec.channels,
        spec.height,
        spec.width,
        spec.stride,
        spec.kernels,
        if spec.active.iter().all(|&a| a) {
            ""
        } else {
            " gated"
        },
    );
    Ok(row("dwconv", case, max_rel_err(&got, &want), SUM_BOUND))
}

async fn check_kernel_transform(
    ctx: &GpuContext,
    rng: &mut SmallRng,
    channels: usize,
) -> Result<Row> {
    // 7 → 5 → 3 with random (non-identity) matrices, as in training.
    let s75 = KernelTransformSpec::packed(channels, 7);
    let s53 = KernelTransformSpec::packed(channels, 5);
    let k7 = random_vec(rng, s75.lens().0);
    let (m25, m9) = (random_vec(rng, 625), random_vec(rng, 81));
    let want5 = kernel_transform_reference(&s75, &k7, &m25)?;
    let want3 = kernel_transform_reference(&s53, &want5, &m9)?;
    let (k5, k3) = (
        ctx.storage("k5", s75.lens().2),
        ctx.storage("k3", s53.lens().2),
    );
    let mut enc = ctx.encoder();
    let (k7b, m25b, m9b) = (
        ctx.upload_f32("k7", &k7),
        ctx.upload_f32("m25", &m25),
        ctx.upload_f32("m9", &m9),
    );
    encode_kernel_transform(ctx, &mut enc, &s75, &k7b, &m25b, &k5)?;
    encode_kernel_transform(ctx, &mut enc, &s53, &k5, &m9b, &k3)?;
    ctx.submit(enc);
    let (got5, got3) = (ctx.read_f32(&k5).await?, ctx.read_f32(&k3).await?);
    let err = max_rel_err(&got5, &want5).max(max_rel_err(&got3, &want3));
    Ok(row(
        "kernel_transform",
        format!("C{channels} 7→5→3"),
        err,
        SUM_BOUND,
    ))
}

async fn check_conv(ctx: &GpuContext, rng: &mut SmallRng, spec: ConvSpec) -> Result<Row> {
    let (nx, nw, _, ny) = spec.lens();
    let (x, w, a) = (
        random_vec(rng, nx),
        random_vec(rng, nw),
        random_affine(rng, spec.out_channels),
    );
    let want = conv_reference(&spec, &x, &w, &a)?;
    let y = ctx.storage("y", ny);
    let mut enc = ctx.encoder();
    let (xb, wb, ab) = (
        ctx.upload_f32("x", &x),
        ctx.upload_f32("w", &w),
        ctx.upload_f32("a", &a),
    );
    encode_conv(ctx, &mut enc, &spec, &xb, &wb, &ab, &y)?;
    ctx.submit(enc);
    let got = ctx.read_f32(&y).await?;
    let case = format!(
        "B{} {}→{} {}x{} k{} s{}",
        spec.batch,
        spec.in_channels,
        spec.out_channels,
        spec.height,
        spec.width,
        spec.kernel,
        spec.stride
    );
    Ok(row("stem_conv", case, max_rel_err(&got, &want), SUM_BOUND))
}

/// The planes of `x` (`[batch, total, size]`) that `planes` selects, in order.
fn gather_planes(planes: Planes, size: usize, x: &[f32]) -> Vec<f32> {
    (0..planes.batch)
        .flat_map(|n| {
            let start = (n * planes.total + planes.offset) * size;
            x[start..start + planes.len * size].iter().copied()
        })
        .collect()
}

fn planes_case(planes: Planes, size: usize) -> String {
    format!(
        "B{} rows{}..{}/{} size{size}",
        planes.batch,
        planes.offset,
        planes.offset + planes.len,
        planes.total
    )
}

async fn check_pool(
    ctx: &GpuContext,
    rng: &mut SmallRng,
    planes: Planes,
    size: usize,
) -> Result<Row> {
    let rows = planes.batch * planes.total;
    let x = random_vec(rng, rows * size);
    let want = pool_reference(planes.count(), size, &gather_planes(planes, size, &x))?;
    let y = ctx.storage("y", rows);
    let mut enc = ctx.encoder();
    let xb = ctx.upload_f32("x", &x);
    encode_pool(ctx, &mut enc, planes, size, &xb, &y)?;
    ctx.submit(enc);
    let got = gather_planes(planes, 1, &ctx.read_f32(&y).await?);
    Ok(row(
        "pool",
        planes_case(planes, size),
        max_rel_err(&got, &want),
        SUM_BOUND,
    ))
}

async fn check_se_scale(
    ctx: &GpuContext,
    rng: &mut SmallRng,
    planes: Planes,
    size: usize,
) -> Result<Row> {
    let rows = planes.batch * planes.total;
    let x = random_vec(rng, rows * size);
    let gate = random_vec(rng, rows);
    let want = se_scale_reference(
        size,
        &gather_planes(planes, size, &x),
        &gather_planes(planes, 1, &gate),
    )?;
    let y = ctx.storage("y", rows * size);
    let mut enc = ctx.encoder();
    let (xb, gb) = (ctx.upload_f32("x", &x), ctx.upload_f32("gate", &gate));
    encode_se_scale(ctx, &mut enc, planes, size, &xb, &gb, &y)?;
    ctx.submit(enc);
    let got = gather_planes(planes, size, &ctx.read_f32(&y).await?);
    Ok(row(
        "se_scale",
        planes_case(planes, size),
        max_rel_err(&got, &want),
        ELEMENTWISE_BOUND,
    ))
}

async fn check_se(ctx: &GpuContext, rng: &mut SmallRng, spec: SeSpec) -> Result<Row> {
    let (c, r) = (spec.channels, spec.reduced);
    let x = random_vec(rng, spec.len());
    let w = SeWeights {
        reduce_w: random_vec(rng, r * c),
        reduce_affine: random_affine(rng, r),
        expand_w: random_vec(rng, c * r),
        expand_affine: random_affine(rng, c),
    };
    let want = se_reference(&spec, &x, &w)?;
    let y = ctx.storage("y", spec.len());
    let mut enc = ctx.encoder();
    let xb = ctx.upload_f32("x", &x);
    encode_se(ctx, &mut enc, &spec, &xb, &w.upload(ctx), &y)?;
    ctx.submit(enc);
    let got = ctx.read_f32(&y).await?;
    let case = format!(
        "B{} C{} R{} HW{} S{}",
        spec.batch,
        c,
        r,
        spec.size,
        spec.cuts.stages()
    );
    Ok(row("se", case, max_rel_err(&got, &want), SUM_BOUND))
}

async fn check_softmax(
    ctx: &GpuContext,
    rng: &mut SmallRng,
    rows: usize,
    classes: usize,
) -> Result<Vec<Row>> {
    let logits: Vec<f32> = random_vec(rng, rows * classes)
        .iter()
        .map(|v| v * 8.0)
        .collect();
    let want = softmax_reference(rows, classes, &logits)?;
    let (probs, conf, class) = (
        ctx.storage("p", rows * classes),
        ctx.storage("c", rows),
        ctx.storage("k", rows),
    );
    let mut enc = ctx.encoder();
    let lb = ctx.upload_f32("logits", &logits);
    encode_softmax(ctx, &mut enc, rows, classes, &lb, &probs, &conf, &class)?;
    ctx.submit(enc);
    let got_p = ctx.read_f32(&probs).await?;
    let got_c = ctx.read_f32(&conf).await?;
    let got_k = ctx.read_u32(&class).await?;
    let err = max_rel_err(&got_p, &want.probs).max(max_rel_err(&got_c, &want.confidence));
    let wrong = got_k
        .iter()
        .zip(&want.class)
        .filter(|(a, b)| a != b)
        .count();
    let case = format!("rows{rows} classes{classes}");
    Ok(vec![
        row("softmax", case.clone(), err, SUM_BOUND),
        row(
            "softmax",
            format!("{case} arg-max mismatches"),
            wrong as f64,
            0.0,
        ),
    ])
}

async fn check_resize(ctx: &GpuContext, rng: &mut SmallRng, spec: ResizeSpec) -> Result<Row> {
    let x = random_vec(rng, spec.planes * spec.in_height * spec.in_width);
    let want = resize_reference(&spec, &x)?;
    let y = ctx.storage("y", want.len());
    let mut enc = ctx.encoder();
    let xb = ctx.upload_f32("x", &x);
    encode_resize(ctx, &mut enc, &spec, &xb, &y)?;
    ctx.submit(enc);
    let got = ctx.read_f32(&y).await?;
    let case = format!(
        "planes{} {}x{}→{}x{}",
        spec.planes, spec.in_height, spec.in_width, spec.out_height, spec.out_width
    );
    Ok(row("resize", case, max_rel_err(&got, &want), RESIZE_BOUND))
}

async fn check_mbconv(ctx: &GpuContext, rng: &mut SmallRng, spec: MbConvSpec) -> Result<Row> {
    let weights = random_mbconv_weights(rng, &spec);
    let x = random_vec(rng, spec.lens().0);
    let want = mbconv_reference(&spec, &x, &weights)?;
    let mut enc = ctx.encoder();
    let xb = ctx.upload_f32("x", &x);
    let y = encode_mbconv(ctx, &mut enc, &spec, &xb, &weights.upload(ctx))?;
    ctx.submit(enc);
    let got = ctx.read_f32(&y).await?;
    let active: Vec<u8> = spec.active.iter().map(|&a| u8::from(a)).collect();
    let case = format!(
        "B{} {}→{}→{} {}x{} S{} k{:?} active{:?}",
        spec.batch,
        spec.in_cuts.width(),
        spec.mid(),
        spec.out_cuts.width(),
        spec.height,
        spec.width,
        spec.active.len(),
        spec.kernels,
        active
    );
    Ok(row("mbconv", case, max_rel_err(&got, &want), SUM_BOUND))
}

/// A GEMM case: batch, (rows, depth, cols), cut fractions, activation, residual, active stages.
type GemmCase = (
    usize,
    (usize, usize, usize),
    &'static [f64],
    Activation,
    bool,
    Vec<bool>,
);

fn gemm_spec(
    batch: usize,
    (rows, depth, cols): (usize, usize, usize),
    p: &[f64],
    act: Activation,
    residual: bool,
    active: Vec<bool>,
) -> Result<GemmSpec> {
    Ok(GemmSpec {
        batch,
        rows,
        depth,
        in_width: depth,
        out_width: rows,
        out_offset: 0,
        cols,
        out_cuts: stage_cuts(rows as u32, p)?,
        in_cuts: stage_cuts(depth as u32, p)?,
        act,
        residual,
        pass_through: residual && active.iter().any(|a| !a),
        active,
    })
}

fn dw_spec(
    batch: usize,
    channels: usize,
    size: usize,
    stride: usize,
    kernels: Vec<usize>,
    active: Vec<bool>,
) -> Result<DwConvSpec> {
    let p: &[f64] = match kernels.len() {
        1 => &[],
        2 => &[0.5],
        _ => &[0.375, 0.625],
    };
    Ok(DwConvSpec {
        batch,
        channels,
        height: size,
        width: size + 2,
        stride,
        cuts: stage_cuts(channels as u32, p)?,
        kernels,
        w_stride: DW_STRIDE,
        act: Activation::Hswish,
        active,
        channel_offset: 0,
        channel_total: channels,
    })
}

/// Runs every case on `ctx` with inputs drawn from `seed`.
pub async fn run(ctx: &GpuContext, seed: u64) -> Result<Report> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let rng = &mut rng;
    let t = true;
    let (h, r, n) = (Activation::Hswish, Activation::Relu, Activation::None);
    let gemm_cases: [GemmCase; 9] = [
        (2, (37, 29, 45), &[], h, true, vec![t]),
        (3, (50, 36, 33), &[0.375, 0.625], r, false, vec![t; 3]),
        (2, (44, 44, 81), &[0.25, 0.5], n, true, vec![t, false, t]),
        (
            2,
            (144, 24, 97),
            &[0.25, 0.5, 0.75],
            Activation::Hsigmoid,
            false,
            vec![t; 4],
        ),
        (3, (40, 24, 9), &[0.5], n, true, vec![false, t]),
        (5, (10, 67, 1), &[], n, false, vec![t]),
        (7, (70, 130, 1), &[0.5], h, false, vec![t; 2]),
        (67, (24, 40, 1), &[0.25, 0.625], r, false, vec![t; 3]),
        (1, (1000, 1280, 1), &[0.375, 0.75], h, false, vec![t; 3]),
    ];
    let mut rows = Vec::new();
    for (batch, shape, p, act, residual, active) in gemm_cases {
        let spec = gemm_spec(batch, shape, p, act, residual, active)?;
        rows.push(check_gemm(ctx, rng, spec).await?);
    }
    // Reading a channel prefix of a wider tensor, as the exits read the feature-mix vector.
    for (batch, cols) in [(3, 1), (2, 70)] {
        let mut spec = gemm_spec(batch, (10, 20, cols), &[], n, false, vec![t])?;
        spec.in_width = 36;
        rows.push(check_gemm(ctx, rng, spec).await?);
    }
    rows.extend([
        check_dwconv(ctx, rng, dw_spec(2, 30, 13, 1, vec![3, 5, 7], vec![t; 3])?).await?,
        check_dwconv(ctx, rng, dw_spec(3, 30, 13, 2, vec![7, 3, 5], vec![t; 3])?).await?,
        check_dwconv(ctx, rng, dw_spec(2, 21, 9, 2, vec![5], vec![t])?).await?,
        check_dwconv(
            ctx,
            rng,
            dw_spec(2, 36, 7, 1, vec![5, 7, 3], vec![t, false, t])?,
        )
        .await?,
        check_kernel_transform(ctx, rng, 19).await?,
        check_conv(
            ctx,
            rng,
            ConvSpec {
                batch: 2,
                in_channels: 3,
                height: 23,
                width: 21,
                out_channels: 16,
                kernel: 3,
                stride: 2,
                act: Activation::Hswish,
                out_offset: 0,
                out_total: 16,
            },
        )
        .await?,
        check_conv(
            ctx,
            rng,
            ConvSpec {
                batch: 3,
                in_channels: 3,
                height: 9,
                width: 11,
                out_channels: 13,
                kernel: 3,
                stride: 1,
                act: Activation::Relu,
                out_offset: 0,
                out_total: 13,
            },
        )
        .await?,
        check_pool(ctx, rng, Planes::all(37), 169).await?,
        check_pool(ctx, rng, Planes::all(11), 1000).await?,
        check_pool(
            ctx,
            rng,
            Planes {
                batch: 3,
                offset: 5,
                len: 7,
                total: 17,
            },
            49,
        )
        .await?,
        check_se_scale(
            ctx,
            rng,
            Planes {
                batch: 3,
                offset: 4,
                len: 9,
                total: 19,
            },
            25,
        )
        .await?,
    ]);
    let p = [0.375, 0.625];
    let se = SeSpec {
        batch: 2,
        channels: 40,
        reduced: 16,
        size: 49,
        cuts: stage_cuts(40, &p)?,
        reduced_cuts: stage_cuts(16, &p)?,
        active: vec![t; 3],
    };
    rows.push(check_se(ctx, rng, se).await?);
    rows.extend(check_softmax(ctx, rng, 33, 10).await?);
    rows.extend(check_softmax(ctx, rng, 5, 1000).await?);
    let resize = |planes, ih, iw, oh, ow| ResizeSpec {
        planes,
        in_height: ih,
        in_width: iw,
        out_height: oh,
        out_width: ow,
    };
    rows.push(check_resize(ctx, rng, resize(6, 28, 28, 32, 32)).await?);
    rows.push(check_resize(ctx, rng, resize(3, 37, 23, 20, 20)).await?);
    rows.push(check_mbconv(ctx, rng, sample_block(2, 9, vec![t; 3])?).await?);
    rows.push(check_mbconv(ctx, rng, sample_block(2, 7, vec![t, false, t])?).await?);
    let passed = rows.iter().all(|r| r.pass);
    Ok(Report {
        adapter: ctx.adapter().clone(),
        seed,
        rows,
        passed,
    })
}

/// The report as an aligned text table.
pub fn format_report(report: &Report) -> String {
    let a = &report.adapter;
    let mut out = format!(
        "adapter: {} ({}, {}, driver {})\nlimits: storage binding {} MiB, {} storage buffers/stage, \
         {} B workgroup memory, {} invocations/workgroup, {} workgroups/dim\nseed: {}\n\n",
        a.name,
        a.backend,
        a.device_type,
        a.driver,
        a.limits.max_storage_buffer_binding_size >> 20,
        a.limits.max_storage_buffers_per_shader_stage,
        a.limits.max_compute_workgroup_storage_size,
        a.limits.max_compute_invocations_per_workgroup,
        a.limits.max_compute_workgroups_per_dimension,
        report.seed
    );
    out += &format!(
        "{:<18} {:<44} {:>12} {:>8}  result\n",
        "kernel", "case", "max rel err", "bound"
    );
    for r in &report.rows {
        out += &format!(
            "{:<18} {:<44} {:>12.3e} {:>8.0e}  {}\n",
            r.kernel,
            r.case,
            r.max_rel_err,
            r.bound,
            if r.pass { "pass" } else { "FAIL" }
        );
    }
    let failed = report.rows.iter().filter(|r| !r.pass).count();
    out += &format!(
        "\n{} passed, {} failed\n",
        report.rows.len() - failed,
        failed
    );
    out
}
