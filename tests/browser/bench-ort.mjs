// The wasm CPU runtime against onnxruntime-web (wasm backend, one thread) in headless Chromium,
// on the same net and images (tests/browser/bench-ort.html); prints a Markdown table.
//
//   node tests/browser/bench-ort.mjs PKG_DIR BENCH_DIR [SECONDS] [ROUNDS] [IMAGES]
//
// BENCH_DIR holds net.safetensors, its ONNX graphs net.onnx and net.exit1.onnx, and
// input.f32 (IMAGES preprocessed images): scripts/bench-ort-web.sh prepares it.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { serve } from './serve.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const [pkgDir, benchDir, seconds = '2', rounds = '3', images = '64'] = process.argv.slice(2);
if (!pkgDir || !benchDir) {
  console.error('usage: node tests/browser/bench-ort.mjs PKG_DIR BENCH_DIR [SECONDS] [ROUNDS] [IMAGES]');
  process.exit(2);
}
const server = await serve({
  root: path.join(repo, 'web'),
  pkg: pkgDir,
  extra: [
    ['/ort', path.join(here, 'node_modules', 'onnxruntime-web', 'dist')],
    ['/bench', benchDir],
    ['/benchpage', here],
  ],
});
const browser = await chromium.launch({
  executablePath: process.env.ENAS4D_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
});
try {
  const page = await browser.newPage();
  page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
  await page.goto(`${server.url}/benchpage/bench-ort.html?seconds=${seconds}&rounds=${rounds}&images=${images}`);
  await page.waitForFunction(() => window.benchResult, null, { timeout: 1_800_000 });
  const r = await page.evaluate(() => window.benchResult);
  if (r.error) throw new Error(r.error);
  console.log(`Chromium ${browser.version()}, enas4d backend ${r.backend}, ${r.ort}, one thread each, median of ${rounds} alternating rounds of ${seconds} s\n`);
  console.log('| batch | exits | enas4d wasm images/s | onnxruntime-web wasm images/s | enas4d / ORT |');
  console.log('| ---: | --- | ---: | ---: | ---: |');
  for (const row of r.rows) {
    console.log(`| ${row.batch} | ${row.exits} | ${row.enas4d.toFixed(0)} | ${row.ort.toFixed(0)} | ${(row.enas4d / row.ort).toFixed(2)}× |`);
  }
} finally {
  await browser.close();
  await server.close();
}
