//! Depthwise conv on the CPU at batch 64 on `tiny`'s shapes: this crate's channel-last kernel
//! ([`depthwise_cpu`], the training path) pass by pass, then a whole forward + backward through
//! burn's autodiff on `flex` with it as the custom op (`elastic::depthwise`) beside burn's own
//! grouped `conv2d` (`elastic::reference::depthwise`, the composition the custom op replaces).
//!
//! ```text
//! cargo run --release --example bench_depthwise -- [--batch 64] [--min-time 0.3]
//! ```
//!
//! Both run on rayon's pool (`RAYON_NUM_THREADS` sets its size); each cell is the median of
//! timed rounds of at least `--min-time` seconds in all, in ms. Before timing, the custom op and
//! the composition must agree on the output and both gradients (relative error ≤ 1e-4).

use std::time::Instant;

use burn::tensor::{Device, Tensor, TensorData};
use clap::Parser;
use enas4d::cpu::depthwise::PlaneConv;
use enas4d::elastic::depthwise_cpu::{self, DepthwiseShape};
use enas4d::elastic::{self, reference};
use enas4d::selftest::{max_rel_err, random_vec};
use rand::rngs::SmallRng;
use rand::SeedableRng;

#[derive(Parser)]
struct Args {
    /// Samples per batch.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Minimum seconds of timed work per cell.
    #[arg(long, default_value_t = 0.3)]
    min_time: f64,
}

/// Output, input gradient and kernel gradient of `sum(depthwise(x, kernel) · g)` on burn's
/// CPU backend, with the custom op or the composition.
fn burn_pass(
    custom: bool,
    stride: usize,
    x: &TensorData,
    kernel: &TensorData,
    g: &TensorData,
) -> [Vec<f32>; 3] {
    let device = Device::flex().autodiff();
    let x = Tensor::<4>::from_data(x.clone(), &device).require_grad();
    let kernel = Tensor::<3>::from_data(kernel.clone(), &device).require_grad();
    let y = if custom {
        elastic::depthwise(x.clone(), kernel.clone(), stride).expect("valid shapes")
    } else {
        reference::depthwise(x.clone(), kernel.clone(), stride)
    };
    let grads = (y.clone() * Tensor::from_data(g.clone(), &device))
        .sum()
        .backward();
    let values = |t: TensorData| t.try_into_vec::<f32>().expect("f32");
    [
        values(y.into_data()),
        values(x.grad(&grads).expect("dx").into_data()),
        values(kernel.grad(&grads).expect("dk").into_data()),
    ]
}

/// Median ms of `f` over rounds of at least `min_time` seconds in all.
fn time(min_time: f64, mut f: impl FnMut() -> Vec<f32>) -> f64 {
    std::hint::black_box(f());
    let mut runs = Vec::new();
    let start = Instant::now();
    while runs.len() < 3 || start.elapsed().as_secs_f64() < min_time {
        let t = Instant::now();
        std::hint::black_box(f());
        runs.push(t.elapsed().as_secs_f64() * 1e3);
    }
    runs.sort_by(f64::total_cmp);
    runs[runs.len() / 2]
}

fn main() {
    let args = Args::parse();
    let mut rng = SmallRng::seed_from_u64(7);
    // (channels, plane side, kernel, stride): blocks of `tiny` at 32 px and 20 px, all
    // channels of the largest expand ratio, and one stage's third of them.
    let shapes = [
        (96, 16, 7, 2),
        (144, 8, 7, 1),
        (144, 8, 3, 2),
        (192, 4, 5, 1),
        (288, 4, 7, 1),
        (288, 4, 7, 2),
        (384, 2, 7, 1),
        (384, 2, 3, 1),
        (144, 5, 7, 1),
        (192, 3, 5, 1),
        (96, 2, 7, 1),
        (48, 8, 5, 1),
    ];
    println!(
        "depthwise conv, batch {}, {} threads, ms",
        args.batch,
        rayon::current_num_threads()
    );
    println!(
        "| channels | plane | k | stride | kernel: forward | input grad | weight grad | burn autodiff, custom op | burn conv2d | speed-up |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (c, side, k, stride) in shapes {
        let plane = PlaneConv {
            h: side,
            w: side,
            k,
            stride,
        };
        let s = DepthwiseShape {
            n: args.batch,
            c,
            plane,
        };
        let (ho, wo) = (plane.out_h(), plane.out_w());
        let x = random_vec(&mut rng, s.n * c * side * side);
        let kernel = random_vec(&mut rng, c * k * k);
        let dy = random_vec(&mut rng, s.n * c * ho * wo);
        let xd = TensorData::new(x.clone(), [s.n, c, side, side]);
        let kd = TensorData::new(kernel.clone(), [c, k, k]);
        let gd = TensorData::new(dy.clone(), [s.n, c, ho, wo]);
        let custom = burn_pass(true, stride, &xd, &kd, &gd);
        let composed = burn_pass(false, stride, &xd, &kd, &gd);
        for ((what, a), b) in ["forward", "input grad", "weight grad"]
            .iter()
            .zip(&custom)
            .zip(&composed)
        {
            let e = max_rel_err(a, b);
            assert!(
                e <= 1e-4,
                "{what} c{c} {side}x{side} k{k} s{stride}: custom op and conv2d differ by {e:.2e}"
            );
        }
        let mt = args.min_time;
        let kernel_ms = [
            time(mt, || depthwise_cpu::forward(&s, &x, &kernel)),
            time(mt, || depthwise_cpu::backward_input(&s, &dy, &kernel)),
            time(mt, || depthwise_cpu::backward_weight(&s, &x, &dy)),
        ];
        let op = time(mt, || burn_pass(true, stride, &xd, &kd, &gd).concat());
        let conv2d = time(mt, || burn_pass(false, stride, &xd, &kd, &gd).concat());
        println!(
            "| {c} | {side}×{side} | {k} | {stride} | {:.2} | {:.2} | {:.2} | {op:.2} | {conv2d:.2} | {:.1}× |",
            kernel_ms[0],
            kernel_ms[1],
            kernel_ms[2],
            conv2d / op
        );
    }
}
