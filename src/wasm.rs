//! The wasm-bindgen API (feature `wasm`): load an exported net and classify images with early
//! exit in the browser (WebGPU when the browser has it, the CPU path otherwise) or in Node
//! (CPU); plus the kernel selftest. Errors become JS exceptions with the library's message.
//! The package's typed surface is `web/npm/index.d.ts` (the entries in `web/npm/` wrap this
//! layer); the shapes of what these functions return are defined there.

use js_sys::{Function, Reflect, Uint8Array};
use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::camel::camel_keys;
use crate::format::ExportedNet;
use crate::gpu::{GpuContext, GpuOptions};
use crate::runtime::thresholds::ThresholdChoice;
use crate::runtime::{
    preprocess, Classification, Decision, StageWiseCpu, StageWiseGpu, GPU_MAX_BATCH,
};
use crate::space::count;

fn js_err(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

fn webgpu_options() -> GpuOptions {
    GpuOptions {
        backends: Some("webgpu".into()),
        ..GpuOptions::default()
    }
}

/// Runs every kernel against its reference on the browser's WebGPU adapter and returns the
/// report (`{ adapter, seed, rows: [...], passed }`, camelCase keys).
#[wasm_bindgen]
pub async fn selftest() -> Result<JsValue, JsError> {
    console_error_panic_hook::set_once();
    let ctx = GpuContext::new(&webgpu_options()).await.map_err(js_err)?;
    let seed = (js_sys::Math::random() * 2f64.powi(53)) as u64;
    let report = crate::selftest::run(&ctx, seed).await.map_err(js_err)?;
    let value = serde_json::to_value(&report).map_err(js_err)?;
    to_js(&camel_keys(value))
}

/// Where a model runs.
enum Engine {
    Cpu(StageWiseCpu),
    Gpu(Box<(GpuContext, StageWiseGpu)>),
}

/// An exported multi-stage net, ready to classify.
#[wasm_bindgen]
pub struct Model {
    net: ExportedNet,
    cum_macs: Vec<u64>,
    engine: Engine,
    backend: String,
    fallback_reason: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InfoJs<'a> {
    stages: usize,
    resolution: u32,
    classes: &'a [String],
    cum_macs: &'a [u64],
    thresholds: &'a [f32],
    backend: &'a str,
    operating_points: &'a [crate::runtime::thresholds::Operating],
    #[serde(skip_serializing_if = "Option::is_none")]
    fallback_reason: Option<&'a str>,
}

fn to_js<T: Serialize>(v: &T) -> Result<JsValue, JsError> {
    let s = serde_json::to_string(v).map_err(js_err)?;
    js_sys::JSON::parse(&s).map_err(|_| JsError::new("internal: JSON"))
}

fn get(obj: &JsValue, key: &str) -> Result<JsValue, JsError> {
    Reflect::get(obj, &JsValue::from_str(key))
        .map_err(|_| JsError::new(&format!("cannot read .{key}")))
}

fn call(obj: &JsValue, method: &str, args: &[JsValue]) -> Result<JsValue, JsError> {
    let f: Function = get(obj, method)?
        .dyn_into()
        .map_err(|_| JsError::new(&format!(".{method} is not a function")))?;
    let list = js_sys::Array::new();
    for a in args {
        list.push(a);
    }
    f.apply(obj, &list)
        .map_err(|e| JsError::new(&format!("{method}: {e:?}")))
}

const INPUT_KINDS: &str =
    "ImageData, ImageBitmap, an <img>, a <canvas>, an OffscreenCanvas, a <video> or { data, width, height }";

/// A size property that must be a whole number ≥ 0.
fn whole(obj: &JsValue, key: &str) -> Result<usize, JsError> {
    let v = get(obj, key)?
        .as_f64()
        .ok_or_else(|| JsError::new(&format!("classify: .{key} is not a number")))?;
    if !(v.is_finite() && v >= 0.0 && v.fract() == 0.0) {
        return Err(JsError::new(&format!(
            "classify: .{key} = {v} is not a whole number of pixels"
        )));
    }
    Ok(v as usize)
}

/// A 2D context's pixels of a `w × h` surface.
fn pixels_of(surface: &JsValue, w: usize, h: usize) -> Result<Vec<u8>, JsError> {
    let ctx = call(surface, "getContext", &[JsValue::from_str("2d")])?;
    if ctx.is_null() || ctx.is_undefined() {
        return Err(JsError::new(
            "classify: the canvas has no 2D context (it is in use by WebGL or WebGPU)",
        ));
    }
    let img = call(
        &ctx,
        "getImageData",
        &[0.into(), 0.into(), (w as f64).into(), (h as f64).into()],
    )?;
    Ok(Uint8Array::new(&get(&img, "data")?).to_vec())
}

/// A fresh `w × h` canvas: an `OffscreenCanvas` where there is one (workers included), else a
/// `<canvas>` of the page.
fn scratch_canvas(w: usize, h: usize) -> Result<JsValue, JsError> {
    let global = js_sys::global();
    let offscreen = get(&global, "OffscreenCanvas")?;
    if let Ok(ctor) = offscreen.dyn_into::<Function>() {
        let args = js_sys::Array::of2(&(w as f64).into(), &(h as f64).into());
        return Reflect::construct(&ctor, &args)
            .map_err(|e| JsError::new(&format!("OffscreenCanvas: {e:?}")));
    }
    let document = get(&global, "document")?;
    if document.is_undefined() {
        return Err(JsError::new(
            "classify: no OffscreenCanvas and no document here: pass ImageData or { data, width, height }",
        ));
    }
    let c = call(&document, "createElement", &[JsValue::from_str("canvas")])?;
    Reflect::set(&c, &"width".into(), &(w as f64).into()).map_err(|_| JsError::new("canvas"))?;
    Reflect::set(&c, &"height".into(), &(h as f64).into()).map_err(|_| JsError::new("canvas"))?;
    Ok(c)
}

/// RGBA pixels of any [`INPUT_KINDS`] input, with its width and height.
fn rgba_of(image: &JsValue) -> Result<(Vec<u8>, usize, usize), JsError> {
    if !image.is_object() {
        return Err(JsError::new(&format!("classify: expected {INPUT_KINDS}")));
    }
    let has = |key: &str| get(image, key).map(|v| !v.is_undefined());
    // ImageData and plain objects: the bytes themselves.
    if has("data")? {
        let (w, h) = (whole(image, "width")?, whole(image, "height")?);
        let data = get(image, "data")?;
        if !(data.is_instance_of::<Uint8Array>()
            || data.is_instance_of::<js_sys::Uint8ClampedArray>())
        {
            return Err(JsError::new(
                "classify: .data must be a Uint8Array or Uint8ClampedArray of RGBA bytes",
            ));
        }
        return Ok((Uint8Array::new(&data).to_vec(), w, h));
    }
    // Canvases (HTML and offscreen): read them directly.
    if has("getContext")? {
        let (w, h) = (whole(image, "width")?, whole(image, "height")?);
        return Ok((pixels_of(image, w, h)?, w, h));
    }
    // Drawables: images, videos, bitmaps, drawn at their natural size.
    let (w, h) = if has("naturalWidth")? {
        (
            whole(image, "naturalWidth")?,
            whole(image, "naturalHeight")?,
        )
    } else if has("videoWidth")? {
        (whole(image, "videoWidth")?, whole(image, "videoHeight")?)
    } else if has("width")? && has("close")? {
        (whole(image, "width")?, whole(image, "height")?)
    } else {
        return Err(JsError::new(&format!("classify: expected {INPUT_KINDS}")));
    };
    if w == 0 || h == 0 {
        return Err(JsError::new(
            "classify: the image or video has no pixels yet (size 0: not loaded?)",
        ));
    }
    let canvas = scratch_canvas(w, h)?;
    let ctx = call(&canvas, "getContext", &[JsValue::from_str("2d")])?;
    call(&ctx, "drawImage", &[image.clone(), 0.into(), 0.into()])?;
    Ok((pixels_of(&canvas, w, h)?, w, h))
}

#[wasm_bindgen]
impl Model {
    /// Loads an exported net (the bytes of a `.safetensors` file). With `preferGpu` (default
    /// true) it runs on WebGPU when the environment has it, else on the CPU path.
    pub async fn load(
        bytes: Vec<u8>,
        #[wasm_bindgen(js_name = preferGpu)] prefer_gpu: Option<bool>,
    ) -> Result<Model, JsError> {
        console_error_panic_hook::set_once();
        let net = ExportedNet::from_bytes(&bytes).map_err(js_err)?;
        let cum_macs = count(&net.preset, &net.config).map_err(js_err)?.cum_macs;
        let has_webgpu = !Reflect::get(&js_sys::global(), &"navigator".into())
            .ok()
            .filter(|n| n.is_object())
            .and_then(|n| Reflect::get(&n, &"gpu".into()).ok())
            .is_none_or(|g| g.is_undefined());
        let mut engine = None;
        let mut backend = String::from("cpu");
        let mut fallback_reason = None;
        if prefer_gpu.unwrap_or(true) {
            if !has_webgpu {
                fallback_reason =
                    Some("this environment has no WebGPU (navigator.gpu)".to_string());
            } else {
                match GpuContext::new(&webgpu_options()).await {
                    Ok(ctx) => {
                        match StageWiseGpu::new(&ctx, &net.preset, &net.config, &net.weights) {
                            Ok(rt) => {
                                let name = ctx.adapter().name.clone();
                                backend = if name.is_empty() {
                                    "webgpu".into()
                                } else {
                                    format!("webgpu ({name})")
                                };
                                engine = Some(Engine::Gpu(Box::new((ctx, rt))));
                            }
                            Err(e) => {
                                fallback_reason = Some(format!("WebGPU cannot run this net: {e}"))
                            }
                        }
                    }
                    Err(e) => fallback_reason = Some(e.to_string()),
                }
            }
        }
        let engine = match engine {
            Some(e) => e,
            None => Engine::Cpu(
                StageWiseCpu::new(&net.preset, &net.config, net.weights.clone()).map_err(js_err)?,
            ),
        };
        Ok(Model {
            net,
            cum_macs,
            engine,
            backend,
            fallback_reason,
        })
    }

    /// `"cpu"` or `"webgpu (adapter)"`.
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        self.backend.clone()
    }

    /// `{ stages, resolution, classes, cumMacs, thresholds, backend, operatingPoints,
    /// fallbackReason? }`.
    pub fn info(&self) -> Result<JsValue, JsError> {
        let info = serde_json::to_value(InfoJs {
            stages: self.cum_macs.len(),
            resolution: self.net.config.resolution,
            classes: &self.net.classes,
            cum_macs: &self.cum_macs,
            thresholds: &self.net.thresholds,
            backend: &self.backend,
            operating_points: &self.net.operating,
            fallback_reason: self.fallback_reason.as_deref(),
        })
        .map_err(js_err)?;
        to_js(&camel_keys(info))
    }

    /// Classifies `image` (any `ImageInput`: ImageData, ImageBitmap, an image, canvas,
    /// OffscreenCanvas or video element, or `{ data: RGBA, width, height }`, any size).
    /// `options`: `{ thresholds: [τ1, …] }`, `{ threshold: τ }` (every exit) or `{ budget:
    /// MACs }` (the model's best operating point within it), at most one; default: the model's
    /// thresholds. Returns `{ label, classIndex, confidence, exit, macs, fullMacs, perExit:
    /// [{ confidence, label, classIndex }] }`. Overlapping calls are safe.
    pub async fn classify(
        &self,
        image: JsValue,
        options: Option<JsValue>,
    ) -> Result<JsValue, JsError> {
        let thresholds = self.thresholds(options)?;
        let x = self.input(&image)?;
        let d: Decision = match &self.engine {
            Engine::Cpu(rt) => rt.classify(&x, &thresholds).map_err(js_err)?,
            Engine::Gpu(g) => g.1.classify(&g.0, &x, &thresholds).await.map_err(js_err)?,
        };
        to_js(&self.result(&d))
    }

    /// Classifies an array of images with the same options, each leaving at its own exit (on
    /// WebGPU each stage runs once for all the images still inside). Returns the results in
    /// input order.
    #[wasm_bindgen(js_name = classifyBatch)]
    pub async fn classify_batch(
        &self,
        images: JsValue,
        options: Option<JsValue>,
    ) -> Result<JsValue, JsError> {
        let thresholds = self.thresholds(options)?;
        let list: js_sys::Array = images
            .dyn_into()
            .map_err(|_| JsError::new("classifyBatch: expected an array of images"))?;
        let inputs = list
            .iter()
            .enumerate()
            .map(|(i, img)| {
                self.input(&img).map_err(|e| {
                    let message = JsValue::from(e)
                        .dyn_into::<js_sys::Error>()
                        .map(|e| String::from(e.message()))
                        .unwrap_or_default();
                    JsError::new(&format!("classifyBatch: image {i}: {message}"))
                })
            })
            .collect::<Result<Vec<_>, JsError>>()?;
        let decisions = match &self.engine {
            Engine::Cpu(rt) => rt.classify_batch(&inputs, &thresholds).map_err(js_err)?,
            Engine::Gpu(g) => {
                let mut out = Vec::with_capacity(inputs.len());
                for part in inputs.chunks(GPU_MAX_BATCH) {
                    out.extend(
                        g.1.classify_batch(&g.0, part, &thresholds)
                            .await
                            .map_err(js_err)?,
                    );
                }
                out
            }
        };
        to_js(&decisions.iter().map(|d| self.result(d)).collect::<Vec<_>>())
    }

    /// The network input of one image.
    fn input(&self, image: &JsValue) -> Result<Vec<f32>, JsError> {
        let (rgba, w, h) = rgba_of(image)?;
        if w.checked_mul(h).and_then(|p| p.checked_mul(4)) != Some(rgba.len()) {
            return Err(JsError::new(&format!(
                "classify: {} bytes for {w}×{h} RGBA (need 4 per pixel)",
                rgba.len()
            )));
        }
        preprocess(&rgba, w, h, 4, self.net.config.resolution as usize).map_err(js_err)
    }

    /// The user-facing result of a decision.
    fn result(&self, d: &Decision) -> Classification {
        Classification::new(
            d,
            |i| self.net.label(i),
            *self.cum_macs.last().unwrap_or(&0),
        )
    }

    /// The thresholds of `options` (`thresholds`, `threshold` or `budget`, at most one; a
    /// value of the wrong type is an error, not ignored).
    fn thresholds(&self, options: Option<JsValue>) -> Result<Vec<f32>, JsError> {
        let choice = match options.filter(|o| !o.is_undefined() && !o.is_null()) {
            None => ThresholdChoice::Default,
            Some(o) => threshold_choice(&o)?,
        };
        self.net.thresholds_for(&choice).map_err(js_err)
    }
}

