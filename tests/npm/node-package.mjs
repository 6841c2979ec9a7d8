// The npm package as a user gets it: installs the packed tarball into a fresh folder, imports
// it in Node (CPU path) and classifies the gallery images; labels, exits and confidences must
// match the native runtime's `enas4d infer --json` on the same files (≤ 1e-3).
//
//   node tests/npm/node-package.mjs TARBALL MODEL NATIVE.jsonl THRESHOLD
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const [tarball, model, nativeFile, threshold] = process.argv.slice(2);
if (!threshold) {
  console.error('usage: node-package.mjs TARBALL MODEL NATIVE.jsonl THRESHOLD');
  process.exit(2);
}
const here = path.dirname(fileURLToPath(import.meta.url));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'enas4d-npm-'));
fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
execFileSync('npm', ['install', '--offline', '--no-audit', '--no-fund', path.resolve(tarball)], { cwd: dir, stdio: 'inherit' });
fs.copyFileSync(path.join(here, 'png.mjs'), path.join(dir, 'png.mjs'));
const runner = `
import fs from 'node:fs';
import { initSync, Model } from 'enas4d';
import { decodePng } from './png.mjs';
const wasm = fs.readFileSync(new URL(import.meta.resolve('enas4d/enas4d_bg.wasm')));
initSync({ module: wasm });
const [model, nativeFile, threshold] = process.argv.slice(2);
const m = await Model.load(fs.readFileSync(model), false);
const info = m.info();
const rows = fs.readFileSync(nativeFile, 'utf8').trim().split('\\n').map((l) => JSON.parse(l));
let bad = 0;
const exits = new Array(info.stages).fill(0);
for (const n of rows) {
  const r = await m.classify(decodePng(fs.readFileSync(n.file)), { threshold: Number(threshold) });
  exits[r.exit - 1]++;
  const same = r.label === n.label && r.exit === n.exit && r.macs === n.macs &&
    r.perExit.every((e, i) => Math.abs(e.confidence - n.perExit[i].confidence) <= 1e-3);
  if (!same) { bad++; console.error('mismatch', n.file, JSON.stringify(r), JSON.stringify(n)); }
}
let threw = false;
try { await m.classify({ data: new Uint8Array(5), width: 2, height: 2 }, {}); } catch (e) { threw = /bytes/.test(String(e)); }
if (!threw) { bad++; console.error('bad input did not throw a clear error'); }
console.log(\`node: backend \${m.backend}, \${rows.length} images, exits \${exits.join('/')}, \${bad} mismatches\`);
process.exit(bad ? 1 : 0);
`;
fs.writeFileSync(path.join(dir, 'run.mjs'), runner);
// The native rows name files relative to this folder; the runner works elsewhere.
const absolute = fs.readFileSync(nativeFile, 'utf8').trim().split('\n')
  .map((l) => { const r = JSON.parse(l); r.file = path.resolve(r.file); return JSON.stringify(r); });
fs.writeFileSync(path.join(dir, 'native.jsonl'), absolute.join('\n') + '\n');
try {
  execFileSync('node', ['run.mjs', path.resolve(model), 'native.jsonl', threshold], { cwd: dir, stdio: 'inherit' });
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
