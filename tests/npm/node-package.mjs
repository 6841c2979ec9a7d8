// The npm package as a user gets it: installs the packed tarball into a fresh folder, imports
// it in Node (the Node entry: no init call) and classifies the gallery images one by one and as
// a batch; labels, exits and confidences must match the native runtime's `enas4d infer --json`
// on the same files (≤ 1e-3). Also: the WebGPU fallback is explained, operating points are
// camelCase, options are optional, wrong option and input types are errors.
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
import { Model } from 'enas4d';
import { decodePng } from './png.mjs';
const [model, nativeFile, threshold] = process.argv.slice(2);
let bad = 0;
const fail = (what) => { bad++; console.error(what); };
// Node has no WebGPU: asked for it, the model says why it runs on the CPU.
const m = await Model.load(fs.readFileSync(model));
const info = m.info();
if (m.backend !== 'cpu' || !/WebGPU/.test(info.fallbackReason ?? '')) fail(\`no fallback reason: \${m.backend} \${info.fallbackReason}\`);
const p0 = info.operatingPoints[0];
if (typeof p0.avgMacs !== 'number' || !Array.isArray(p0.exitShares)) fail(\`operating points not camelCase: \${JSON.stringify(p0)}\`);
const rows = fs.readFileSync(nativeFile, 'utf8').trim().split('\\n').map((l) => JSON.parse(l));
const images = rows.map((n) => decodePng(fs.readFileSync(n.file)));
const exits = new Array(info.stages).fill(0);
const same = (r, n) => r.label === n.label && r.exit === n.exit && r.macs === n.macs &&
  r.perExit.every((e, i) => Math.abs(e.confidence - n.perExit[i].confidence) <= 1e-3);
for (const [i, n] of rows.entries()) {
  const r = await m.classify(images[i], { threshold: Number(threshold) });
  exits[r.exit - 1]++;
  if (!same(r, n)) fail(\`mismatch \${n.file} \${JSON.stringify(r)} \${JSON.stringify(n)}\`);
}
// classifyBatch gives the same results in input order.
const batch = await m.classifyBatch(images, { threshold: Number(threshold) });
if (batch.length !== rows.length || batch.some((r, i) => !same(r, rows[i]))) fail('classifyBatch differs from classify');
// Options are optional, and wrong types are errors, not ignored.
await m.classify(images[0]);
const rejects = async (what, f, pattern) => {
  try { await f(); fail(\`\${what}: no error\`); } catch (e) { if (!pattern.test(String(e))) fail(\`\${what}: \${e}\`); }
};
await rejects('threshold "1"', () => m.classify(images[0], { threshold: '1' }), /threshold must be a number/);
await rejects('budget NaN', () => m.classify(images[0], { budget: NaN }), /budget/);
await rejects('threshold and budget', () => m.classify(images[0], { threshold: 0.5, budget: 3e6 }), /at most one/);
await rejects('width 1.9', () => m.classify({ data: new Uint8Array(8), width: 1.9, height: 1 }), /whole number/);
await rejects('too few bytes', () => m.classify({ data: new Uint8Array(5), width: 2, height: 2 }), /bytes/);
await rejects('a string', () => m.classify('image.png'), /expected ImageData/);
await rejects('a batch with a bad image', () => m.classifyBatch([images[0], {}]), /image 1/);
console.log(\`node: backend \${m.backend} (\${info.fallbackReason}), \${rows.length} images, exits \${exits.join('/')}, \${bad} problems\`);
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
