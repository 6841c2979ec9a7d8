//! Kernel throughput on MobileNetV3 shapes: GFLOP/s and GB/s of each WGSL kernel on the adapter
//! found, beside the device's measured buffer-copy bandwidth.
//!
//! ```text
//! cargo run --release --example bench_kernels -- [--batches 1,32] [--min-time 0.5] [--adapter NAME]
//! ```
//!
//! Each row records `reps` dispatches in one command buffer and times submit → completion, after
//! one warm-up submission (which also compiles the pipeline). FLOPs count 2 per multiply-add;
//! bytes count each operand read once and the output written once (a lower bound on traffic).

use std::time::Instant;

use clap::Parser;
use enas4d::gpu::{GpuContext, GpuOptions};
use enas4d::ops::conv::{encode_conv, ConvSpec};
use enas4d::ops::dwconv::{encode_dwconv, DwConvSpec};
use enas4d::ops::gemm::{encode_gemm, GemmSpec};
use enas4d::ops::mbconv::DW_STRIDE;
use enas4d::ops::pool::encode_pool;
use enas4d::ops::resize::{encode_resize, ResizeSpec};
use enas4d::ops::softmax::encode_softmax;
use enas4d::ops::{Activation, Planes};
use enas4d::selftest::{random_affine, random_vec};
use enas4d::space::{stage_cuts, StageCuts};
use rand::rngs::SmallRng;
use rand::SeedableRng;

#[derive(Parser)]
struct Args {
    /// Batch sizes to time.
    #[arg(long, value_delimiter = ',', default_value = "1,32")]
    batches: Vec<usize>,
    /// Minimum seconds of timed work per row.
    #[arg(long, default_value_t = 0.5)]
    min_time: f64,
    /// Force the adapter whose name contains this.
    #[arg(long)]
    adapter: Option<String>,
}

type Encode<'a> = Box<dyn Fn(&GpuContext, &mut wgpu::CommandEncoder) + 'a>;

struct Case<'a> {
    name: String,
    flops: f64,
    bytes: f64,
    encode: Encode<'a>,
}

fn wait(ctx: &GpuContext) {
    ctx.device
        .poll(wgpu::PollType::wait_indefinitely())
        .expect("device lost");
}

/// Seconds per repetition of `encode`.
fn time(
    ctx: &GpuContext,
    encode: &dyn Fn(&GpuContext, &mut wgpu::CommandEncoder),
    min_time: f64,
) -> f64 {
    let run = |reps: usize| {
        let mut enc = ctx.encoder();
        for _ in 0..reps {
            encode(ctx, &mut enc);
        }
        let cmd = enc.finish();
        let t = Instant::now();
        ctx.queue.submit(Some(cmd));
        wait(ctx);
        t.elapsed().as_secs_f64()
    };
    run(1); // warm-up: pipeline compile, first touch
    let once = run(1).max(1e-6);
    let reps = ((min_time / once).ceil() as usize).clamp(1, 1000);
    run(reps) / reps as f64
}

#[allow(clippy::too_many_arguments)]
fn gemm_case<'a>(
    ctx: &GpuContext,
    rng: &mut SmallRng,
    b: usize,
    o: usize,
    i: usize,
    hw: usize,
    stages: &[f64],
    res: bool,
) -> Case<'a> {
    let mut spec = GemmSpec::dense(b, o, i, hw, Activation::Hswish).unwrap();
    spec.out_cuts = stage_cuts(o as u32, stages).unwrap();
    spec.in_cuts = stage_cuts(i as u32, stages).unwrap();
    spec.active = vec![true; stages.len() + 1];
    spec.residual = res;
    let (nx, nw, _, ny) = spec.lens();
    let x = ctx.upload_f32("x", &random_vec(rng, nx));
    let w = ctx.upload_f32("w", &random_vec(rng, nw));
    let a = ctx.upload_f32("a", &random_affine(rng, o));
    let r = ctx.upload_f32("r", &random_vec(rng, ny));
    let y = ctx.storage("y", ny);
    let macs = spec.macs() as f64;
    let bytes = 4.0 * (nx + nw + ny * if res { 2 } else { 1 }) as f64;
    let masked = if stages.is_empty() {
        String::new()
    } else {
        format!(" S{}", stages.len() + 1)
    };
    Case {
        name: format!(
            "1x1 conv {i}→{o} @{hw}px{masked}{}",
            if res { " +res" } else { "" }
        ),
        flops: 2.0 * macs,
        bytes,
        encode: Box::new(move |ctx, enc| {
            encode_gemm(ctx, enc, &spec, &x, &w, &a, res.then_some(&r), &y).unwrap();
        }),
    }
}

fn dw_case<'a>(
    ctx: &GpuContext,
    rng: &mut SmallRng,
    b: usize,
    c: usize,
    size: usize,
    k: usize,
    stride: usize,
) -> Case<'a> {
    let spec = DwConvSpec {
        batch: b,
        channels: c,
        height: size,
        width: size,
        stride,
        cuts: StageCuts::single(c as u32).unwrap(),
        kernels: vec![k],
        w_stride: DW_STRIDE,
        act: Activation::Hswish,
        active: vec![true],
        channel_offset: 0,
        channel_total: c,
    };
    let (nx, nw, _, ny) = spec.lens();
    let x = ctx.upload_f32("x", &random_vec(rng, nx));
    let w = ctx.upload_f32("w", &random_vec(rng, nw));
    let a = ctx.upload_f32("a", &random_affine(rng, c));
    let y = ctx.storage("y", ny);
    Case {
        name: format!("depthwise {k}x{k} s{stride} C{c} @{size}x{size}"),
        flops: 2.0 * (ny * k * k) as f64,
        bytes: 4.0 * (nx + c * k * k + ny) as f64,
        encode: Box::new(move |ctx, enc| encode_dwconv(ctx, enc, &spec, &x, &w, &a, &y).unwrap()),
    }
}

