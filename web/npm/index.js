// The package's browser and bundler entry. The WebAssembly module loads itself on first use:
// `Model.load` and `selftest` wait for it, so no init call is needed (`initialize` exists for
// loading the .wasm from elsewhere, or ahead of time).
import init, * as wasm from './enas4d.js';

let ready;

/**
 * Loads and instantiates the WebAssembly module once; later calls return the same promise
 * (after a failure, the next call tries again).
 * `source`: the module's bytes, a URL, a Response or a compiled module (default: the
 * `enas4d_bg.wasm` next to this file).
 */
export function initialize(source) {
  ready ??= init(source === undefined ? undefined : { module_or_path: source }).then(
    () => undefined,
    (e) => {
      ready = undefined; // a failed load (network, wrong URL) can be tried again
      throw e;
    },
  );
  return ready;
}

export const Model = wasm.Model;
const load = Model.load;
/** Loads an exported net (its bytes: Uint8Array or ArrayBuffer). */
Model.load = async function loadModel(bytes, preferGpu) {
  await initialize();
  const view = bytes instanceof ArrayBuffer ? new Uint8Array(bytes) : bytes;
  return load.call(Model, view, preferGpu);
};

/** Runs every WGSL kernel against its reference on this browser's WebGPU adapter. */
export async function selftest() {
  await initialize();
  return wasm.selftest();
}

export default initialize;
