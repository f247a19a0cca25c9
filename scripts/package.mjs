#!/usr/bin/env node
// npm run package: the `itera` command as files to copy onto a machine with no npm.
//
//   node scripts/package.mjs [--only x64,arm64,tarball] [--no-sizes] [--help]
//     --no-sizes   skip measuring the compressed sizes (xz of 130 MB takes a minute)
//
//   dist/pkg/itera-linux-x64     Node single executable applications (Node's SEA: the pinned
//   dist/pkg/itera-linux-arm64   node-linux-* binary from npm with a blob injected by postject)
//   dist/pkg/itera-lite-VERSION.tar.gz   the same bundle for a system Node (>= 18): bin/itera,
//                                lib/itera.mjs, lib/worker.js, build/*.wasm, models/ ('itera service
//                                install' works from it too)
//   dist/pkg/sizes.json          bytes of each, raw, gzip -9 and xz -6
//
// One esbuild bundle of dist/host/cli holds the JavaScript (run 'npm run build' first), a second
// one the worker threads of `itera serve --workers N`. The executables carry the worker bundle,
// every WebAssembly build, the default model and package.json as SEA assets;
// on first run they are written once to a cache folder named by their content hash
// ($ITERA_CACHE_DIR, else systemd's $CACHE_DIRECTORY, else ~/.cache/itera, else the temporary
// folder), since the runtime reads its builds and models from files. The Node binaries are cached
// outside git in $ITERA_SEA_CACHE (default ~/.cache/itera-sea). The blob is made by the x64 Node
// of the pinned version (the same version as the one it goes into; no code cache and no snapshot,
// so one blob fits both architectures).
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

export const NODE_VERSION = '24.22.3';
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'pkg');
const cache = process.env.ITERA_SEA_CACHE ?? join(homedir(), '.cache', 'itera-sea');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
// what the executables and the tarball carry besides the JavaScript
const ASSETS = [
  'build/itera.wasm',
  'build/itera-scalar.wasm',
  'build/itera-relaxed.wasm',
  'build/itera-wasi.wasm',
  'models/student-mix.gguf',
];
// optional peers of `itera bench` and `itera diag` (and `itera report`'s PNG renderer, 7 MB of
// JavaScript that every start would parse): native or npm-only, so not in the bundle;
// the code that imports them already copes with their absence
const ABSENT = ['onnxruntime-node', 'onnxruntime-web', 'systeminformation', 'playwright-core'];

