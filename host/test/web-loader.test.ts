// The web loader that survives phones (docs/mobile.md), in real engines: Chromium (Android
// WebView's engine, playwright-core) and WebKit (iOS WKWebView's, MiniBrowser through
// WebKitWebDriver). device-tests/browser/loader.html runs the build for bundlers with no bundler;
// each step is one call into its page. Checked: a second load comes from persistent storage (its
// progress says 'cache'), a tampered stored copy is refused and fetched again, a wrong hash on the
// network copy is an error, the memory budget refuses a model before its memory is taken (and
// admits one that fits), an abort ends a load or a generation and leaves the worker working, and
// (Chromium) a storage quota too small is a warning while the model still runs. The ids generated
// are Node's for the same model. Also, in Node: the budget's figure against the module's memory,
// and a download of unknown length stopped at the budget.
import t, { type Test } from 'tap';
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { repoRoot } from './shared.js';
import { engineOption } from './tier-common.js';
import { missingWebKit, startWebKit } from './webkit-driver.js';
import { startDemoServer } from '../cli/commands/serve-demo.js';
import { IteraModel } from '../runtime/api.js';
import { memoryNeed, roughLoadBytes } from '../web/budget.js';
import { fetchModel } from '../web/store.js';

const CHROMIUM = process.env.ITERA_CHROMIUM ?? '/usr/bin/chromium';
const missingChromium = existsSync(CHROMIUM) ? null : `Chromium is not installed (${CHROMIUM})`;
const root = repoRoot();
const wasmPath = join(root, 'build', 'itera.wasm');
const MODEL = join(root, 'models', 'student-q8_0.gguf');
const PROMPT = 'Once upon a time';

/** The bytes of the module's memory written so far: 64 KiB pages holding a byte that is not 0
 *  (the allocator's 16-byte marker at the very end of memory left out). */
function touchedBytes(mem: Uint8Array): number {
  let pages = 0;
  for (let p = 0; p < mem.length; p += 65536) {
    const end = Math.min(p + 65536, mem.length) - (p + 65536 >= mem.length ? 16 : 0);
    if (mem.subarray(p, end).some((b) => b !== 0)) pages++;
  }
  return pages * 65536;
}

t.test('memory budget: the figure from the header against the module memory written (Node)', async (t) => {
  const wasm = readFileSync(wasmPath);
  const models = ['student-q8_0', 'student-q4_0', 'student-f32', 'teacher-q8_0', 'teacher-q4_0', 'teacher-f32'];
  for (const name of models) {
    const bytes = readFileSync(join(root, 'models', `${name}.gguf`));
    const need = memoryNeed(bytes);
    const m = await IteraModel.fromBytes(bytes, wasm);
    // a generation past T (the exact window recomputes) and a prompt's logits: the most a load and
    // a request of the web bundle touch
    m.generate(PROMPT, { maxTokens: m.config.maxSeqLength + 8, stopAtEos: false });
    const touched = touchedBytes(new Uint8Array(m.ex.memory.buffer));
    const moduleNeed = need.weightBytes + need.bufferBytes;
    t.ok(
      moduleNeed >= touched && moduleNeed <= touched * 1.1 + 512 * 1024,
      `${name}: module memory estimated ${moduleNeed}, written ${touched} (an upper bound within 10% + 512 KiB)`,
    );
    t.ok(
      roughLoadBytes(bytes.length) <= need.total,
      `${name}: the check before the download (${roughLoadBytes(bytes.length)}) never refuses what the exact one (${need.total}) admits`,
    );
    m.dispose();
  }
});

