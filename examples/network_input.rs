//! Writes images as the network input an exported net takes (decoded, resized to its
//! resolution, scaled to [−1, 1]; DESIGN §6): little-endian f32 `[N, 3, R, R]`, for hosts that
//! run the net's ONNX graphs (`enas4d export --onnx`) and for the ONNX check
//! (`tests/onnx/check_onnx.py`).
//!
//! ```text
//! cargo run --release --example network_input -- MODEL.safetensors OUT.f32 IMAGE...
//! ```

use std::io::Write;

use enas4d::format::ExportedNet;
use enas4d::runtime::preprocess;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: network_input MODEL.safetensors OUT.f32 IMAGE...";
    let model = args.next().ok_or(usage)?;
    let out = args.next().ok_or(usage)?;
    let images: Vec<String> = args.collect();
    if images.is_empty() {
        return Err(usage.into());
    }
    let resolution = ExportedNet::load(model.as_ref())?.config.resolution as usize;
    let mut bytes = Vec::new();
    for path in &images {
        let rgb = enas4d::data::decode_image(path.as_ref())?.to_rgb8();
        let (w, h) = rgb.dimensions();
        let input = preprocess(rgb.as_raw(), w as usize, h as usize, 3, resolution)
            .map_err(|e| format!("{path}: {e}"))?;
        bytes.extend(input.iter().flat_map(|v| v.to_le_bytes()));
    }
    std::fs::File::create(&out)?.write_all(&bytes)?;
    eprintln!(
        "network_input: {} images at {resolution} px → {out}",
        images.len()
    );
    Ok(())
}
