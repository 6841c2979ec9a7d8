//! IDX files (MNIST, Fashion-MNIST), gzipped or raw.

use std::io::Read;
use std::path::Path;

use super::Dataset;
use crate::error::{Error, Result};

/// Where Debian's `dataset-fashion-mnist` package installs the built-in data set.
pub const FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// Fashion-MNIST's class names, by label.
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Largest decompressed file accepted (guards against gzip bombs).
const MAX_DECODED: u64 = 1 << 30;

/// Reads a file, un-gzipping it when it starts with the gzip magic.
pub(crate) fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .take(MAX_DECODED + 1)
            .read_to_end(&mut out)
            .map_err(|e| Error::data(path, format!("bad gzip data: {e}")))?;
        if out.len() as u64 > MAX_DECODED {
            return Err(Error::data(path, "decompresses to more than 1 GiB"));
        }
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Parses an IDX file of unsigned bytes: its dimensions and its data.
fn parse_idx<'a>(bytes: &'a [u8], path: &Path) -> Result<(Vec<usize>, &'a [u8])> {
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err(Error::data(path, "not an IDX file (bad magic)"));
    }
    if bytes[2] != 0x08 {
        return Err(Error::data(
            path,
            format!(
                "IDX element type 0x{:02x}, only unsigned bytes (0x08) are supported",
                bytes[2]
            ),
        ));
    }
    let ndim = bytes[3] as usize;
    let header = 4 + 4 * ndim;
    if ndim == 0 || bytes.len() < header {
        return Err(Error::data(path, "truncated IDX header"));
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let want = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let data = &bytes[header..];
    match want {
        Some(n) if n == data.len() => Ok((dims, data)),
        Some(n) => Err(Error::data(
            path,
            format!(
                "dimensions {dims:?} need {n} bytes, file has {}",
                data.len()
            ),
        )),
        None => Err(Error::data(path, format!("dimensions {dims:?} overflow"))),
    }
}

/// Loads an IDX image file `[N, H, W]` and its label file `[N]`.
pub fn load_idx(images: &Path, labels: &Path, classes: Vec<String>) -> Result<Dataset> {
    let image_bytes = read_maybe_gz(images)?;
    let label_bytes = read_maybe_gz(labels)?;
    let (idims, pixels) = parse_idx(&image_bytes, images)?;
    let (ldims, label_data) = parse_idx(&label_bytes, labels)?;
    if idims.len() != 3 {
        return Err(Error::data(
            images,
            format!("expected [N, H, W] images, got dimensions {idims:?}"),
        ));
    }
    if ldims.len() != 1 || ldims[0] != idims[0] {
        return Err(Error::data(
            labels,
            format!("{ldims:?} labels for {} images", idims[0]),
        ));
    }
    if let Some(&l) = label_data.iter().find(|&&l| l as usize >= classes.len()) {
        return Err(Error::data(
            labels,
            format!("label {l} but only {} classes", classes.len()),
        ));
    }
    Dataset::new(
        pixels.to_vec(),
        label_data.iter().map(|&l| u32::from(l)).collect(),
        classes,
        (1, idims[1], idims[2]),
    )
}

/// Fashion-MNIST from `dir` (Debian's copy at [`FASHION_MNIST_DIR`]): the 60 000 training
/// images, or the 10 000 test images.
pub fn fashion_mnist(dir: &Path, train: bool) -> Result<Dataset> {
    let prefix = if train { "train" } else { "t10k" };
    let find = |stem: &str| {
        let gz = dir.join(format!("{prefix}-{stem}.gz"));
        if gz.exists() {
            gz
        } else {
            dir.join(format!("{prefix}-{stem}"))
        }
    };
    let classes = FASHION_MNIST_CLASSES
        .iter()
        .map(|s| s.to_string())
        .collect();
    load_idx(
        &find("images-idx3-ubyte"),
        &find("labels-idx1-ubyte"),
        classes,
    )
}
