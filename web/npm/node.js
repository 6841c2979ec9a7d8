// The package's Node entry: the WebAssembly module is read from the package folder and
// instantiated when the package is imported. Node has no WebGPU: models run on the CPU path.
import { readFileSync } from 'node:fs';
import { initialize } from './index.js';

await initialize(readFileSync(new URL('./enas4d_bg.wasm', import.meta.url)));

export { Model, selftest, initialize, default } from './index.js';
