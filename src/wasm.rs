//! The wasm-bindgen API (feature `wasm`): load an exported net and classify images with early
//! exit in the browser (WebGPU when the browser has it, the CPU path otherwise) or in Node
//! (CPU); plus the kernel selftest. Errors become JS exceptions with the library's message.

use js_sys::{Function, Object, Reflect, Uint8Array};
use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::format::ExportedNet;
use crate::gpu::{GpuContext, GpuOptions};
use crate::runtime::thresholds::ThresholdChoice;
use crate::runtime::{preprocess, Classification, Decision, StageWiseCpu, StageWiseGpu};
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
/// report as JSON (`{"adapter", "seed", "rows": [...], "passed"}`).
#[wasm_bindgen]
pub async fn selftest() -> Result<String, JsError> {
    console_error_panic_hook::set_once();
    let ctx = GpuContext::new(&webgpu_options()).await.map_err(js_err)?;
    let seed = (js_sys::Math::random() * 2f64.powi(53)) as u64;
    let report = crate::selftest::run(&ctx, seed).await.map_err(js_err)?;
    serde_json::to_string(&report).map_err(js_err)
}

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &str = r#"
/** What one exit said. */
export interface ExitResult { confidence: number; label: string; classIndex: number }
/** The decision for one image. */
export interface ClassifyResult {
  label: string; classIndex: number; confidence: number;
  /** The exit taken, numbered from 1. */
  exit: number;
  /** MACs spent, and what all stages would cost. */
  macs: number; fullMacs: number;
  /** The exits evaluated, in order. */
  perExit: ExitResult[];
}
/** Exit thresholds, one for every early exit, or a MACs budget. */
export interface ClassifyOptions { thresholds?: number[]; threshold?: number; budget?: number }
/** A measured operating point of the model (validation split). */
export interface OperatingPoint { thresholds: number[]; accuracy: number; avg_macs: number; exit_shares: number[] }
/** What `Model.info()` returns. */
export interface ModelInfo {
  stages: number; resolution: number; classes: string[]; cumMacs: number[];
  thresholds: number[]; backend: string; operatingPoints: OperatingPoint[];
}
/** Anything `classify` reads pixels from. */
export type ImageInput = ImageData | HTMLCanvasElement | OffscreenCanvas | HTMLImageElement
  | { data: Uint8Array | Uint8ClampedArray; width: number; height: number };
"#;

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
}

fn to_js<T: Serialize>(v: &T) -> Result<JsValue, JsError> {
    let s = serde_json::to_string(v).map_err(js_err)?;
    js_sys::JSON::parse(&s).map_err(|_| JsError::new("internal: JSON"))
}

fn get(obj: &JsValue, key: &str) -> Result<JsValue, JsError> {
    Reflect::get(obj, &JsValue::from_str(key))
        .map_err(|_| JsError::new(&format!("cannot read .{key}")))
}

