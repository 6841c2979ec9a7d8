//! Decoding one image file with bounds checked before any pixel is decoded: the header's
//! dimensions first, then the `image` crate's own limits on the decoder's allocations, so a
//! small file that claims a huge image (a decompression bomb) is refused at once.

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageReader, Limits};

use crate::error::{Error, Result};
use crate::runtime::MAX_SIDE;

/// The most bytes a decoder may allocate for one image (a 16 384² RGBA image at 8 bits).
pub const MAX_DECODE_BYTES: u64 = (MAX_SIDE * MAX_SIDE * 4) as u64;

/// The most pixels an accepted image may have (checked before decoding).
pub const MAX_PIXELS: u64 = 64 * 1024 * 1024;

/// Decodes the PNG or JPEG at `path` (format from its content), refusing before decoding any
/// image whose sides exceed [`MAX_SIDE`] or whose pixel count exceeds [`MAX_PIXELS`].
pub fn decode_image(path: &Path) -> Result<DynamicImage> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let open = || {
        ImageReader::new(Cursor::new(bytes.as_slice()))
            .with_guessed_format()
            .map_err(|e| Error::io(path, e))
    };
    let (width, height) = open()?
        .into_dimensions()
        .map_err(|e| Error::data(path, format!("cannot read the image header: {e}")))?;
    check_size(path, width, height)?;
    let mut reader = open()?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE as u32);
    limits.max_image_height = Some(MAX_SIDE as u32);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    reader
        .decode()
        .map_err(|e| Error::data(path, format!("cannot decode: {e}")))
}

fn check_size(path: &Path, width: u32, height: u32) -> Result<()> {
    let (w, h) = (width as usize, height as usize);
    if w == 0 || h == 0 || w > MAX_SIDE || h > MAX_SIDE || (w as u64) * (h as u64) > MAX_PIXELS {
        return Err(Error::data(
            path,
            format!(
                "image of {width}×{height} pixels refused before decoding (each side 1 to \
                 {MAX_SIDE}, at most {MAX_PIXELS} pixels)"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A valid grey PNG whose header claims `side`² pixels of zeros, compressed: a few hundred
    /// kilobytes that would decode to `side`² bytes.
    fn bomb(path: &Path, side: u32) {
        let file = std::fs::File::create(path).unwrap();
        let mut enc = png::Encoder::new(std::io::BufWriter::new(file), side, side);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Fast);
        let mut writer = enc.write_header().unwrap();
        let mut stream = writer.stream_writer().unwrap();
        let row = vec![0u8; side as usize];
        for _ in 0..side {
            stream.write_all(&row).unwrap();
        }
        stream.finish().unwrap();
    }

    #[test]
    fn a_decompression_bomb_is_refused_from_its_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bomb.png");
        bomb(&path, 20_000);
        let size = std::fs::metadata(&path).unwrap().len();
        assert!(size < 2_000_000, "{size} bytes");
        let err = decode_image(&path).unwrap_err().to_string();
        assert!(
            err.contains("20000×20000") && err.contains("before decoding"),
            "{err}"
        );
    }

    #[test]
    fn ordinary_images_decode_and_garbage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let ok = dir.path().join("ok.png");
        image::RgbImage::from_fn(37, 5, |x, y| image::Rgb([x as u8, y as u8, 7]))
            .save(&ok)
            .unwrap();
        let img = decode_image(&ok).unwrap();
        assert_eq!((img.width(), img.height()), (37, 5));
        let bad = dir.path().join("bad.png");
        std::fs::write(&bad, b"\x89PNG\r\n\x1a\nnot really").unwrap();
        assert!(decode_image(&bad).is_err());
        assert!(decode_image(&dir.path().join("missing.png")).is_err());
    }
}