fn main() {
    let args = Args::parse();
    let ctx = pollster::block_on(GpuContext::new(&GpuOptions {
        backends: None,
        adapter: args.adapter.clone(),
        ..GpuOptions::default()
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    let info = ctx.adapter();
    println!(
        "adapter: {} ({}, {}, driver {})",
        info.name, info.backend, info.device_type, info.driver
    );

    // Copy bandwidth: 64 MiB buffer → buffer (read + write counted).
    let n = 16 << 20;
    let src = ctx.storage("copy src", n);
    let dst = ctx.storage("copy dst", n);
    let copy = |_: &GpuContext, enc: &mut wgpu::CommandEncoder| {
        enc.copy_buffer_to_buffer(&src, 0, &dst, 0, None)
    };
    let t = time(&ctx, &copy, args.min_time);
    println!(
        "copy bandwidth: {:.1} GB/s (64 MiB buffer copy, read + write)\n",
        2.0 * 4.0 * n as f64 / t / 1e9
    );

    println!(
        "{:<40} {:>5} {:>11} {:>9} {:>8}",
        "kernel", "batch", "time (ms)", "GFLOP/s", "GB/s"
    );
    let mut rng = SmallRng::seed_from_u64(7);
    for &b in &args.batches {
        let mut cases = vec![
            gemm_case(&ctx, &mut rng, b, 144, 24, 56 * 56, &[], false),
            gemm_case(&ctx, &mut rng, b, 24, 144, 56 * 56, &[], true),
            gemm_case(&ctx, &mut rng, b, 144, 24, 56 * 56, &[0.375, 0.625], false),
            dw_case(&ctx, &mut rng, b, 144, 56, 7, 1),
            dw_case(&ctx, &mut rng, b, 144, 56, 3, 1),
            dw_case(&ctx, &mut rng, b, 144, 56, 5, 2),
            gemm_case(&ctx, &mut rng, b, 1000, 1280, 1, &[], false),
        ];
        let stem = ConvSpec {
            batch: b,
            in_channels: 3,
            height: 224,
            width: 224,
            out_channels: 16,
            kernel: 3,
            stride: 2,
            act: Activation::Hswish,
            out_offset: 0,
            out_total: 16,
        };
        let (nx, nw, _, ny) = stem.lens();
        let (sx, sw, sa, sy) = (
            ctx.upload_f32("x", &random_vec(&mut rng, nx)),
            ctx.upload_f32("w", &random_vec(&mut rng, nw)),
            ctx.upload_f32("a", &random_affine(&mut rng, 16)),
            ctx.storage("y", ny),
        );
        cases.push(Case {
            name: "stem 3x3 s2 3→16 @224x224".into(),
            flops: 2.0 * (ny * 27) as f64,
            bytes: 4.0 * (nx + nw + ny) as f64,
            encode: Box::new(move |ctx, enc| {
                encode_conv(ctx, enc, &stem, &sx, &sw, &sa, &sy).unwrap()
            }),
        });
        let rows = b * 144;
        let (px, py) = (
            ctx.upload_f32("x", &random_vec(&mut rng, rows * 3136)),
            ctx.storage("y", rows),
        );
        cases.push(Case {
            name: "global pool C144 @56x56".into(),
            flops: (rows * 3136) as f64,
            bytes: 4.0 * (rows * 3137) as f64,
            encode: Box::new(move |ctx, enc| {
                encode_pool(ctx, enc, Planes::all(rows), 3136, &px, &py).unwrap()
            }),
        });
        let (lx, lp, lc, lk) = (
            ctx.upload_f32("l", &random_vec(&mut rng, b * 1000)),
            ctx.storage("p", b * 1000),
            ctx.storage("c", b),
            ctx.storage("k", b),
        );
        cases.push(Case {
            name: "softmax 1000 classes".into(),
            flops: 0.0,
            bytes: 4.0 * (b * 2000) as f64,
            encode: Box::new(move |ctx, enc| {
                encode_softmax(ctx, enc, b, 1000, &lx, &lp, &lc, &lk).unwrap()
            }),
        });
        let rs = ResizeSpec {
            planes: b * 3,
            in_height: 256,
            in_width: 256,
            out_height: 224,
            out_width: 224,
        };
        let (rx, ry) = (
            ctx.upload_f32("x", &random_vec(&mut rng, b * 3 * 65536)),
            ctx.storage("y", b * 3 * 50176),
        );
        cases.push(Case {
            name: "bilinear resize 3x256² → 224²".into(),
            flops: 0.0,
            bytes: 4.0 * (b * 3 * (65536 + 50176)) as f64,
            encode: Box::new(move |ctx, enc| encode_resize(ctx, enc, &rs, &rx, &ry).unwrap()),
        });
        for case in &cases {
            let t = time(&ctx, &*case.encode, args.min_time);
            let gflops = if case.flops > 0.0 {
                format!("{:.1}", case.flops / t / 1e9)
            } else {
                "-".into()
            };
            println!(
                "{:<40} {:>5} {:>11.3} {:>9} {:>8.1}",
                case.name,
                b,
                t * 1e3,
                gflops,
                case.bytes / t / 1e9
            );
        }
    }
}
