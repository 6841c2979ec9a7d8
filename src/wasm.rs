//! The wasm-bindgen API (feature `wasm`): the selftest in the browser, through WebGPU.

use wasm_bindgen::prelude::*;

use crate::gpu::{GpuContext, GpuOptions};

/// Runs every kernel against its reference on the browser's WebGPU adapter and returns the
/// report as JSON (`{"adapter", "seed", "rows": [...], "passed"}`).
#[wasm_bindgen]
pub async fn selftest() -> Result<String, JsError> {
    console_error_panic_hook::set_once();
    let ctx = GpuContext::new(&GpuOptions {
        backends: Some("webgpu".into()),
        adapter: None,
    })
    .await
    .map_err(|e| JsError::new(&e.to_string()))?;
    let seed = (js_sys::Math::random() * 2f64.powi(53)) as u64;
    let report = crate::selftest::run(&ctx, seed)
        .await
        .map_err(|e| JsError::new(&e.to_string()))?;
    serde_json::to_string(&report).map_err(|e| JsError::new(&e.to_string()))
}
