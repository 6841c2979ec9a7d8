//! `enas4d gallery`: writes test images of the built-in (or any) data set as PNG files, for
//! trying `infer` and the browser demo on real images.

use std::path::PathBuf;

use clap::Args;
use enas4d::data::DataSource;

/// Arguments of `enas4d gallery`.
#[derive(Args)]
pub struct GalleryArgs {
    /// Output folder.
    #[arg(long, default_value = "runs/gallery")]
    out: PathBuf,
    /// How many images (spread evenly over the test split).
    #[arg(long, default_value_t = 24)]
    count: usize,
    /// Data: fashion-mnist (built in), idx:DIR, cifar:DIR or folder:DIR[:SIZE].
    #[arg(long, default_value = "fashion-mnist")]
    data: String,
}

/// Runs `enas4d gallery`.
pub fn run(args: GalleryArgs) -> Result<bool, Box<dyn std::error::Error>> {
    let test = DataSource::parse(&args.data)?.load(false)?;
    if args.count == 0 || test.is_empty() {
        return Err("nothing to write (count 0 or an empty test split)".into());
    }
    std::fs::create_dir_all(&args.out).map_err(|e| enas4d::Error::write(&args.out, e))?;
    let n = args.count.min(test.len());
    let (w, h) = (test.width as u32, test.height as u32);
    let mut index = Vec::with_capacity(n);
    for k in 0..n {
        let i = k * test.len() / n;
        let label = &test.classes[test.labels[i] as usize];
        let slug: String = label
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        let name = format!("{i:05}-{slug}.png");
        let px = test.interleaved(i);
        let img = if test.channels == 1 {
            image::DynamicImage::ImageLuma8(
                image::GrayImage::from_raw(w, h, px).ok_or("bad image size")?,
            )
        } else {
            image::DynamicImage::ImageRgb8(
                image::RgbImage::from_raw(w, h, px).ok_or("bad image size")?,
            )
        };
        let file = args.out.join(&name);
        img.save(&file)
            .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
        index.push(serde_json::json!({"file": name, "label": label, "index": i}));
    }
    enas4d::atomic::write_atomic(
        &args.out.join("index.json"),
        &serde_json::to_vec_pretty(&index)?,
    )?;
    eprintln!("gallery: {n} images in {}", args.out.display());
    Ok(true)
}
