#!/usr/bin/env node
// Runs the standalone WASI module (build/itera-wasi.wasm) in one of the WASI runtimes that install
// from npm, as a device would run it with wasmtime or wasmer:
//
//   node scripts/engines/wasi-run.mjs node|wasmer [--wasm FILE] -- ARGS...
//
// node:   Node's built-in node:wasi, the current folder preopened as '.', '/' as '/'.
// wasmer: @wasmer/wasi (a dev dependency), whose files live in memory: every existing file named
//         in ARGS is copied in at the same path, and a file the module writes is copied back out.
// stdout, stderr and the exit code are the module's own.
import { readFileSync, writeFileSync, existsSync, statSync } from 'node:fs';
import { resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const argv = process.argv.slice(2);
const engine = argv.shift();
let wasmPath = resolve(root, 'build', 'itera-wasi.wasm');
if (argv[0] === '--wasm') {
  argv.shift();
  wasmPath = resolve(argv.shift());
}
if (argv[0] === '--') argv.shift();
if (engine !== 'node' && engine !== 'wasmer') {
  process.stderr.write('usage: wasi-run.mjs node|wasmer [--wasm FILE] -- ARGS...\n');
  process.exit(2);
}
if (!existsSync(wasmPath)) {
  process.stderr.write(`wasi-run: ${wasmPath} is missing: run 'npm run build:wasm'\n`);
  process.exit(2);
}
const module = new WebAssembly.Module(readFileSync(wasmPath));
const args = ['itera-wasi', ...argv];

if (engine === 'node') {
  const { WASI } = await import('node:wasi');
  const wasi = new WASI({
    version: 'preview1',
    args,
    env: {},
    preopens: { '.': process.cwd(), '/': '/' },
    returnOnExit: true,
  });
  const instance = new WebAssembly.Instance(module, wasi.getImportObject());
  process.exitCode = wasi.start(instance);
} else {
  const { init, WASI, MemFS } = await import('@wasmer/wasi');
  await init();
  // the in-memory file system: each existing file the arguments name, at its absolute path and,
  // for a relative path, under /work (the '.' preopen); a --logits file is copied back out after
  const fs = new MemFS();
  const mkdirs = (dir) => {
    let p = '';
    for (const part of dir.split('/').filter(Boolean)) {
      p += '/' + part;
      try {
        fs.createDir(p);
      } catch {
        /* exists */
      }
    }
  };
  const put = (path, bytes) => {
    mkdirs(dirname(path));
    const f = fs.open(path, { read: true, write: true, create: true });
    f.write(bytes);
    f.flush();
  };
  mkdirs('/work');
  const outputs = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith('-')) continue;
    const abs = resolve(a);
    const inside = a === abs ? abs : resolve('/work', a);
    if (i > 0 && argv[i - 1] === '--logits') {
      outputs.push([inside, abs]);
      mkdirs(dirname(inside));
    } else if (existsSync(abs) && statSync(abs).isFile()) {
      const bytes = readFileSync(abs);
      put(abs, bytes);
      if (inside !== abs) put(inside, bytes);
    }
  }
  const wasi = new WASI({ args, env: {}, fs, preopens: { '.': '/work', '/': '/' } });
  const instance = wasi.instantiate(module, {});
  let code;
  try {
    code = wasi.start(instance);
  } catch (e) {
    process.stdout.write(wasi.getStdoutBuffer());
    process.stderr.write(wasi.getStderrBuffer());
    process.stderr.write(`wasi-run: the module trapped: ${e?.message ?? e}\n`);
    process.exit(134);
  }
  process.stdout.write(wasi.getStdoutBuffer());
  process.stderr.write(wasi.getStderrBuffer());
  for (const [inside, outside] of outputs) {
    try {
      writeFileSync(outside, fs.open(inside, { read: true }).read());
    } catch {
      /* the module did not write it */
    }
  }
  process.exitCode = code;
}
