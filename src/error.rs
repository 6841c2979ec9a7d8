//! The crate's error type.

use thiserror::Error;

/// Everything that can go wrong in enas4d's library code.
#[derive(Debug, Error)]
pub enum Error {
    // === Configuration errors ===
    /// A configuration value is out of its allowed range; names the field.
    #[error("invalid {field}: {reason}")]
    Config {
        /// The offending field, e.g. `p[1]` or `kernel[2]`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },

    // === Shape errors ===
    /// A tensor handed to an op does not have the size its spec implies.
    #[error("{op}: {what} has {got} elements, expected {expected}")]
    Shape {
        /// The op that checked the shape.
        op: &'static str,
        /// Which operand.
        what: &'static str,
        /// Element count the spec implies.
        expected: usize,
        /// Element count it has.
        got: usize,
    },

    // === Data errors ===
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A data file is malformed (truncated, wrong magic, inconsistent sizes, undecodable).
    #[error("{path}: {reason}")]
    Data {
        /// The file or folder.
        path: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A file or folder could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file or folder.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },

    // === Model file errors ===
    /// An exported model file is malformed, of another version, or inconsistent.
    #[error("model file: {0}")]
    Format(String),
    /// A training checkpoint or supernet file is malformed, corrupt or inconsistent.
    #[error("checkpoint or supernet file: {0}")]
    Checkpoint(String),
    /// Something could not be encoded (JSON of a log row, a report, a config).
    #[error("cannot encode {what}: {reason}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// The encoder's message.
        reason: String,
    },

    // === Output errors ===
    /// A plot could not be drawn.
    #[error("cannot draw the plot: {0}")]
    Plot(String),

    // === GPU errors ===
    /// No adapter matched the request (or none exists).
    #[error("no GPU adapter found: {0}")]
    NoAdapter(String),
    /// The adapter lacks a limit or feature the kernels need.
    #[error("adapter {adapter} is unsuitable: {reason}")]
    Unsuitable {
        /// The adapter's name.
        adapter: String,
        /// The missing capability, with the values.
        reason: String,
    },
    /// The device could not be created, or it reported an error (validation, out of memory, lost).
    #[error("GPU device error: {0}")]
    Device(String),
    /// Reading a buffer back from the GPU failed.
    #[error("GPU readback failed: {0}")]
    Readback(String),
}

/// Result with the crate's [`Error`](enum@Error).
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// A [`Error::Write`] for `path`.
    pub fn write(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        Error::Write {
            path: path.as_ref().display().to_string(),
            source,
        }
    }

    /// A [`Error::Data`] for `path`.
    pub fn data(path: impl AsRef<std::path::Path>, reason: impl Into<String>) -> Self {
        Error::Data {
            path: path.as_ref().display().to_string(),
            reason: reason.into(),
        }
    }

    /// A [`Error::Io`] for `path`.
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }

    /// A [`Error::Plot`] from the plotting library's error.
    pub fn plot(e: impl std::fmt::Display) -> Self {
        Error::Plot(e.to_string())
    }

    /// A [`Error::Encode`] of `what`.
    pub fn encode(what: &'static str, e: impl std::fmt::Display) -> Self {
        Error::Encode {
            what,
            reason: e.to_string(),
        }
    }

    /// A [`Error::Config`] for `field`.
    pub fn config(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Config {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
