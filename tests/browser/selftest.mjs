// Headless-browser selftest: loads web/selftest.html with the wasm bundle in
// Debian's Chromium (WebGPU on its software adapter), waits for the report and
// fails on any failing kernel row, page error or console error.
//
//   node tests/browser/selftest.mjs [pkg-dir]
//
// Environment:
//   ENAS4D_PKG_DIR          wasm-bindgen output dir (default $CARGO_TARGET_DIR/web/pkg)
//   ENAS4D_TEST_OUT         where the screenshot/report go (default $CARGO_TARGET_DIR/browser-test)
//   ENAS4D_BROWSER_TIMEOUT  seconds to wait for the report (default 300)
//   ENAS4D_CHROMIUM         browser executable (default /usr/bin/chromium)
//   ENAS4D_CHROMIUM_ARGS    extra browser flags, space separated
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { serve } from './serve.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const targetDir = process.env.CARGO_TARGET_DIR || path.join(os.homedir(), '.cache', 'enas4d', 'target');
const pkgDir = path.resolve(process.argv[2] || process.env.ENAS4D_PKG_DIR || path.join(targetDir, 'web', 'pkg'));
const outDir = path.resolve(process.env.ENAS4D_TEST_OUT || path.join(targetDir, 'browser-test'));
const timeoutS = Number(process.env.ENAS4D_BROWSER_TIMEOUT || 300);
const executablePath = process.env.ENAS4D_CHROMIUM || '/usr/bin/chromium';

// --no-sandbox: needed when running as root / in containers.
// --enable-unsafe-webgpu: exposes WebGPU on Linux (here on Dawn's SwiftShader
// fallback adapter when there is no GPU). The rest keep the run quiet and offline.
const args = [
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--disable-gpu-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
  ...(process.env.ENAS4D_CHROMIUM_ARGS || '').split(/\s+/).filter(Boolean),
];

function die(msg) {
  console.error(`selftest: ERROR: ${msg}`);
  console.log('0 passed, 0 failed');
  process.exit(1);
}

if (!Number.isFinite(timeoutS) || timeoutS <= 0) die(`bad ENAS4D_BROWSER_TIMEOUT: ${process.env.ENAS4D_BROWSER_TIMEOUT}`);
for (const f of ['enas4d.js', 'enas4d_bg.wasm']) {
  if (!fs.existsSync(path.join(pkgDir, f))) {
    die(`${path.join(pkgDir, f)} not found; build the wasm bundle first (scripts/build-web.sh)`);
  }
}
if (!fs.existsSync(executablePath)) die(`browser not found at ${executablePath} (install Debian's chromium: scripts/setup.sh)`);
fs.mkdirSync(outDir, { recursive: true });

const consoleLines = [];
const problems = [];
let report = null;
let browserAdapter = null;
let server = null;
let browser = null;

try {
  server = await serve({ root: path.join(repo, 'web'), pkg: pkgDir });
  browser = await chromium.launch({ executablePath, headless: true, args });
  console.log(`selftest: Chromium ${browser.version()}, serving ${pkgDir} at ${server.url}`);
  const page = await browser.newPage({ viewport: { width: 1100, height: 800 } });

  page.on('console', (msg) => {
    const line = `[console.${msg.type()}] ${msg.text()}`;
    consoleLines.push(line);
    if (msg.type() === 'error') problems.push(`console error: ${msg.text()}`);
  });
  page.on('pageerror', (err) => {
    consoleLines.push(`[pageerror] ${err.message}`);
    problems.push(`page error: ${err.message}`);
  });
  page.on('requestfailed', (req) => {
    problems.push(`request failed: ${req.url()} (${req.failure()?.errorText ?? 'unknown'})`);
  });
  page.on('crash', () => problems.push('page crashed'));

  const t0 = Date.now();
  await page.goto(`${server.url}/selftest.html`, { waitUntil: 'load' });
  try {
    await page.waitForFunction(
      () => window.__selftest !== undefined || window.__selftestError !== undefined,
      null,
      { timeout: timeoutS * 1000, polling: 250 },
    );
  } catch (e) {
    problems.push(`no result after ${timeoutS} s (set ENAS4D_BROWSER_TIMEOUT to wait longer)`);
  }
  const result = await page.evaluate(() => ({
    report: window.__selftest ?? null,
    error: window.__selftestError ?? null,
    browserAdapter: window.__selftestBrowserAdapter ?? null,
  }));
  browserAdapter = result.browserAdapter;
  const elapsed = ((Date.now() - t0) / 1000).toFixed(1);
  if (result.error !== null) problems.push(`selftest threw: ${result.error}`);
  report = result.report;

  try {
    await page.screenshot({ path: path.join(outDir, 'selftest.png'), fullPage: true });
    console.log(`selftest: screenshot ${path.join(outDir, 'selftest.png')}`);
  } catch (e) {
    console.error(`selftest: could not save screenshot: ${e.message}`);
  }
  console.log(`selftest: page finished in ${elapsed} s`);
} catch (e) {
  problems.push(`harness error: ${e.message}`);
} finally {
  await browser?.close().catch(() => {});
  await server?.close().catch(() => {});
}

fs.writeFileSync(path.join(outDir, 'console.log'), consoleLines.join('\n') + (consoleLines.length ? '\n' : ''));
if (report) fs.writeFileSync(path.join(outDir, 'selftest.json'), JSON.stringify(report, null, 2) + '\n');
for (const line of consoleLines) console.log(line);

let passed = 0;
let failed = 0;
if (report) {
  const a = report.adapter ?? {};
  console.log(`adapter: ${a.name || '(no name)'} | backend ${a.backend} | type ${a.deviceType} | driver ${a.driver || '-'}`);
  if (browserAdapter) {
    const b = browserAdapter;
    const what = [b.vendor, b.architecture, b.device, b.description].filter(Boolean).join(' / ') || 'unknown';
    console.log(`browser adapter: ${what}${b.fallback ? ' (fallback adapter)' : ''}`);
  }
  const rows = Array.isArray(report.rows) ? report.rows : [];
  const w = Math.max(6, ...rows.map((r) => `${r.kernel} ${r.case}`.length));
  console.log(`${'kernel case'.padEnd(w)}  ${'max_rel_err'.padStart(11)}  ${'bound'.padStart(9)}  result`);
  for (const r of rows) {
    const ok = r.pass === true && Number.isFinite(r.maxRelErr) && r.maxRelErr <= r.bound;
    if (ok) passed++;
    else failed++;
    const e = typeof r.maxRelErr === 'number' ? r.maxRelErr.toExponential(2) : String(r.maxRelErr);
    const b = typeof r.bound === 'number' ? r.bound.toExponential(2) : String(r.bound);
    console.log(`${`${r.kernel} ${r.case}`.padEnd(w)}  ${e.padStart(11)}  ${b.padStart(9)}  ${ok ? 'ok' : 'FAIL'}`);
  }
  if (rows.length === 0) problems.push('report has no rows');
  if (report.passed !== true) problems.push('report says passed = false');
}
for (const p of problems) console.error(`selftest: FAIL: ${p}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(problems.length === 0 && failed === 0 && report ? 0 : 1);
