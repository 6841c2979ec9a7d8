// A Web Worker that classifies with the npm package: no `document` here, so the images come as
// an ImageBitmap (posted by the page) and an OffscreenCanvas drawn from it.
import { Model } from 'enas4d';

let model: Promise<Model> | undefined;

self.onmessage = async (e: MessageEvent<{ bitmap: ImageBitmap; threshold: number }>) => {
  try {
    model ??= fetch('/net.safetensors')
      .then((r) => r.arrayBuffer())
      .then((b) => Model.load(new Uint8Array(b), false));
    const m = await model;
    const { bitmap, threshold } = e.data;
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    canvas.getContext('2d')!.drawImage(bitmap, 0, 0);
    const results = [await m.classify(bitmap, { threshold }), await m.classify(canvas, { threshold })];
    self.postMessage({ results });
  } catch (err) {
    self.postMessage({ error: String(err) });
  }
};
