//! Fresh seeds for randomized tests (feature `testing`, which the crate's own tests turn on).

/// A fresh seed for the random inputs of `test`, printed so that a failure can be rerun with
/// `ENAS4D_TEST_SEED` set to the printed value.
pub fn fresh_seed(test: &str) -> u64 {
    let seed = std::env::var("ENAS4D_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    println!("{test}: seed {seed}");
    seed
}
