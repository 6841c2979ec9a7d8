// The dynamic-inference demo: loads the shipped exported net with the enas4d wasm package,
// classifies gallery images, dropped images or picked files with early exit, and shows each
// exit's confidence, the exit taken, the MACs spent and the time. `window.enas4dDemo` is the
// hook the browser test drives.
import init, { Model } from './pkg/enas4d.js';

const $ = (id) => document.getElementById(id);
// `mode`: which slider decides the exits, the threshold or the budget (the last one moved).
const state = { model: null, info: null, bytes: null, gallery: [], mode: 'threshold' };
// Calls still running per model: a model replaced (backend switch, another file) is freed only
// once its last call has returned, so switching while "Classify all" runs is safe.
const inflight = new Map();
const MODEL_URL = 'models/tiny-s3/net.safetensors';

function setStatus(text) { $('status').textContent = text; }

async function loadModel(bytes, preferGpu) {
  state.bytes = bytes;
  const old = state.model;
  state.model = await Model.load(bytes, preferGpu);
  state.info = state.model.info();
  if (old && !inflight.has(old)) old.free();
  setupBudget();
  const i = state.info;
  setStatus(`model: ${i.stages} stages at ${i.resolution} px, ${i.classes.length} classes; ` +
    `exits cost ${i.cumMacs.map((m) => (m / 1e6).toFixed(2)).join(' / ')} M MACs; backend: ${state.model.backend}`);
}

function imageData(img) {
  const c = document.createElement('canvas');
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const ctx = c.getContext('2d');
  ctx.drawImage(img, 0, 0);
  return ctx.getImageData(0, 0, c.width, c.height);
}

function threshold() { return Number($('tau').value); }

/** The budget slider spans the model's stored operating points (ascending cost). */
function setupBudget() {
  const points = state.info.operatingPoints;
  const slider = $('budget');
  slider.max = String(Math.max(0, points.length - 1));
  slider.value = String(Math.max(0, points.length - 1));
  slider.disabled = points.length === 0;
  showBudget();
}

function budgetPoint() { return state.info.operatingPoints[Number($('budget').value)]; }

function showBudget() {
  const p = budgetPoint();
  $('budget-out').textContent = p
    ? `≤ ${(p.avgMacs / 1e6).toFixed(2)} M MACs (${(p.accuracy * 100).toFixed(1)} % on validation)`
    : 'no operating points in this model';
}

function setMode(mode) {
  state.mode = mode;
  $('tau-label').classList.toggle('inactive', mode !== 'threshold');
  $('budget-label').classList.toggle('inactive', mode !== 'budget');
}

/** The classify options of the active slider. */
function options() {
  const p = budgetPoint();
  return state.mode === 'budget' && p ? { budget: p.avgMacs } : { threshold: threshold() };
}

async function classify(data, opts = options()) {
  const model = state.model;
  inflight.set(model, (inflight.get(model) ?? 0) + 1);
  const t0 = performance.now();
  try {
    const r = await model.classify(data, opts);
    r.ms = performance.now() - t0;
    return r;
  } finally {
    const left = inflight.get(model) - 1;
    if (left > 0) inflight.set(model, left);
    else {
      inflight.delete(model);
      if (model !== state.model) model.free();
    }
  }
}

function show(data, r, truth) {
  const pv = $('preview').getContext('2d');
  const c = document.createElement('canvas');
  c.width = data.width; c.height = data.height;
  c.getContext('2d').putImageData(data, 0, 0);
  pv.imageSmoothingEnabled = false;
  pv.clearRect(0, 0, 112, 112);
  pv.drawImage(c, 0, 0, 112, 112);
  const tau = state.mode === 'threshold' ? threshold() : null;
  // Built from nodes, never from HTML strings: labels come from the model file, which a user
  // may have loaded from anywhere.
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const stages = el('div', 'stages');
  state.info.cumMacs.forEach((m, s) => {
    const e = r.perExit[s];
    const taken = s + 1 === r.exit;
    const text = e ? `${e.label} ${(e.confidence * 100).toFixed(0)}%` : 'not run';
    const bar = el('div', e ? (taken ? 'bar taken' : 'bar') : 'bar skipped');
    bar.title = text;
    const fill = el('i');
    fill.style.width = `${e ? (e.confidence * 100).toFixed(1) : 0}%`;
    bar.append(fill);
    if (tau !== null && s + 1 < state.info.stages) {
      const mark = el('b');
      mark.style.left = `${tau * 100}%`;
      bar.append(mark);
    }
    stages.append(el('span', '', `exit ${s + 1}`), bar, el('span', 'meta', text));
  });
  const verdict = truth === undefined ? '' : (truth === r.label ? ' ✓' : ` ✗ (is ${truth})`);
  $('decision').replaceChildren(
    el('div', 'label', `${r.label}${verdict}`),
    el('div', 'meta', `confidence ${(r.confidence * 100).toFixed(1)}% · exit ${r.exit} of ${state.info.stages} · ` +
      `${(r.macs / 1e6).toFixed(2)} M of ${(r.fullMacs / 1e6).toFixed(2)} M MACs (${(100 * r.macs / r.fullMacs).toFixed(0)}%) · ` +
      `${r.ms.toFixed(1)} ms`),
    stages,
  );
}

