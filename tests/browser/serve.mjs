// A tiny dependency-free static file server for the browser tests.
//
//   serve({ root, pkg, models, extra }) -> Promise<{ url, close }>
//
// Serves `root` (the repository's web/ folder) at `/`, `pkg` (the
// wasm-bindgen output folder) at `/pkg/` and `models` (the repository's
// models/ folder) at `/models/`, and each `[prefix, dir]` of `extra` at its prefix, bound to
// 127.0.0.1 on an ephemeral port.
// Run directly to browse by hand (the demo is at /index.html):
//
//   node tests/browser/serve.mjs [pkg-dir] [port]
import http from 'node:http';
import os from 'node:os';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm',
  '.json': 'application/json; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.safetensors': 'application/octet-stream',
  '.onnx': 'application/octet-stream',
  '.f32': 'application/octet-stream',
  '.ts': 'text/plain; charset=utf-8',
};

// Resolve a URL path inside `base`; null if it escapes it.
function within(base, rel) {
  const full = path.resolve(base, '.' + path.posix.normalize('/' + rel));
  return full === base || full.startsWith(base + path.sep) ? full : null;
}

export async function serve({ root, pkg, models, extra = [], port = 0, host = '127.0.0.1' }) {
  const rootDir = path.resolve(root);
  const mounts = [['/pkg', pkg], ['/models', models], ...extra]
    .filter(([, dir]) => dir)
    .map(([prefix, dir]) => [prefix, path.resolve(dir)]);

  const server = http.createServer(async (req, res) => {
    const send = (code, body, type = 'text/plain; charset=utf-8') => {
      res.writeHead(code, { 'Content-Type': type, 'Cache-Control': 'no-store' });
      res.end(body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'method not allowed\n');
    let pathname;
    try {
      pathname = decodeURIComponent(new URL(req.url, 'http://localhost').pathname);
    } catch {
      return send(400, 'bad request\n');
    }
    const mount = mounts.find(([prefix]) => pathname === prefix || pathname.startsWith(prefix + '/'));
    const file = mount ? within(mount[1], pathname.slice(mount[0].length)) : within(rootDir, pathname);
    if (!file) return send(403, 'forbidden\n');
    try {
      let target = file;
      if ((await fs.stat(target)).isDirectory()) target = path.join(target, 'index.html');
      const body = await fs.readFile(target);
      const type = MIME[path.extname(target).toLowerCase()] ?? 'application/octet-stream';
      res.writeHead(200, {
        'Content-Type': type,
        'Content-Length': body.length,
        'Cache-Control': 'no-store',
      });
      res.end(req.method === 'HEAD' ? undefined : body);
    } catch {
      send(404, `not found: ${pathname}\n`);
    }
  });

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const addr = server.address();
  const url = `http://${host}:${addr.port}`;
  const close = () =>
    new Promise((resolve) => {
      server.closeAllConnections?.();
      server.close(() => resolve());
    });
  return { url, close };
}

// Stand-alone use: node serve.mjs [pkg-dir] [port]  (pkg-dir default: the npm package build)
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const repo = path.resolve(here, '..', '..');
  const targetDir = process.env.CARGO_TARGET_DIR || path.join(os.homedir(), '.cache', 'enas4d', 'target');
  const pkg = process.argv[2] ?? process.env.ENAS4D_PKG_DIR ?? path.join(targetDir, 'web', 'npm');
  const port = Number(process.argv[3] ?? 8080);
  const { url } = await serve({ root: path.join(repo, 'web'), pkg, models: path.join(repo, 'models'), port });
  console.log(`demo at ${url}/ and selftest at ${url}/selftest.html, wasm from ${pkg} (Ctrl-C to stop)`);
}