function die(msg) {
  console.error(`package: ${msg}`);
  process.exit(1);
}
function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', ...opts });
  if (r.error) die(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) die(`${cmd} ${args.join(' ')} failed (exit ${r.status}):\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** The pinned Node binary for linux-ARCH, from npm's node-linux-ARCH package, cached. */
export function nodeBinary(arch) {
  const dir = join(cache, `node-linux-${arch}-${NODE_VERSION}`);
  const bin = join(dir, 'bin', 'node');
  if (existsSync(bin)) return bin;
  mkdirSync(cache, { recursive: true });
  const tmp = mkdtempSync(join(cache, 'fetch-'));
  console.error(`package: fetching node-linux-${arch}@${NODE_VERSION} from npm`);
  const file = sh('npm', ['pack', '--silent', `node-linux-${arch}@${NODE_VERSION}`], { cwd: tmp }).trim();
  mkdirSync(join(tmp, 'x'));
  sh('tar', ['-xzf', join(tmp, file), '-C', join(tmp, 'x'), '--strip-components=1']);
  if (!existsSync(join(tmp, 'x', 'bin', 'node'))) die(`no bin/node in node-linux-${arch}@${NODE_VERSION}`);
  rmSync(dir, { recursive: true, force: true });
  renameSync(join(tmp, 'x'), dir);
  rmSync(tmp, { recursive: true, force: true });
  return bin;
}

const absentPlugin = {
  name: 'absent',
  setup(b) {
    const filter = new RegExp(`^(${ABSENT.join('|')})$`);
    b.onResolve({ filter }, (a) => ({ path: a.path, namespace: 'absent' }));
    b.onLoad({ filter: /.*/, namespace: 'absent' }, (a) => ({
      contents: `throw new Error(${JSON.stringify(
        `${a.path} is not in this packaged itera (install itera-lite from npm for it)`,
      )});`,
      loader: 'js',
    }));
  },
};

// Run first in the executable: writes the assets once to a folder named by their hash and points
// import.meta.url (which a CommonJS bundle lacks) into it, so that packageRoot() finds them.
const seaBanner = (id) => `
var __itera_url = (function () {
  var fs = require('node:fs'), path = require('node:path'), os = require('node:os');
  var sea = require('node:sea'), url = require('node:url');
  var names = sea.getAssetKeys ? sea.getAssetKeys() : ${JSON.stringify(['package.json', 'lib/worker.js', ...ASSETS])};
  var bases = [process.env.ITERA_CACHE_DIR, (process.env.CACHE_DIRECTORY || '').split(':')[0],
    process.env.XDG_CACHE_HOME && path.join(process.env.XDG_CACHE_HOME, 'itera'),
    os.homedir() && path.join(os.homedir(), '.cache', 'itera'),
    path.join(os.tmpdir(), 'itera-' + (process.getuid ? process.getuid() : 'user'))];
  var errors = [];
  for (var i = 0; i < bases.length; i++) {
    if (!bases[i]) continue;
    var dir = path.join(bases[i], ${JSON.stringify(id)});
    if (fs.existsSync(path.join(dir, '.complete'))) return url.pathToFileURL(path.join(dir, 'lib', 'itera.cjs')).href;
    var part = dir + '.part-' + process.pid;
    try {
      fs.rmSync(part, { recursive: true, force: true });
      for (var j = 0; j < names.length; j++) {
        var f = path.join(part, names[j]);
        fs.mkdirSync(path.dirname(f), { recursive: true, mode: 0o755 });
        fs.writeFileSync(f, new Uint8Array(sea.getRawAsset(names[j])), { mode: 0o644 });
      }
      fs.writeFileSync(path.join(part, '.complete'), '');
      try { fs.renameSync(part, dir); } catch (e) {
        fs.rmSync(part, { recursive: true, force: true });
        if (!fs.existsSync(path.join(dir, '.complete'))) throw e;
      }
      return url.pathToFileURL(path.join(dir, 'lib', 'itera.cjs')).href;
    } catch (e) {
      try { fs.rmSync(part, { recursive: true, force: true }); } catch (e2) {}
      errors.push(bases[i] + ': ' + e.message);
    }
  }
  process.stderr.write('itera: cannot unpack the WebAssembly builds and the model anywhere (' + errors.join('; ') +
    '): set ITERA_CACHE_DIR to a writable folder\\n');
  process.exit(1);
})();
`;

const entry = `import { main } from ${JSON.stringify(join(root, 'dist', 'host', 'cli', 'itera.js'))};
main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (e) => { process.stderr.write('itera: ' + (e && e.stack ? e.stack : String(e)) + '\\n'); process.exitCode = 1; },
);
`;

// The worker threads of `itera serve --workers N`: their own ES module bundle, lib/worker.js beside
// the CLI's (host/server/pool.ts starts new URL('./worker.js', import.meta.url)); it finds the
// builds and the model from its own import.meta.url, as the CLI does.
const workerEntry = `import ${JSON.stringify(join(root, 'dist', 'host', 'server', 'worker.js'))};\n`;

async function bundle(format, outfile, banner, define, contents = entry) {
  const r = await build({
    stdin: { contents, resolveDir: root, sourcefile: 'itera-entry.mjs', loader: 'js' },
    bundle: true,
    platform: 'node',
    format,
    target: 'node18',
    outfile,
    banner: { js: banner },
    define,
    plugins: [absentPlugin],
    legalComments: 'none',
    logLevel: 'warning',
    metafile: true,
  });
  return r;
}

function sizes(file) {
  const bytes = readFileSync(file);
  const xz = spawnSync('xz', ['-6', '-T1', '-c'], { input: bytes, maxBuffer: 1 << 30 });
  return {
    raw: bytes.length,
    gzip: gzipSync(bytes, { level: 9 }).length,
    xz: xz.status === 0 ? xz.stdout.length : null,
  };
}

function mb(n) {
  return n === null ? '-' : `${(n / 1e6).toFixed(1)} MB`;
}

async function executable(arch, cjs, worker) {
  const work = mkdtempSync(join(tmpdir(), 'itera-sea-'));
  try {
    const assets = { 'package.json': join(work, 'package.json') };
    // "type": "module": lib/worker.js, the one script read from the cache folder, is an ES module
    writeFileSync(
      assets['package.json'],
      JSON.stringify({ name: pkg.name, version: pkg.version, type: 'module' }) + '\n',
    );
    assets['lib/worker.js'] = worker;
    for (const a of ASSETS) assets[a] = join(root, a);
    const config = {
      main: cjs,
      output: join(work, 'sea.blob'),
      disableExperimentalSEAWarning: true,
      useSnapshot: false,
      useCodeCache: false,
      assets,
    };
    writeFileSync(join(work, 'sea.json'), JSON.stringify(config));
    // the blob comes from the pinned Node that runs here (the same version as the target's)
    const hostArch = process.arch === 'arm64' ? 'arm64' : 'x64';
    sh(nodeBinary(hostArch), ['--experimental-sea-config', join(work, 'sea.json')], { cwd: work });
    const target = join(out, `itera-linux-${arch}`);
    const tmp = `${target}.tmp`;
    copyFileSync(nodeBinary(arch), tmp);
    chmodSync(tmp, 0o755);
    const postject = join(root, 'node_modules', 'postject', 'dist', 'cli.js');
    if (!existsSync(postject)) die("postject is missing: run 'npm ci'");
    sh(process.execPath, [
      postject,
      tmp,
      'NODE_SEA_BLOB',
      config.output,
      '--sentinel-fuse',
      'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2',
    ]);
    renameSync(tmp, target);
    return target;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function tarball(esm, worker) {
  const name = `itera-lite-${pkg.version}`;
  const work = mkdtempSync(join(tmpdir(), 'itera-tar-'));
  try {
    const top = join(work, name);
    mkdirSync(join(top, 'lib'), { recursive: true });
    mkdirSync(join(top, 'bin'));
    copyFileSync(esm, join(top, 'lib', 'itera.mjs'));
    copyFileSync(worker, join(top, 'lib', 'worker.js'));
    writeFileSync(
      join(top, 'package.json'),
      JSON.stringify({ name: pkg.name, version: pkg.version, type: 'module', engines: pkg.engines }, null, 2) + '\n',
    );
    for (const a of ASSETS) {
      mkdirSync(dirname(join(top, a)), { recursive: true });
      copyFileSync(join(root, a), join(top, a));
    }
    writeFileSync(
      join(top, 'bin', 'itera'),
      '#!/bin/sh\n# itera on the system Node (>= 18): this folder holds everything else\n' +
        'here="$(dirname "$(readlink -f "$0")")"\nexec node "$here/../lib/itera.mjs" "$@"\n',
      { mode: 0o755 },
    );
    const file = join(out, `${name}.tar.gz`);
    sh('tar', ['-czf', `${file}.tmp`, '--owner=0', '--group=0', '-C', work, name]);
    renameSync(`${file}.tmp`, file);
    return file;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

async function mainCli(argv) {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(
      readFileSync(fileURLToPath(import.meta.url), 'utf8')
        .split('\n')
        .slice(1, 21)
        .map((l) => l.replace(/^\/\/ ?/, ''))
        .join('\n') + '\n',
    );
    return;
  }
  const measure = !argv.includes('--no-sizes');
  argv = argv.filter((a) => a !== '--no-sizes');
  let only = ['x64', 'arm64', 'tarball'];
  const i = argv.indexOf('--only');
  if (i >= 0) {
    only = (argv[i + 1] ?? '').split(',').filter(Boolean);
    for (const o of only)
      if (!['x64', 'arm64', 'tarball'].includes(o)) die(`--only takes x64, arm64, tarball; got '${o}'`);
  }
  for (const a of argv) if (a.startsWith('-') && a !== '--only') die(`unknown option '${a}' (see --help)`);
  if (process.platform !== 'linux' || !['x64', 'arm64'].includes(process.arch))
    die(
      `builds on linux-x64 or linux-arm64 (the blob needs the pinned Node to run here), not ${process.platform}-${process.arch}`,
    );
  for (const f of ['dist/host/cli/itera.js', ...ASSETS])
    if (!existsSync(join(root, f))) die(`${f} is missing: run 'npm run build' first`);
  mkdirSync(out, { recursive: true });
  const work = mkdtempSync(join(tmpdir(), 'itera-bundle-'));
  const report = {};
  try {
    const hash = createHash('sha256');
    for (const a of ASSETS) hash.update(readFileSync(join(root, a)));
    const esm = join(work, 'itera.mjs');
    await bundle('esm', esm, '', undefined);
    const worker = join(work, 'worker.js');
    await bundle('esm', worker, '', undefined, workerEntry);
    const cjs = join(work, 'itera.cjs');
    hash.update(readFileSync(esm));
    hash.update(readFileSync(worker));
    const id = `${pkg.version}-${hash.digest('hex').slice(0, 12)}`;
    await bundle('cjs', cjs, seaBanner(id), { 'import.meta.url': '__itera_url' });
    report.bundle = { raw: statSync(esm).size };
    for (const arch of ['x64', 'arm64']) {
      if (!only.includes(arch)) continue;
      const f = await executable(arch, cjs, worker);
      report[`itera-linux-${arch}`] = measure ? sizes(f) : { raw: statSync(f).size };
    }
    if (only.includes('tarball'))
      report[`itera-lite-${pkg.version}.tar.gz`] = { raw: statSync(tarball(esm, worker)).size };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const prev = existsSync(join(out, 'sizes.json')) ? JSON.parse(readFileSync(join(out, 'sizes.json'), 'utf8')) : {};
  writeFileSync(join(out, 'sizes.json'), JSON.stringify({ ...prev, ...report, node: NODE_VERSION }, null, 2) + '\n');
  for (const [k, v] of Object.entries(report))
    console.log(`${k.padEnd(28)} ${mb(v.raw).padStart(9)}${v.gzip ? `  gzip ${mb(v.gzip)}  xz ${mb(v.xz)}` : ''}`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url))
  await mainCli(process.argv.slice(2));