fn size(obj: &JsValue, key: &str) -> Result<usize, JsError> {
    get(obj, key)?
        .as_f64()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(|v| v as usize)
        .ok_or_else(|| JsError::new(&format!(".{key} is not a size")))
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

/// RGBA pixels of an `ImageData`, a `{ data, width, height }` object, a canvas, or an image
/// element (drawn onto a canvas of its natural size).
fn rgba_of(image: &JsValue) -> Result<(Vec<u8>, usize, usize), JsError> {
    if !image.is_object() {
        return Err(JsError::new(
            "classify: expected ImageData, a canvas, an image or { data, width, height }",
        ));
    }
    let data = get(image, "data")?;
    if !data.is_undefined() {
        let (w, h) = (size(image, "width")?, size(image, "height")?);
        let bytes = Uint8Array::new(&data).to_vec();
        return Ok((bytes, w, h));
    }
    let canvas = if !get(image, "getContext")?.is_undefined() {
        image.clone()
    } else if !get(image, "naturalWidth")?.is_undefined() {
        let (w, h) = (size(image, "naturalWidth")?, size(image, "naturalHeight")?);
        if w == 0 || h == 0 {
            return Err(JsError::new("classify: the image has not loaded (size 0)"));
        }
        let document = get(&js_sys::global(), "document")?;
        let c = call(&document, "createElement", &[JsValue::from_str("canvas")])?;
        Reflect::set(&c, &"width".into(), &(w as f64).into())
            .map_err(|_| JsError::new("canvas"))?;
        Reflect::set(&c, &"height".into(), &(h as f64).into())
            .map_err(|_| JsError::new("canvas"))?;
        let ctx = call(&c, "getContext", &[JsValue::from_str("2d")])?;
        call(&ctx, "drawImage", &[image.clone(), 0.into(), 0.into()])?;
        c
    } else {
        return Err(JsError::new(
            "classify: expected ImageData, a canvas, an image or { data, width, height }",
        ));
    };
    let (w, h) = (size(&canvas, "width")?, size(&canvas, "height")?);
    let ctx = call(&canvas, "getContext", &[JsValue::from_str("2d")])?;
    let img = call(
        &ctx,
        "getImageData",
        &[0.into(), 0.into(), (w as f64).into(), (h as f64).into()],
    )?;
    let bytes = Uint8Array::new(&get(&img, "data")?).to_vec();
    Ok((bytes, w, h))
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
        if prefer_gpu.unwrap_or(true) && has_webgpu {
            if let Ok(ctx) = GpuContext::new(&webgpu_options()).await {
                let rt = StageWiseGpu::new(&ctx, &net.preset, &net.config, &net.weights)
                    .map_err(js_err)?;
                let name = ctx.adapter().name.clone();
                backend = if name.is_empty() {
                    "webgpu".into()
                } else {
                    format!("webgpu ({name})")
                };
                engine = Some(Engine::Gpu(Box::new((ctx, rt))));
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
        })
    }

    /// `"cpu"` or `"webgpu (adapter)"`.
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        self.backend.clone()
    }

    /// `{ stages, resolution, classes, cumMacs, thresholds, backend, operatingPoints }`.
    #[wasm_bindgen(unchecked_return_type = "ModelInfo")]
    pub fn info(&self) -> Result<JsValue, JsError> {
        to_js(&InfoJs {
            stages: self.cum_macs.len(),
            resolution: self.net.config.resolution,
            classes: &self.net.classes,
            cum_macs: &self.cum_macs,
            thresholds: &self.net.thresholds,
            backend: &self.backend,
            operating_points: &self.net.operating,
        })
    }

    /// Classifies `image` (ImageData, canvas, image element or `{ data: RGBA, width,
    /// height }`). `options`: `{ thresholds: [τ1, …] }`, `{ threshold: τ }` (every exit) or
    /// `{ budget: MACs }` (the model's best operating point within it); default: the
    /// model's thresholds. Returns `{ label, classIndex, confidence, exit, macs, fullMacs,
    /// perExit: [{ confidence, label, classIndex }] }`.
    #[wasm_bindgen(unchecked_return_type = "ClassifyResult")]
    pub async fn classify(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ImageInput")] image: JsValue,
        #[wasm_bindgen(unchecked_param_type = "ClassifyOptions")] options: Option<Object>,
    ) -> Result<JsValue, JsError> {
        let (rgba, w, h) = rgba_of(&image)?;
        if rgba.len() != w * h * 4 {
            return Err(JsError::new(&format!(
                "classify: {} bytes for {w}×{h} RGBA",
                rgba.len()
            )));
        }
        let thresholds = self.thresholds(options.map(JsValue::from))?;
        let x = preprocess(&rgba, w, h, 4, self.net.config.resolution as usize).map_err(js_err)?;
        let d: Decision = match &self.engine {
            Engine::Cpu(rt) => rt.classify(&x, &thresholds).map_err(js_err)?,
            Engine::Gpu(g) => g.1.classify(&g.0, &x, &thresholds).await.map_err(js_err)?,
        };
        to_js(&Classification::new(
            &d,
            |i| self.net.label(i),
            *self.cum_macs.last().unwrap_or(&0),
        ))
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
