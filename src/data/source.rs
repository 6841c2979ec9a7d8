//! Where a command's images come from: `fashion-mnist` (the built-in default), `idx:DIR`,
//! `cifar:DIR` or `folder:DIR` (with `train/` and `test/` inside, one folder per class).

use std::path::{Path, PathBuf};

use super::{fashion_mnist, load_cifar, load_folder, Dataset, FASHION_MNIST_DIR};
use crate::error::{Error, Result};

/// A labelled data set with a training and a test split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataSource {
    /// IDX files (MNIST layout: `train-images-idx3-ubyte[.gz]`, `t10k-…`) in a folder;
    /// Fashion-MNIST's class names.
    Idx(PathBuf),
    /// CIFAR-10 or CIFAR-100 binary files in a folder.
    Cifar(PathBuf),
    /// Image folders `DIR/train/CLASS/*.png|jpg` and `DIR/test/CLASS/…`, resized to `size`.
    Folder(PathBuf, usize),
}

impl DataSource {
    /// The built-in default: Fashion-MNIST from `$FASHION_MNIST_DIR` or Debian's package.
    pub fn builtin() -> Self {
        let dir = std::env::var_os("FASHION_MNIST_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(FASHION_MNIST_DIR));
        DataSource::Idx(dir)
    }

    /// Parses `fashion-mnist`, `idx:DIR`, `cifar:DIR` or `folder:DIR[:SIZE]` (SIZE default 32).
    pub fn parse(spec: &str) -> Result<Self> {
        let bad = || {
            Error::config(
                "data",
                format!(
                    "'{spec}': expected fashion-mnist, idx:DIR, cifar:DIR or folder:DIR[:SIZE]"
                ),
            )
        };
        if spec == "fashion-mnist" {
            return Ok(Self::builtin());
        }
        let (kind, rest) = spec.split_once(':').ok_or_else(bad)?;
        match kind {
            "idx" => Ok(DataSource::Idx(rest.into())),
            "cifar" => Ok(DataSource::Cifar(rest.into())),
            "folder" => {
                let (dir, size) = match rest.rsplit_once(':') {
                    Some((d, s)) if s.chars().all(|c| c.is_ascii_digit()) && !s.is_empty() => {
                        (d, s.parse().map_err(|_| bad())?)
                    }
                    _ => (rest, 32),
                };
                if !(8..=512).contains(&size) {
                    return Err(Error::config(
                        "data",
                        format!("folder image size {size} is outside 8..=512"),
                    ));
                }
                Ok(DataSource::Folder(dir.into(), size))
            }
            _ => Err(bad()),
        }
    }

    /// The training split (validation is carved from it by the caller) or the test split.
    pub fn load(&self, train: bool) -> Result<Dataset> {
        let split = if train { "train" } else { "test" };
        match self {
            DataSource::Idx(dir) => fashion_mnist(dir, train).map_err(|e| hint(e, dir)),
            DataSource::Cifar(dir) => load_cifar(dir, train),
            DataSource::Folder(dir, size) => load_folder(&dir.join(split), *size, *size),
        }
    }
}

fn hint(e: Error, dir: &Path) -> Error {
    match e {
        Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => Error::data(
            dir,
            "IDX files not found; install Debian's dataset-fashion-mnist (scripts/setup.sh does) or pass --data",
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        assert_eq!(
            DataSource::parse("idx:/d").unwrap(),
            DataSource::Idx("/d".into())
        );
        assert_eq!(
            DataSource::parse("cifar:c").unwrap(),
            DataSource::Cifar("c".into())
        );
        assert_eq!(
            DataSource::parse("folder:f").unwrap(),
            DataSource::Folder("f".into(), 32)
        );
        assert_eq!(
            DataSource::parse("folder:f:64").unwrap(),
            DataSource::Folder("f".into(), 64)
        );
        assert!(DataSource::parse("folder:f:4").is_err());
        assert!(DataSource::parse("mnist").is_err());
        assert!(DataSource::parse("hdf5:x").is_err());
    }
}
