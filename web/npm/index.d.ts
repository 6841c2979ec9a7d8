// The package's types: one surface for the browser, bundler and Node entries (camelCase
// throughout). The raw wasm-bindgen layer underneath is not part of the API. The image types
// are the DOM's: a Node or worker TypeScript project needs the "DOM" lib or `skipLibCheck`.
/// <reference lib="dom" />

/** What one exit said. */
export interface ExitResult {
  confidence: number;
  label: string;
  classIndex: number;
}

/** The decision for one image. */
export interface ClassifyResult {
  label: string;
  classIndex: number;
  /** Maximum softmax probability of the exit taken. */
  confidence: number;
  /** The exit taken, numbered from 1. */
  exit: number;
  /** MACs spent. */
  macs: number;
  /** MACs of running every stage. */
  fullMacs: number;
  /** The exits evaluated, in order. */
  perExit: ExitResult[];
}

/** At most one of: one threshold per early exit, one for every early exit, a MACs budget. */
export interface ClassifyOptions {
  thresholds?: number[];
  threshold?: number;
  /** Average MACs: the model's best stored operating point within it. */
  budget?: number;
}

/** A measured operating point of the model (validation split). */
export interface OperatingPoint {
  thresholds: number[];
  accuracy: number;
  avgMacs: number;
  exitShares: number[];
}

/** What `Model.info()` returns. */
export interface ModelInfo {
  stages: number;
  resolution: number;
  classes: string[];
  /** MACs up to and including each exit. */
  cumMacs: number[];
  /** The model's own thresholds. */
  thresholds: number[];
  backend: string;
  operatingPoints: OperatingPoint[];
  /** Why a WebGPU request fell back to the CPU path; absent when it did not. */
  fallbackReason?: string;
}

/** Raw RGBA pixels. */
export interface RgbaImage {
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
}

/** Anything `classify` reads pixels from, of any size. */
export type ImageInput =
  | ImageData
  | ImageBitmap
  | HTMLImageElement
  | HTMLCanvasElement
  | OffscreenCanvas
  | HTMLVideoElement
  | RgbaImage;

/** One kernel's row of the selftest. */
export interface SelftestRow {
  kernel: string;
  case: string;
  /** Normwise relative error; `null` when the kernel produced NaN or ±Inf. */
  maxRelErr: number | null;
  bound: number;
  pass: boolean;
}

/** What `selftest()` returns. */
export interface SelftestReport {
  adapter: { name: string; backend: string; deviceType: string; driver: string; limits: Record<string, number> };
  seed: number;
  rows: SelftestRow[];
  passed: boolean;
}

/** An exported multi-stage net, ready to classify with early exit. */
export declare class Model {
  private constructor();
  /**
   * Loads an exported net (the bytes of a `.safetensors` file written by `enas4d export`).
   * With `preferGpu` (default true) it runs on WebGPU when the environment has it, else on
   * the CPU path; `info().fallbackReason` says why it fell back.
   */
  static load(bytes: Uint8Array | ArrayBuffer, preferGpu?: boolean): Promise<Model>;
  /** `"cpu"` or `"webgpu (adapter)"`. */
  readonly backend: string;
  /** Stages, resolution, classes, MACs per exit, thresholds, operating points. */
  info(): ModelInfo;
  /** Classifies one image; overlapping calls are safe. */
  classify(image: ImageInput, options?: ClassifyOptions): Promise<ClassifyResult>;
  /** Classifies many images with the same options; results in input order. */
  classifyBatch(images: ImageInput[], options?: ClassifyOptions): Promise<ClassifyResult[]>;
  /** Frees the model's memory now instead of at garbage collection. */
  free(): void;
}

/**
 * Loads and instantiates the WebAssembly module once (optional: `Model.load` and `selftest`
 * do it). `source`: the module's bytes, a URL, a Response or a compiled module; default: the
 * `enas4d_bg.wasm` next to the package's JavaScript.
 */
export declare function initialize(
  source?: BufferSource | URL | string | Response | Promise<Response> | WebAssembly.Module,
): Promise<void>;

/** Runs every WGSL kernel against its reference on this browser's WebGPU adapter. */
export declare function selftest(): Promise<SelftestReport>;

export default initialize;
