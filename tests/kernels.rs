//! Every WGSL kernel against its plain-Rust reference on the test device, fresh random inputs
//! (the cases and bounds are those of `enas4d selftest`, see `src/selftest.rs`), plus the
//! errors the launchers give for wrong shapes.

mod common;

use common::{fresh_seed, gpu};
use enas4d::ops::gemm::{encode_gemm, GemmSpec};
use enas4d::ops::Activation;
use enas4d::selftest;
use enas4d::Error;

#[test]
fn should_match_the_reference_on_fresh_random_inputs() {
    let ctx = gpu();
    for round in 0..3 {
        let seed = fresh_seed(&format!("kernels round {round}"));
        let report = pollster::block_on(selftest::run(ctx, seed)).unwrap();
        let text = selftest::format_report(&report);
        println!("{text}");
        assert!(report.passed, "seed {seed}:\n{text}");
        assert!(report.rows.len() >= 20);
    }
    // Each kernel compiled once, however many dispatches ran.
    assert_eq!(ctx.compiled_kernels(), enas4d::gpu::Kernel::ALL.len());
}

#[test]
fn should_fail_the_report_when_a_kernel_is_wrong() {
    // The error measure itself: a perturbed result must exceed the bound, NaN must fail.
    let want = vec![1.0f32, -2.0, 3.0];
    assert_eq!(selftest::max_rel_err(&want, &want), 0.0);
    assert!(selftest::max_rel_err(&[1.0, -2.0, 3.001], &want) > selftest::SUM_BOUND);
    assert!(selftest::max_rel_err(&[1.0, f32::NAN, 3.0], &want).is_infinite());
    assert!(selftest::max_rel_err(&[1.0], &want).is_infinite());
}

#[test]
fn should_reject_buffers_too_small_for_the_spec() {
    let ctx = gpu();
    let spec = GemmSpec::dense(2, 8, 5, 9, Activation::Relu).unwrap();
    let x = ctx.storage("x", 2 * 5 * 9 - 1);
    let w = ctx.storage("w", 8 * 5);
    let a = ctx.storage("a", 16);
    let y = ctx.storage("y", 2 * 8 * 9);
    let mut enc = ctx.encoder();
    match encode_gemm(ctx, &mut enc, &spec, &x, &w, &a, None, &y) {
        Err(Error::Shape {
            op: "gemm",
            what: "x",
            expected: 90,
            got: 89,
        }) => {}
        other => panic!("expected a shape error, got {other:?}"),
    }
    let mut with_res = spec.clone();
    with_res.residual = true;
    let x = ctx.storage("x", 90);
    let err = encode_gemm(ctx, &mut enc, &with_res, &x, &w, &a, None, &y).unwrap_err();
    assert!(err.to_string().contains("residual"), "{err}");
}
