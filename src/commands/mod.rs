//! The subcommands of the `enas4d` binary.

#[cfg(feature = "train")]
pub mod curve;
#[cfg(feature = "train")]
pub mod eval;
#[cfg(feature = "train")]
pub mod export;
pub mod gallery;
pub mod infer;
#[cfg(feature = "train")]
pub mod search;
#[cfg(feature = "train")]
pub mod train;

/// The shipped multi-stage supernet, relative to the repository root.
#[cfg(feature = "train")]
pub const DEFAULT_SUPERNET: &str = "models/tiny-s3/supernet.bin";

/// The shipped static (S = 1) supernet.
#[cfg(feature = "train")]
pub const DEFAULT_STATIC: &str = "models/tiny-s1/supernet.bin";

/// The default supernet path.
#[cfg(feature = "train")]
pub fn default_supernet() -> std::path::PathBuf {
    std::path::PathBuf::from(DEFAULT_SUPERNET)
}
