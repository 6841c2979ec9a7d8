//! Shared test helpers: one GPU context per test binary (lavapipe where there is no GPU).

use std::sync::OnceLock;

use enas4d::gpu::{GpuContext, GpuOptions};

/// The test device. The test command installs lavapipe, so a missing adapter is a failure.
pub fn gpu() -> &'static GpuContext {
    static CTX: OnceLock<GpuContext> = OnceLock::new();
    CTX.get_or_init(|| {
        pollster::block_on(GpuContext::new(&GpuOptions::default()))
            .unwrap_or_else(|e| panic!("no GPU context ({e}); scripts/setup.sh installs lavapipe"))
    })
}

/// A fresh seed for random inputs, printed so a failure can be reproduced.
pub fn fresh_seed(test: &str) -> u64 {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    println!("{test}: seed {seed}");
    seed
}
