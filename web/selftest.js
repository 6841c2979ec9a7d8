// Runs the wasm selftest and renders its JSON report.
// Sets window.__selftest (the parsed report) or window.__selftestError (a message)
// so that automated browser tests can wait for either.
import init, { selftest } from './pkg/enas4d.js';

const $ = (id) => document.getElementById(id);

function cell(text, className) {
  const td = document.createElement('td');
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function fmt(x) {
  return typeof x === 'number' ? x.toExponential(2) : String(x);
}

// What the browser itself says about its adapter (wgpu's AdapterInfo leaves
// most fields empty on WebGPU).
async function browserAdapter() {
  try {
    const adapter = await navigator.gpu.requestAdapter();
    if (!adapter) return null;
    const i = adapter.info ?? {};
    return {
      vendor: i.vendor ?? '',
      architecture: i.architecture ?? '',
      device: i.device ?? '',
      description: i.description ?? '',
      fallback: Boolean(i.isFallbackAdapter ?? adapter.isFallbackAdapter),
    };
  } catch {
    return null;
  }
}

function describe(b) {
  if (!b) return undefined;
  const parts = [b.vendor, b.architecture, b.device, b.description].filter(Boolean);
  return (parts.join(' / ') || 'unknown') + (b.fallback ? ' (fallback adapter)' : '');
}

function render(report, browser) {
  const a = report.adapter ?? {};
  const info = $('adapter-info');
  const fields = [
    ['Name', a.name],
    ['Backend', a.backend],
    ['Device type', a.deviceType],
    ['Driver', a.driver],
    ['Browser says', describe(browser)],
  ];
  for (const [k, v] of fields) {
    const dt = document.createElement('dt');
    dt.textContent = k;
    const dd = document.createElement('dd');
    dd.textContent = v === undefined || v === '' ? '—' : String(v);
    info.append(dt, dd);
  }
  $('limits').textContent = JSON.stringify(a.limits ?? {}, null, 2);
  $('adapter').hidden = false;

  const rows = report.rows ?? [];
  const body = $('rows');
  for (const r of rows) {
    const tr = document.createElement('tr');
    tr.className = r.pass ? 'pass' : 'fail';
    tr.append(
      cell(r.kernel),
      cell(r.case),
      cell(fmt(r.maxRelErr), 'num'),
      cell(fmt(r.bound), 'num'),
      cell(r.pass ? 'pass' : 'FAIL', 'verdict'),
    );
    body.append(tr);
  }
  $('results').hidden = false;

  const failed = rows.filter((r) => !r.pass).length;
  const status = $('status');
  status.className = report.passed && failed === 0 ? 'pass' : 'fail';
  status.textContent = `${rows.length - failed} passed, ${failed} failed`;
}

function fail(message) {
  const status = $('status');
  status.className = 'fail';
  status.textContent = `Error: ${message}`;
  window.__selftestError = message;
}

try {
  if (!('gpu' in navigator)) {
    throw new Error('WebGPU is not available in this browser (navigator.gpu is missing)');
  }
  const browser = await browserAdapter();
  window.__selftestBrowserAdapter = browser;
  await init();
  const report = await selftest();
  render(report, browser);
  window.__selftest = report;
} catch (e) {
  fail(e instanceof Error ? e.message : String(e));
}
