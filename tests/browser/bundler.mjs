// The npm package in a bundled app, as a web developer builds one: copies the example of
// web/examples/bundler/ to a fresh folder, installs the packed tarball there, type-checks it
// against the package's TypeScript types (tsc, page and worker), builds it with Vite, serves
// the build and opens it in headless Chromium. The page classifies an image element (with and
// without options, and as a batch) and the worker an ImageBitmap and an OffscreenCanvas; every
// result must equal the native runtime's `enas4d infer --json` row for that image (label, exit
// and MACs exactly, per-exit confidences within 1e-3). Any console or page error fails it.
//
//   node tests/browser/bundler.mjs TARBALL MODEL NATIVE.jsonl THRESHOLD
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { serve } from './serve.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const [tarball, model, nativeFile, tauArg] = process.argv.slice(2);
if (tauArg === undefined) {
  console.error('usage: bundler.mjs TARBALL MODEL NATIVE.jsonl THRESHOLD');
  process.exit(2);
}
const executablePath = process.env.ENAS4D_CHROMIUM || '/usr/bin/chromium';
const rows = fs.readFileSync(nativeFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const want = rows[0];
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'enas4d-bundler-'));
const run = (cmd, args) => execFileSync(cmd, args, { cwd: dir, stdio: 'inherit' });
const problems = [];
let server;
let browser;
try {
  fs.cpSync(path.join(repo, 'web', 'examples', 'bundler'), dir, { recursive: true });
  fs.mkdirSync(path.join(dir, 'public'));
  fs.copyFileSync(path.resolve(model), path.join(dir, 'public', 'net.safetensors'));
  fs.copyFileSync(path.resolve(want.file), path.join(dir, 'public', 'image.png'));
  // Only the package itself is installed: tsc and Vite run from the tests' own node_modules,
  // and an offline install of the example's devDependencies would need registry metadata that
  // an npm cache filled by `npm ci` does not hold.
  const manifest = path.join(dir, 'package.json');
  const pkg = JSON.parse(fs.readFileSync(manifest, 'utf8'));
  delete pkg.devDependencies;
  fs.writeFileSync(manifest, JSON.stringify(pkg, null, 2));
  run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--no-save', path.resolve(tarball)]);
  const bin = (pkg, file) => path.join(here, 'node_modules', pkg, 'bin', file);
  run('node', [bin('typescript', 'tsc'), '-p', 'tsconfig.json']);
  run('node', [bin('typescript', 'tsc'), '-p', 'tsconfig.worker.json']);
  run('node', [bin('vite', 'vite.js'), 'build', '--logLevel', 'warn']);
  const dist = path.join(dir, 'dist');
  server = await serve({ root: dist, pkg: dist, models: dist });
  browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox', '--no-first-run'] });
  const page = await browser.newPage();
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  await page.goto(`${server.url}/index.html?t=${tauArg}`, { waitUntil: 'load' });
  await page.waitForFunction(() => window.__result || window.__error, null, { timeout: 120_000 });
  const { result, error } = await page.evaluate(() => ({ result: window.__result, error: window.__error }));
  if (error) problems.push(`the app failed: ${error}`);
  if (result) {
    const same = (r) => r.label === want.label && r.exit === want.exit && r.macs === want.macs &&
      r.perExit.length === want.perExit.length &&
      r.perExit.every((e, i) => Math.abs(e.confidence - want.perExit[i].confidence) <= 1e-3);
    const checks = { main: [result.main], batch: result.batch, worker: result.worker };
    for (const [what, list] of Object.entries(checks)) {
      if (!Array.isArray(list) || list.length === 0) problems.push(`${what}: no results`);
      for (const r of list ?? []) if (!same(r)) problems.push(`${what}: ${JSON.stringify(r)} vs native ${JSON.stringify(want)}`);
    }
    if (result.worker?.length !== 2) problems.push(`worker: ${result.worker?.length} results, want 2`);
    if (typeof result.cheapest !== 'number') problems.push('info().operatingPoints[0].avgMacs is not a number');
    if (!(result.plain?.exit >= 1)) problems.push('classify without options failed');
    console.log(`bundler: Vite build in Chromium: ${result.main.label}, exit ${result.main.exit} of ${result.stages}; worker (ImageBitmap, OffscreenCanvas): ${result.worker.map((r) => r.label).join(', ')}`);
  }
} catch (e) {
  problems.push(String(e?.stack ?? e));
} finally {
  await browser?.close();
  await server?.close();
  fs.rmSync(dir, { recursive: true, force: true });
}
if (problems.length) {
  for (const p of problems) console.error(`bundler: ${p}`);
  process.exit(1);
}
