//! Folders of images: `root/<class>/<image>.{png,jpg,jpeg}`, classes in sorted folder order.

use std::path::{Path, PathBuf};

use super::Dataset;
use crate::error::{Error, Result};

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
        .unwrap_or(false)
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    Ok(entries)
}

/// Loads every PNG/JPEG under `root/<class>/`, of any size, colour type or bit depth, as RGB
/// resized (bilinear) to `height × width`.
pub fn load_folder(root: &Path, height: usize, width: usize) -> Result<Dataset> {
    if height == 0 || width == 0 {
        return Err(Error::config("size", "image size must be positive"));
    }
    let class_dirs: Vec<PathBuf> = sorted_entries(root)?
        .into_iter()
        .filter(|p| p.is_dir())
        .collect();
    if class_dirs.is_empty() {
        return Err(Error::data(root, "no class folders"));
    }
    let mut classes = Vec::new();
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for (label, dir) in class_dirs.iter().enumerate() {
        classes.push(
            dir.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
        for file in sorted_entries(dir)?.into_iter().filter(|p| is_image(p)) {
            let img = super::decode_image(&file)?;
            let rgb = image::imageops::resize(
                &img.to_rgb8(),
                width as u32,
                height as u32,
                image::imageops::FilterType::Triangle,
            );
            // Interleaved RGB → channel-major planes.
            for c in 0..3 {
                pixels.extend(rgb.pixels().map(|p| p.0[c]));
            }
            labels.push(label as u32);
        }
    }
    if labels.is_empty() {
        return Err(Error::data(
            root,
            "no PNG or JPEG images in the class folders",
        ));
    }
    Dataset::new(pixels, labels, classes, (3, height, width))
}