/// A number option: `None` when absent, an error when present but not a number.
fn number(o: &JsValue, key: &str) -> Result<Option<f64>, JsError> {
    let v = get(o, key)?;
    if v.is_undefined() {
        return Ok(None);
    }
    v.as_f64()
        .map(Some)
        .ok_or_else(|| JsError::new(&format!("classify: options.{key} must be a number")))
}

/// The [`ThresholdChoice`] of a `ClassifyOptions` object.
fn threshold_choice(o: &JsValue) -> Result<ThresholdChoice, JsError> {
    if !o.is_object() {
        return Err(JsError::new("classify: options must be an object"));
    }
    let list = get(o, "thresholds")?;
    let one = number(o, "threshold")?;
    let budget = number(o, "budget")?;
    let given = usize::from(!list.is_undefined())
        + usize::from(one.is_some())
        + usize::from(budget.is_some());
    if given > 1 {
        return Err(JsError::new(
            "classify: pass at most one of options.thresholds, options.threshold and options.budget",
        ));
    }
    if !list.is_undefined() {
        let arr: js_sys::Array = list.dyn_into().map_err(|_| {
            JsError::new("classify: options.thresholds must be an array of numbers")
        })?;
        let v = arr
            .iter()
            .map(|x| {
                x.as_f64().map(|v| v as f32).ok_or_else(|| {
                    JsError::new("classify: options.thresholds must be an array of numbers")
                })
            })
            .collect::<Result<Vec<f32>, JsError>>()?;
        return Ok(ThresholdChoice::PerExit(v));
    }
    Ok(match (one, budget) {
        (Some(t), _) => ThresholdChoice::Uniform(t as f32),
        (None, Some(b)) => ThresholdChoice::Budget(b),
        (None, None) => ThresholdChoice::Default,
    })
}
