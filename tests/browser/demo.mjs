// Browser test of the demo page (web/index.html) with the npm package's wasm: headless
// Chromium (WebGPU on its software adapter) classifies every gallery image through WebGPU and
// again through the CPU path, and both must match the native runtime's `enas4d infer --json`
// on the same files: labels, exits and MACs exactly, per-exit confidences within 1e-3; the same
// images classified by overlapping calls (Promise.all) must match them too; every point of the
// budget slider must decide as its thresholds do; switching the backend while "Classify all"
// runs must finish cleanly. Fails on
// any console or page error; saves a screenshot; prints the exit histogram and timings.
//
//   node tests/browser/demo.mjs NATIVE.jsonl THRESHOLD [pkg-dir]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { serve } from './serve.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const targetDir = process.env.CARGO_TARGET_DIR || path.join(os.homedir(), '.cache', 'enas4d', 'target');
const [nativeFile, tauArg, pkgArg] = process.argv.slice(2);
const pkgDir = path.resolve(pkgArg || path.join(targetDir, 'web', 'npm'));
const outDir = path.resolve(process.env.ENAS4D_TEST_OUT || path.join(targetDir, 'browser-test'));
const executablePath = process.env.ENAS4D_CHROMIUM || '/usr/bin/chromium';
const timeoutMs = Number(process.env.ENAS4D_BROWSER_TIMEOUT || 300) * 1000;
if (!nativeFile || tauArg === undefined) {
  console.error('usage: demo.mjs NATIVE.jsonl THRESHOLD [pkg-dir]');
  process.exit(2);
}
const tau = Number(tauArg);
const native = new Map(fs.readFileSync(nativeFile, 'utf8').trim().split('\n')
  .map((l) => JSON.parse(l)).map((r) => [path.basename(r.file), r]));
fs.mkdirSync(outDir, { recursive: true });

const problems = [];
let server;
let browser;
try {
  server = await serve({ root: path.join(repo, 'web'), pkg: pkgDir, models: path.join(repo, 'models') });
  browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox', '--enable-unsafe-webgpu', '--disable-gpu-sandbox', '--no-first-run'] });
  for (const [name, viewport] of [['laptop', { width: 1280, height: 900 }], ['phone', { width: 390, height: 844 }]]) {
    const page = await browser.newPage({ viewport });
    page.on('console', (m) => { if (m.type() === 'error') problems.push(`${name}: console error: ${m.text()}`); });
    page.on('pageerror', (e) => problems.push(`${name}: page error: ${e.message}`));
    page.on('requestfailed', (r) => problems.push(`${name}: request failed: ${r.url()}`));
    const t0 = Date.now();
    await page.goto(`${server.url}/index.html`, { waitUntil: 'load' });
    await page.evaluate(() => window.enas4dDemo.ready);
    const firstLoad = Date.now() - t0;
    if (name === 'phone') {
      await page.screenshot({ path: path.join(outDir, 'demo-phone.png'), fullPage: true });
      await page.close();
      continue;
    }
    for (const gpu of [true, false]) {
      const { backend, stages, results } = await page.evaluate(([g, t]) => window.enas4dDemo.run(g, t), [gpu, tau]);
      if (gpu !== backend.startsWith('webgpu')) problems.push(`asked for ${gpu ? 'WebGPU' : 'CPU'}, got ${backend}`);
      const hist = new Array(stages).fill(0);
      let mismatches = 0;
      const exitsBy = { right: [], wrong: [] };
      for (const r of results) {
        const n = native.get(r.file);
        if (!n) { problems.push(`no native result for ${r.file}`); continue; }
        hist[r.exit - 1] = (hist[r.exit - 1] ?? 0) + 1;
        const truth = r.file.replace(/^\d+-/, '').replace(/\.png$/, '');
        exitsBy[n.label.toLowerCase().replace(/[^a-z0-9]/g, '-') === truth ? 'right' : 'wrong'].push(r.exit);
        const same = r.label === n.label && r.exit === n.exit && r.macs === n.macs &&
          r.perExit.length === n.perExit.length &&
          r.perExit.every((e, i) => Math.abs(e.confidence - n.perExit[i].confidence) <= 1e-3);
        if (!same) { mismatches++; problems.push(`${backend}: ${r.file}: ${JSON.stringify(r)} vs native ${JSON.stringify(n)}`); }
      }
      // The same images as overlapping calls must give the same answers.
      const parallel = await page.evaluate(() => window.enas4dDemo.parallel());
      const sequential = new Map(results.map((r) => [r.file, r]));
      for (const p of parallel) {
        const r = sequential.get(p.file);
        if (!r || r.label !== p.label || r.exit !== p.exit) {
          problems.push(`${backend}: ${p.file}: overlapping calls gave ${p.label} at exit ${p.exit}, one at a time ${r?.label} at exit ${r?.exit}`);
        }
      }
      // The budget slider: each of the model's operating points decides the exits as its
      // thresholds do.
      // (On the CPU path only: the software WebGPU adapter takes about a second per image.)
      if (!gpu) {
        const budgets = await page.evaluate(() => window.enas4dDemo.budgets());
        if (budgets.points === 0 || budgets.bad !== 0) problems.push(`${backend}: budget slider: ${JSON.stringify(budgets)}`);
      }
      // Switching the backend while "Classify all" runs finishes the run without errors.
      const switched = await page.evaluate((g) => window.enas4dDemo.switchDuringAll(g), !gpu);
      if (switched.count !== results.length) problems.push(`${backend}: switching during "Classify all": ${JSON.stringify(switched)}`);
      const mean = (v) => (v.length ? (v.reduce((a, b) => a + b, 0) / v.length).toFixed(2) : '-');
      const ms = results.reduce((a, r) => a + r.ms, 0) / Math.max(1, results.length);
      console.log(`demo: ${backend}: ${results.length} images, exit histogram ${hist.join(' / ')}, ` +
        `mean exit ${mean(exitsBy.right)} (right) vs ${mean(exitsBy.wrong)} (wrong), ${ms.toFixed(1)} ms per image, ` +
        `${mismatches} mismatches vs native, first load ${firstLoad} ms`);
    }
    await page.screenshot({ path: path.join(outDir, 'demo.png'), fullPage: true });
    await page.close();
  }
  console.log(`demo: screenshots in ${outDir}`);
} catch (e) {
  problems.push(`harness error: ${e.message}`);
} finally {
  await browser?.close().catch(() => {});
  await server?.close().catch(() => {});
}
for (const p of problems) console.error(`demo: ${p}`);
console.log(problems.length ? `demo: FAILED (${problems.length} problems)` : 'demo: passed');
process.exit(problems.length ? 1 : 0);
