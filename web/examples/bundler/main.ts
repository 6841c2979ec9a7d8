// The npm package in a bundled app: load an exported net, classify an <img> on the page
// (with and without options, and as a batch), then an ImageBitmap and an OffscreenCanvas in a
// Web Worker. `?t=0.5` sets the threshold. Results go to the page and to `window.__result`.
import { Model, type ClassifyResult, type ModelInfo } from 'enas4d';

const threshold = Number(new URLSearchParams(location.search).get('t') ?? '0.5');
const out = document.querySelector<HTMLPreElement>('#out')!;

/** Classifies `bitmap` in a worker of its own: the worker's two results. */
function inWorker(bitmap: ImageBitmap): Promise<ClassifyResult[]> {
  const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' });
  return new Promise((resolve, reject) => {
    worker.onmessage = (e: MessageEvent<{ results?: ClassifyResult[]; error?: string }>) =>
      e.data.error ? reject(new Error(e.data.error)) : resolve(e.data.results ?? []);
    worker.onerror = (e) => reject(new Error(e.message));
    worker.postMessage({ bitmap, threshold }, [bitmap]);
  });
}

async function run(): Promise<void> {
  const bytes = await (await fetch('/net.safetensors')).arrayBuffer();
  const model = await Model.load(bytes, false); // an ArrayBuffer; the CPU path
  const info: ModelInfo = model.info();
  const img = document.querySelector<HTMLImageElement>('#image')!;
  await img.decode();
  const main = await model.classify(img, { threshold });
  const plain = await model.classify(img);
  const batch = await model.classifyBatch([img, img], { threshold });
  const worker = await inWorker(await createImageBitmap(img));
  const cheapest = info.operatingPoints[0]?.avgMacs;
  out.textContent = `${main.label} (${(main.confidence * 100).toFixed(1)} %, exit ${main.exit} of ${info.stages}, ` +
    `${main.macs} of ${main.fullMacs} MACs); in the worker: ${worker.map((r) => r.label).join(', ')}`;
  (window as unknown as { __result: unknown }).__result = { main, plain, batch, worker, stages: info.stages, cheapest };
}

run().catch((e: unknown) => {
  out.textContent = `error: ${String(e)}`;
  (window as unknown as { __error: string }).__error = String(e);
});
