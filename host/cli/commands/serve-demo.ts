// itera serve-demo: serves the browser demo (device-tests/browser/), the web bundle (dist/web/)
// and the models on 127.0.0.1, with the Content-Security-Policy a WebView app would use. The
// device tiers' tests start the same server (startDemoServer) with their own folders mounted.

import { defaultModelPath } from '../../node/index.js';
import { createServer, type Server } from 'node:http';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { extname, join, normalize, resolve, sep } from 'node:path';
import type { Command } from '../command.js';
import { num, str, UsageError } from '../command.js';
import { packageRoot } from '../../node/index.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.gguf': 'application/octet-stream',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.txt': 'text/plain; charset=utf-8',
};

/** What a WebView app should send too (docs/mobile.md): scripts and workers from this origin only,
 *  WebAssembly allowed by 'wasm-unsafe-eval' (no 'unsafe-eval'). */
export const DEMO_CSP =
  "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self' data:";

export interface DemoServer {
  server: Server;
  url: string;
  close(): Promise<void>;
}

/** Serves URL prefixes from folders (the first match wins); '/' redirects to the demo page. */
export async function startDemoServer(
  opts: { port?: number; host?: string; mounts?: Record<string, string>; model?: string } = {},
): Promise<DemoServer> {
  const root = packageRoot();
  const mounts: [string, string][] = [
    ...Object.entries(opts.mounts ?? {}),
    ['/device-tests/', join(root, 'device-tests')],
    ['/dist/web/', join(root, 'dist', 'web')],
    ['/models/', join(root, 'models')],
  ];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    let path = decodeURIComponent(url.pathname);
    if (path === '/' || path === '/index.html') {
      res.writeHead(302, {
        location: '/device-tests/browser/index.html' + (opts.model ? '?model=' + encodeURIComponent(opts.model) : ''),
      });
      res.end();
      return;
    }
    if (opts.model && path === '/model.gguf') path = '/@model';
    let file: string | null = null;
    if (path === '/@model' && opts.model) file = opts.model;
    for (const [prefix, dir] of mounts) {
      if (file || !path.startsWith(prefix)) continue;
      const f = normalize(join(dir, path.slice(prefix.length)));
      if (f === dir || f.startsWith(resolve(dir) + sep)) file = f;
    }
    if (!file || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`not found: ${path}\n`);
      return;
    }
    res.writeHead(200, {
      'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
      'content-length': String(statSync(file).size),
      'content-security-policy': DEMO_CSP,
      'cache-control': 'no-store',
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    createReadStream(file).pipe(res);
  });
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(opts.port ?? 0, host, () => ok());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    server,
    url: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections?.();
        server.close(() => ok());
      }),
  };
}

export const serveDemo: Command = {
  name: 'serve-demo',
  summary: 'serve the browser demo page and the web bundle on 127.0.0.1',
  help: `Usage: itera serve-demo [--port N] [--model FILE]

Serves the demo page (device-tests/browser/), the web bundle (dist/web/, built by npm run build)
and models/ on http://127.0.0.1:PORT/. Open it in a browser: type a prompt and watch the tokens
stream from a Web Worker, with tokens/s, per-token latency, memory and the device's diagnostics.

Options:
  -p, --port N       port (default 8080; 0 picks a free one)
  -m, --model FILE   a model file to offer as /model.gguf (default: the shipped default, models/student-mix.gguf)
  -h, --help         this help`,
  options: { port: { type: 'string', short: 'p' }, model: { type: 'string', short: 'm' } },
  async run(v, _p, io) {
    const port = num(v, 'port', { int: true, min: 0, max: 65535 }) ?? 8080;
    const model = str(v, 'model');
    if (model !== undefined && !existsSync(model)) throw new UsageError(`--model: no such file '${model}'`);
    if (!existsSync(join(packageRoot(), 'dist', 'web', 'itera.js'))) {
      io.err.write("itera serve-demo: the web bundle is not built (dist/web/itera.js): run 'npm run build'\n");
      return 1;
    }
    const fallback = defaultModelPath();
    const s = await startDemoServer({ port, model: model ? resolve(model) : (fallback ?? undefined) });
    io.out.write(`Itera-Lite demo: ${s.url}/  (Ctrl-C to stop)\n`);
    await new Promise<void>((done) => {
      const stop = (): void => {
        void s.close().then(done);
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    return 0;
  },
};
