//! The CPU kernels, shared by the stage-wise runtime and training's CPU ops (DESIGN §8): dense
//! matrix products on the `gemm` crate, the SIMD inner loops, the channel-last depthwise conv
//! and the row kernels (epilogue, pool) of channel-last activations.

pub mod depthwise;
#[cfg(not(target_arch = "wasm32"))]
pub(crate) mod matmul;
pub(crate) mod rows;
pub(crate) mod simd;

/// A fresh seed for a randomized kernel test, printed so that a failure can be rerun with
/// `ENAS4D_TEST_SEED` set to it.
#[cfg(test)]
pub(crate) fn fresh_seed() -> u64 {
    let seed = std::env::var("ENAS4D_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    println!("seed {seed}");
    seed
}