async function classifyElement(img, truth) {
  const data = imageData(img);
  const r = await classify(data);
  show(data, r, truth);
  return r;
}

async function loadGallery() {
  const index = await (await fetch('gallery/index.json')).json();
  const box = $('gallery');
  state.gallery = await Promise.all(index.map(async (g) => {
    const img = new Image();
    img.src = `gallery/${g.file}`;
    img.alt = g.label;
    await img.decode();
    const b = document.createElement('button');
    b.append(img);
    const tag = document.createElement('span');
    tag.className = 'exit';
    tag.textContent = g.label;
    b.append(tag);
    b.addEventListener('click', () => classifyElement(img, g.label).catch(report));
    box.append(b);
    return { ...g, img, tag };
  }));
}

async function classifyAll() {
  const out = [];
  const hist = new Array(state.info.stages).fill(0);
  let right = 0;
  for (const g of state.gallery) {
    const r = await classify(imageData(g.img));
    hist[r.exit - 1]++;
    if (r.label === g.label) right++;
    g.tag.textContent = `exit ${r.exit}: ${r.label}`;
    g.tag.classList.toggle('wrong', r.label !== g.label);
    out.push({ file: g.file, label: r.label, classIndex: r.classIndex, confidence: r.confidence, exit: r.exit, macs: r.macs, perExit: r.perExit, ms: r.ms });
  }
  const macs = out.reduce((a, r) => a + r.macs, 0) / Math.max(1, out.length);
  $('summary').textContent = `${right}/${out.length} right · exits ${hist.join(' / ')} · ` +
    `average ${(macs / 1e6).toFixed(2)} M MACs of ${(state.info.cumMacs.at(-1) / 1e6).toFixed(2)} M`;
  return out;
}

function report(e) {
  console.error(e);
  setStatus(`error: ${e.message ?? e}`);
}

async function fromFile(file) {
  const img = new Image();
  img.src = URL.createObjectURL(file);
  await img.decode();
  await classifyElement(img);
  URL.revokeObjectURL(img.src);
}

const ready = (async () => {
  await init();
  const bytes = new Uint8Array(await (await fetch(MODEL_URL)).arrayBuffer());
  await loadModel(bytes, true);
  await loadGallery();
})();
ready.catch(report);

$('tau').addEventListener('input', () => { $('tau-out').textContent = threshold().toFixed(2); setMode('threshold'); });
$('budget').addEventListener('input', () => { showBudget(); setMode('budget'); });
$('all').addEventListener('click', () => classifyAll().catch(report));
$('backend').addEventListener('change', () => loadModel(state.bytes, $('backend').value === 'gpu').catch(report));
$('pick').addEventListener('change', (e) => { const f = e.target.files[0]; if (f) fromFile(f).catch(report); });
$('model-pick').addEventListener('change', async (e) => {
  const f = e.target.files[0];
  if (f) loadModel(new Uint8Array(await f.arrayBuffer()), $('backend').value === 'gpu').catch(report);
});
const drop = $('drop');
drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  const f = e.dataTransfer.files[0];
  if (f) fromFile(f).catch(report);
});

// For the browser test: classify every gallery image on the chosen backend.
window.enas4dDemo = {
  ready,
  async run(preferGpu, tau) {
    await ready;
    $('tau').value = String(tau);
    $('tau-out').textContent = threshold().toFixed(2);
    setMode('threshold');
    $('backend').value = preferGpu ? 'gpu' : 'cpu';
    await loadModel(state.bytes, preferGpu);
    const results = await classifyAll();
    const first = state.gallery[0];
    if (first) await classifyElement(first.img, first.label);
    return { backend: state.model.backend, stages: state.info.stages, results };
  },
  // For the browser test: every operating point of the budget slider classifies the gallery
  // as the thresholds of that point do; the number of disagreements.
  async budgets() {
    await ready;
    let bad = 0;
    for (let i = 0; i < state.info.operatingPoints.length; i++) {
      $('budget').value = String(i);
      $('budget').dispatchEvent(new Event('input'));
      const p = budgetPoint();
      for (const g of state.gallery.slice(0, 8)) {
        const data = imageData(g.img);
        const [a, b] = [await classify(data), await classify(data, { thresholds: p.thresholds })];
        if (a.exit !== b.exit || a.label !== b.label) bad++;
      }
    }
    setMode('threshold');
    return { points: state.info.operatingPoints.length, bad };
  },
  // For the browser test: switch the backend while "Classify all" runs.
  async switchDuringAll(preferGpu) {
    await ready;
    const all = classifyAll();
    await new Promise((r) => setTimeout(r, 20));
    $('backend').value = preferGpu ? 'gpu' : 'cpu';
    await loadModel(state.bytes, preferGpu);
    const results = await all;
    return { backend: state.model.backend, count: results.length };
  },
  // For the browser test: the gallery again, as overlapping calls (Promise.all).
  async parallel() {
    await ready;
    const opts = { threshold: threshold() };
    const rs = await Promise.all(state.gallery.map((g) => classify(imageData(g.img), opts)));
    return rs.map((r, i) => ({ file: state.gallery[i].file, label: r.label, exit: r.exit }));
  },
};
