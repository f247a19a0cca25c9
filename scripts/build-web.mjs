#!/usr/bin/env node
// Builds the browser / WebView bundle from host/web (esbuild, one ES module each):
//   dist/web/itera.js          the runtime; fetches itera.wasm / itera-scalar.wasm (and, for
//                              build: 'relaxed', itera-relaxed.wasm) beside itself
//   dist/web/itera.inline.js   the same with the three module builds inlined as base64 (one file, for
//                              apps that load from local assets)
//   dist/web/itera.module.js  the build for bundlers (`itera-lite/web`): the page side; it starts
//                              worker.js with a literal new Worker(new URL('./worker.js',
//                              import.meta.url), { type: 'module' }); code both use is in one
//                              shared chunk (itera-HASH.js), so nothing ships twice
//   dist/web/itera.wasm, itera-scalar.wasm, itera-relaxed.wasm, sizes.json (bytes and gzipped bytes of each)
// In itera.js and itera.inline.js the page creates its worker from the bundle's own URL, so each
// of those variants is one JS file.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'web');
mkdirSync(out, { recursive: true });
// the shared chunks of earlier builds (their names carry a hash)
for (const f of readdirSync(out)) if (/^itera-[A-Z0-9]+\.js$/.test(f)) rmSync(join(out, f));
const wasm = {
  simd: join(root, 'build', 'itera.wasm'),
  scalar: join(root, 'build', 'itera-scalar.wasm'),
  relaxed: join(root, 'build', 'itera-relaxed.wasm'),
};
for (const p of Object.values(wasm)) {
  if (!existsSync(p)) {
    console.error(`build-web: ${p} is missing: run 'npm run build:wasm' first`);
    process.exit(1);
  }
}

const common = {
  entryPoints: [join(root, 'host', 'web', 'index.ts')],
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2020', 'chrome80', 'safari15'],
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
};

// the inlined variant: wasm-source.ts replaced by base64 strings of both builds
const inline = {
  name: 'inline-wasm',
  setup(b) {
    b.onResolve({ filter: /\/wasm-source\.js$/ }, (args) => ({ path: args.path, namespace: 'itera-inline-wasm' }));
    b.onLoad({ filter: /.*/, namespace: 'itera-inline-wasm' }, () => ({
      loader: 'js',
      contents: `
const B64 = { simd: ${JSON.stringify(readFileSync(wasm.simd).toString('base64'))}, scalar: ${JSON.stringify(readFileSync(wasm.scalar).toString('base64'))}, relaxed: ${JSON.stringify(readFileSync(wasm.relaxed).toString('base64'))} };
export const INLINED = true;
export function wasmUrl(build) { return 'inline:' + build; }
function decode(s) {
  const bin = atob(s);
  const b = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) b[i] = bin.charCodeAt(i);
  return b;
}
export async function wasmBytes(build, override) {
  if (override instanceof ArrayBuffer) return new Uint8Array(override);
  if (typeof override === 'string') { const r = await fetch(override); return new Uint8Array(await r.arrayBuffer()); }
  return decode(B64[build]);
}`,
    }));
  },
};

// the build for bundlers: worker-source.ts replaced by the literal worker expression
const moduleWorker = {
  name: 'module-worker',
  setup(b) {
    b.onResolve({ filter: /\/worker-source\.js$/ }, (args) => ({ path: args.path, namespace: 'itera-module-worker' }));
    b.onLoad({ filter: /.*/, namespace: 'itera-module-worker' }, () => ({
      loader: 'js',
      contents: `export function startWorker() {
  return new Worker(new URL('./worker.js', import.meta.url), { type: 'module', name: 'itera' });
}`,
    }));
  },
};

await build({ ...common, outfile: join(out, 'itera.js') });
await build({
  ...common,
  entryPoints: {
    'itera.module': join(root, 'host', 'web', 'module.ts'),
    worker: join(root, 'host', 'web', 'worker-main.ts'),
  },
  outdir: out,
  splitting: true,
  chunkNames: 'itera-[hash]',
  plugins: [moduleWorker],
});
await build({ ...common, outfile: join(out, 'itera.inline.js'), plugins: [inline] });
copyFileSync(wasm.simd, join(out, 'itera.wasm'));
copyFileSync(wasm.scalar, join(out, 'itera-scalar.wasm'));
copyFileSync(wasm.relaxed, join(out, 'itera-relaxed.wasm'));

const size = (f) => {
  const b = readFileSync(join(out, f));
  return { bytes: b.length, gzip: gzipSync(b, { level: 9 }).length };
};
const sizes = {
  'itera.js': size('itera.js'),
  'itera.wasm': size('itera.wasm'),
  'itera-scalar.wasm': size('itera-scalar.wasm'),
  'itera-relaxed.wasm': size('itera-relaxed.wasm'),
  'itera.inline.js': size('itera.inline.js'),
};
sizes.total_js_plus_simd_wasm = {
  bytes: sizes['itera.js'].bytes + sizes['itera.wasm'].bytes,
  gzip: sizes['itera.js'].gzip + sizes['itera.wasm'].gzip,
};
writeFileSync(join(out, 'sizes.json'), JSON.stringify(sizes, null, 2) + '\n');
const kib = (n) => (n / 1024).toFixed(1) + ' KiB';
for (const [k, v] of Object.entries(sizes))
  console.log(`build-web: ${k.padEnd(24)} ${kib(v.bytes).padStart(10)}  gzip ${kib(v.gzip).padStart(9)}`);