t.test('loader in Node: a body of unknown length, and no Cache API', async (t) => {
  const bytes = readFileSync(MODEL);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  // chunked: no Content-Length, so the size is known only as the bytes come
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    for (let i = 0; i < bytes.length; i += 65536) res.write(bytes.subarray(i, i + 65536));
    res.end();
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  t.teardown(() => new Promise<void>((ok) => server.close(() => ok())));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/model.gguf`;
  const progress: (number | null)[] = [];
  const warnings: string[] = [];
  const o = {
    sha256,
    cache: true,
    onProgress: (_loaded: number, total: number | null) => progress.push(total),
    onWarning: (w: { code: string }) => warnings.push(w.code),
  };
  await t.rejects(
    fetchModel(url, { ...o, memoryBudget: bytes.length }),
    { code: 'MEMORY_BUDGET', message: /a file of more than \d+ bytes/ },
    'over the budget: stopped while the bytes came',
  );
  t.ok(
    progress.length < Math.ceil(bytes.length / 65536) + 1,
    `it stopped before the end (${progress.length} progress reports)`,
  );
  t.ok(
    progress.every((p) => p === null),
    'the total is reported as unknown',
  );
  warnings.length = 0;
  const got = await fetchModel(url, o);
  t.equal(got.bytes.length, bytes.length, 'without a budget: all the bytes');
  t.equal(got.sha256, sha256, 'and their hash');
  t.same(warnings, ['STORAGE_UNAVAILABLE'], 'no Cache API here (Node): a warning, not an error');
  t.equal(got.stored, false, 'not stored');
});

interface LoadResult {
  info?: { source: string; stored: boolean; sha256: string | null; fileBytes: number; warnings: { code: string }[] };
  progress: { loaded: number; total: number | null; source: string }[];
  warnings: { code: string; message: string }[];
  error?: { code: string; name?: string; message: string };
}
interface StepResult {
  ids?: number[];
  tokens?: number;
  endMs?: number;
  restarts?: number;
  cached?: boolean;
  finished?: boolean;
  error?: { code: string; name?: string; message: string };
}
type Step = (name: string, args?: object) => Promise<unknown>;

/** The steps both engines run; quota is the engine's own way to make storage short, if any. */
async function scenario(
  t: Test,
  step: Step,
  label: string,
  quota: ((bytes: number | null) => Promise<void>) | null,
): Promise<void> {
  const bytes = readFileSync(MODEL);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const ref = (await IteraModel.fromBytes(bytes, readFileSync(wasmPath))).generate(PROMPT, { maxTokens: 24 }).ids;
  const url = '/loader/model.gguf';
  const load = (args: object = {}): Promise<LoadResult> =>
    step('load', { url, sha256, ...args }) as Promise<LoadResult>;
  const generate = (): Promise<StepResult> =>
    step('generate', { prompt: PROMPT, options: { maxTokens: 24 } }) as Promise<StepResult>;
  const sources = (r: LoadResult): string => [...new Set(r.progress.map((p) => p.source))].join(',');
  const last = (r: LoadResult): { loaded: number; total: number | null } | undefined => r.progress.at(-1);

  await step('clear');

  await t.test(`${label}: the first load downloads and stores; the second comes from storage`, async (t) => {
    const a = await load();
    t.notOk(a.error, `first load: ${a.error?.message ?? 'ok'}`);
    t.equal(a.info?.source, 'network', 'first load: from the network');
    t.equal(a.info?.stored, true, 'first load: stored');
    t.equal(a.info?.sha256, sha256, 'first load: the SHA-256 is the file’s');
    t.equal(sources(a), 'network', `first load: progress from the network (${a.progress.length} reports)`);
    t.has(last(a), { loaded: bytes.length, total: bytes.length }, 'first load: progress ends at the file size');
    t.same((await generate()).ids, ref, 'generation after a network load: the ids Node makes');
    const b = await load();
    t.equal(b.info?.source, 'cache', 'second load: from storage');
    t.equal(sources(b), 'cache', `second load: progress says 'cache' (${b.progress.length} reports)`);
    t.has(last(b), { loaded: bytes.length, total: bytes.length }, 'second load: progress ends at the file size');
    t.same((await generate()).ids, ref, 'generation after a load from storage: the ids Node makes');
  });

  await t.test(`${label}: a tampered stored copy is refused, evicted and fetched again`, async (t) => {
    const changed = (await step('tamper', { url })) as { changedAt?: number; error?: { message: string } };
    t.ok(changed.changedAt !== undefined, `one byte of the stored copy changed (${changed.error?.message ?? 'ok'})`);
    const r = await load();
    t.notOk(r.error, `the load still succeeds (${r.error?.message ?? 'ok'})`);
    t.same(
      r.warnings.map((w) => w.code),
      ['CACHE_REJECTED'],
      `a warning says so: "${r.warnings[0]?.message.slice(0, 90)}..."`,
    );
    t.match(r.warnings[0]?.message ?? '', new RegExp(`not ${sha256}`), 'the warning names the expected hash');
    t.equal(r.info?.source, 'network', 'the model came from the network instead');
    t.ok(
      r.progress.some((p) => p.source === 'cache') && r.progress.at(-1)?.source === 'network',
      'progress: read from storage, then downloaded',
    );
    t.same((await generate()).ids, ref, 'the generation is the untampered model’s');
    t.equal((await load()).info?.source, 'cache', 'the good copy was stored again');
  });

  await t.test(`${label}: a network copy with another hash is an error, not used nor stored`, async (t) => {
    const wrong = createHash('sha256').update('another file').digest('hex');
    const r = await load({ sha256: wrong });
    t.equal(r.error?.code, 'HASH_MISMATCH', `refused: "${r.error?.message.slice(0, 100)}..."`);
    t.match(r.error?.message ?? '', new RegExp(`has SHA-256 ${sha256}, not the ${wrong}`), 'it names both hashes');
    t.equal(((await step('cached', { url })) as StepResult).cached, false, 'nothing is left in storage');
    t.equal((await load()).info?.source, 'network', 'the right hash downloads it again');
  });

  await t.test(`${label}: options a user can get wrong are refused, saying what is expected`, async (t) => {
    const bad: [object, RegExp][] = [
      [{ sha256: 'abc' }, /sha256 must be the file's SHA-256 as 64 hex digits/],
      [{ sha256: null, cache: true }, /cache: true needs sha256/],
      [{ memoryBudget: -1 }, /memoryBudget must be a positive number of bytes, got -1/],
    ];
    for (const [opts, msg] of bad) {
      const r = await load(opts);
      t.equal(r.error?.code, 'BAD_PARAM', `${JSON.stringify(opts)}: BAD_PARAM`);
      t.match(r.error?.message ?? '', msg, `${JSON.stringify(opts)}: "${r.error?.message}"`);
    }
    const cut = await load({ url: '/loader/truncated.gguf', sha256: null, memoryBudget: 1e9 });
    t.match(cut.error?.message ?? '', /model file truncated/, `a damaged file with a budget: "${cut.error?.message}"`);
    const r = await load({ sha256: null });
    t.equal(r.info?.source, 'network', 'without sha256: downloaded');
    t.equal(r.info?.stored, false, 'without sha256: not stored');
    const kept = await load({ cache: false });
    t.ok(
      kept.info?.source === 'network' && kept.info.stored === false && kept.info.sha256 === sha256,
      'cache: false with sha256: downloaded, checked, not stored',
    );
    const other = createHash('sha256').update('x').digest('hex');
    t.equal((await load({ cache: false, sha256: other })).error?.code, 'HASH_MISMATCH', 'and a wrong hash is refused');
  });

  await t.test(`${label}: the memory budget refuses a model before its memory is taken`, async (t) => {
    const need = memoryNeed(bytes);
    const a = await load({ memoryBudget: Math.floor(bytes.length * 1.5) });
    t.equal(a.error?.code, 'MEMORY_BUDGET', `from its size: "${a.error?.message}"`);
    t.match(a.error?.message ?? '', /raise memoryBudget/, 'it says what to do');
    t.equal(a.progress.length, 0, 'refused before a byte was read');
    const b = await load({ memoryBudget: roughLoadBytes(bytes.length) + 1000 });
    t.equal(b.error?.code, 'MEMORY_BUDGET', `from its header: "${b.error?.message}"`);
    t.match(b.error?.message ?? '', new RegExp(`weights ${need.weightBytes}`), 'it names the weights’ bytes');
    t.equal(((await generate()) as StepResult).error?.code, 'NO_MODEL', 'no model was loaded');
    const c = await load({ memoryBudget: need.total });
    t.notOk(c.error, `a budget of exactly the figure (${need.total} bytes) admits it (${c.error?.message ?? 'ok'})`);
    t.same((await generate()).ids, ref, 'and it runs');
  });

  await t.test(`${label}: an abort ends a generation, and the worker goes on working`, async (t) => {
    const r = (await step('abortGenerate', { prompt: PROMPT, after: 5, max: 4000 })) as StepResult;
    t.equal(r.error?.code, 'ABORTED', `the generation ended: "${r.error?.message}"`);
    t.equal(r.error?.name, 'AbortError', 'as an AbortError');
    t.equal(r.error?.message, 'generation aborted', 'abort() without a reason: no reason given');
    t.ok((r.tokens ?? 0) >= 5 && (r.tokens ?? 4000) < 4000, `it stopped early (${r.tokens} of 4000 tokens)`);
    t.ok((r.endMs ?? Infinity) < 2000, `within ${r.endMs?.toFixed(0)} ms of the abort`);
    t.equal(r.restarts, 0, 'the worker ended it itself (not terminated)');
    t.same((await generate()).ids, ref, 'the next generation works, the model still loaded');
  });

  await t.test(`${label}: abortGraceMs 0: an abort terminates the worker and starts another`, async (t) => {
    const r = (await step('abortRestart', { url, sha256, prompt: PROMPT })) as StepResult & {
      next: { error?: { code: string } };
    };
    t.equal(r.error?.code, 'ABORTED', `the generation ended: "${r.error?.message}"`);
    t.equal(r.error?.name, 'AbortError', 'as an AbortError');
    t.match(r.error?.message ?? '', /: the user left$/, 'with the reason given to abort()');
    t.equal(r.restarts, 1, 'the worker was replaced');
    t.equal(r.next.error?.code, 'NO_MODEL', 'the new worker has no model');
    t.same(r.ids, ref, 'after a load it generates the ids Node makes');
  });

  await t.test(`${label}: an abort ends a load, and the worker goes on working`, async (t) => {
    const r = (await step('abortLoad', { url, sha256 })) as StepResult;
    t.equal(r.error?.code, 'ABORTED', `the load ended: "${r.error?.message}"`);
    t.equal(r.restarts, 0, 'the worker ended it itself (not terminated)');
    t.equal(((await generate()) as StepResult).error?.code, 'NO_MODEL', 'no model is loaded');
    t.notOk((await load()).error, 'the next load works');
    t.same((await generate()).ids, ref, 'and so does a generation');
  });

  const noQuota = {
    skip: 'WebKit cannot be made short of quota here: WebKitGTK sets quotas only through the embedding app (WebKitWebsiteDataManager), MiniBrowser has no option for it, and WebDriver has no storage command',
  };
  await t.test(
    `${label}: storage short of quota: a warning, and the model runs from memory`,
    quota ? {} : noQuota,
    async (t) => {
      if (!quota) return;
      await step('clear');
      await quota(4096);
      try {
        const r = await load();
        t.notOk(r.error, `the load succeeds (${r.error?.message ?? 'ok'})`);
        t.same(
          r.warnings.map((w) => w.code),
          ['STORAGE_QUOTA'],
          `a warning says so: "${r.warnings[0]?.message.slice(0, 100)}..."`,
        );
        t.equal(r.info?.stored, false, 'not stored');
        t.same((await generate()).ids, ref, 'the model runs from memory');
        t.equal(((await step('cached', { url })) as StepResult).cached, false, 'nothing is in storage');
      } finally {
        await quota(null);
      }
    },
  );
}

function serveDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'itera-loader-'));
  copyFileSync(MODEL, join(dir, 'model.gguf'));
  const bytes = readFileSync(MODEL);
  writeFileSync(join(dir, 'truncated.gguf'), bytes.subarray(0, bytes.length >> 1));
  return dir;
}

t.test('web loader in Chromium (Android WebView engine)', engineOption(missingChromium), async (t) => {
  const t0 = performance.now();
  const { chromium } = await import('playwright-core');
  const ctx = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'itera-chromium-')), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
  });
  const server = await startDemoServer({ mounts: { '/loader/': serveDir() } });
  t.teardown(async () => {
    await ctx.close();
    await server.close();
  });
  const page = await ctx.newPage();
  await page.goto(`${server.url}/device-tests/browser/loader.html`);
  await page.waitForFunction(() => (window as unknown as { loaderReady?: boolean }).loaderReady === true);
  const cdp = await ctx.newCDPSession(page);
  const step: Step = (name, args = {}) =>
    page.evaluate(
      ([n, a]) =>
        (window as unknown as { loaderStep(n: string, a: object): Promise<unknown> }).loaderStep(
          n as string,
          a as object,
        ),
      [name, args] as const,
    );
  await scenario(t, step, 'Chromium', async (bytes) => {
    // the DevTools protocol's quota override (no quotaSize: back to the real quota)
    await cdp.send('Storage.overrideQuotaForOrigin', {
      origin: server.url,
      ...(bytes === null ? {} : { quotaSize: bytes }),
    });
  });
  t.comment(`Chromium loader tests: ${(performance.now() - t0).toFixed(0)} ms`);
});

t.test('web loader in WebKit (iOS WKWebView engine)', engineOption(missingWebKit()), async (t) => {
  const t0 = performance.now();
  const server = await startDemoServer({ mounts: { '/loader/': serveDir() } });
  const webkit = await startWebKit().catch(async (e: unknown) => {
    await server.close();
    throw e;
  });
  t.teardown(async () => {
    await webkit.close();
    await server.close();
  });
  const wd = webkit.wd;
  await wd.go(`${server.url}/device-tests/browser/loader.html`);
  t.ok(await wd.waitFor('window.loaderReady', 20000), 'the loader page is ready');
  const step: Step = (name, args = {}) =>
    wd.runAsync(
      'const done = arguments[arguments.length - 1]; window.loaderStep(arguments[0], arguments[1]).then(done, (e) => done({ error: { code: "THROWN", message: String(e && e.message || e) } }));',
      name,
      args,
    );
  await scenario(t, step, 'WebKit', null);
  t.comment(`WebKit loader tests: ${(performance.now() - t0).toFixed(0)} ms`);
});
