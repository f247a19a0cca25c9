// The Android WebView tier: the engine Android's WebView is built from, headless Chromium, driven
// by playwright-core. One browser per suite; pages from 127.0.0.1. The conformance cases run in
// the bundle's Web Worker (SIMD and scalar builds) and must match Node x86; the demo page streams
// a generation (screenshot in reports/screenshots/); a model that cannot load shows its error.
import t from 'tap';
import type { SimdPeak } from '../runtime/probe/throughput.js';
import { existsSync, readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { repoRoot } from './shared.js';
import {
  assertMatchesX86,
  conformance,
  engineOption,
  prepareInputs,
  screenshotDir,
  type Results,
} from './tier-common.js';
import { startDemoServer } from '../cli/commands/serve-demo.js';

const CHROMIUM = process.env.ITERA_CHROMIUM ?? '/usr/bin/chromium';
const missing = existsSync(CHROMIUM) ? null : `Chromium is not installed (${CHROMIUM})`;
const bundle = join(repoRoot(), 'dist', 'web', 'itera.js');

t.test('Chromium (Android WebView engine)', engineOption(missing), async (t) => {
  t.ok(existsSync(bundle), `the web bundle is built (${bundle})`);
  const t0 = performance.now();
  const inp = prepareInputs();
  const { chromium } = await import('playwright-core');
  const ctx = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'itera-chromium-')), {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1000, height: 860 },
  });
  const server = await startDemoServer({ mounts: { '/inputs/': inp.dir } });
  t.teardown(async () => {
    await ctx.close();
    await server.close();
  });
  const launchMs = performance.now() - t0;

  await t.test('conformance cases in the Web Worker: SIMD and scalar builds equal Node x86', async (t) => {
    const page = await ctx.newPage();
    await page.goto(`${server.url}/device-tests/browser/conformance.html`);
    await page.waitForFunction(() => (window as unknown as { conformanceReady?: boolean }).conformanceReady === true);
    for (const build of ['auto', 'scalar'] as const) {
      const a = performance.now();
      const got = await page.evaluate(
        async (b) =>
          (window as unknown as { runConformance(i: string, b: string): Promise<Results> }).runConformance(
            '/inputs/',
            b,
          ),
        build,
      );
      const d = (
        got as Results & { diagnostics: { build: string; simd: boolean; worker: boolean; simdPeak: SimdPeak } }
      ).diagnostics;
      t.equal(d.worker, true, `${build}: ran in a Web Worker`);
      t.ok(
        (d.simdPeak.i16DotAdd.value ?? 0) > 0 && (d.simdPeak.f32MulAdd.value ?? 0) > 0,
        `${build}: SIMD ceiling measured in the worker (f32 ${d.simdPeak.f32MulAdd.value}, int16 ${d.simdPeak.i16DotAdd.value} G/s)`,
      );
      t.equal(
        d.build,
        build === 'auto' ? 'simd' : 'scalar',
        `${build}: feature detection picked ${d.build} (engine SIMD: ${d.simd})`,
      );
      await assertMatchesX86(t, got, `Chromium ${d.build}`);
      t.comment(
        `Chromium ${d.build}: ${Object.keys(got.results).length} cases in ${(performance.now() - a).toFixed(0)} ms`,
      );
    }
    await page.close();
  });

  await t.test("build: 'relaxed' in the Web Worker: Chromium runs the relaxed build, golden ids", async (t) => {
    const page = await ctx.newPage();
    await page.goto(`${server.url}/device-tests/browser/conformance.html`);
    await page.waitForFunction(() => (window as unknown as { conformanceReady?: boolean }).conformanceReady === true);
    const got = await page.evaluate(async () =>
      (window as unknown as { runConformance(i: string, b: string): Promise<Results> }).runConformance(
        '/inputs/',
        'relaxed',
      ),
    );
    const d = (got as Results & { diagnostics: { build: string } }).diagnostics;
    t.equal(d.build, 'relaxed', 'current Chromium validates relaxed SIMD and passes the self-test');
    // its own promise (docs/runtime.md): the golden ids (every case ran, each greedy case gave the
    // golden ids), not the SIMD build's bits
    const c = await conformance();
    const checks = c.checkResults(inp.cases, got, null);
    t.ok(checks.length > 0, `${checks.length} checks`);
    for (const k of checks) t.ok(k.ok, `Chromium relaxed: ${k.name}`);
    await page.close();
  });

  await t.test('demo page: streams tokens, shows tokens/s, memory and diagnostics (screenshot)', async (t) => {
    const page = await ctx.newPage();
    const model = inp.models.micro ? '/inputs/' + inp.models.micro : '/inputs/' + inp.models.tiny;
    const tokens: string[] = [];
    await page.exposeFunction('__noop', () => undefined);
    await page.goto(
      `${server.url}/device-tests/browser/index.html?model=${encodeURIComponent(model)}&autorun=1&max=40&temperature=0.8&seed=7`,
    );
    await page.waitForSelector('body[data-state=done]', { timeout: 60000 });
    const out = await page.textContent('#output');
    const stats = await page.textContent('#stats');
    const diag = await page.textContent('#diag');
    const frames = await page.textContent('#frames');
    tokens.push(...(out ?? '').split(/\s+/));
    t.ok(
      (out ?? '').length > 'Once upon a time,'.length + 10,
      `the streamed text is on the page: "${(out ?? '').slice(0, 90)}..."`,
    );
    t.match(stats ?? '', /tokens\/s\d+/, 'tokens/s shown');
    t.match(stats ?? '', /per tokenmedian [\d.]+ ms/, 'per-token latency shown');
    t.match(stats ?? '', /module memory[\d.]+ (KiB|MiB)/, 'memory shown');
    t.match(diag ?? '', /WebAssembly SIMDyes/, 'diagnostics: SIMD detected');
    t.match(diag ?? '', /runs ina Web Worker/, 'diagnostics: in a Web Worker');
    t.match(
      diag ?? '',
      /SIMD peak, 1 threadf32 \d+\.\d, int16 \d+\.\d G multiply-adds\/s/,
      `diagnostics: the SIMD ceiling measured in the worker (${/SIMD peak, 1 thread([^]*?G multiply-adds\/s)/.exec(diag ?? '')?.[1] ?? 'missing'})`,
    );
    t.match(
      frames ?? '',
      /UI frames while generating: \d+/,
      `the page kept drawing while the worker generated (${frames})`,
    );
    const dir = screenshotDir();
    await page.screenshot({ path: join(dir, 'demo-chromium.png'), fullPage: true });
    t.ok(existsSync(join(dir, 'demo-chromium.png')), `screenshot: ${join(dir, 'demo-chromium.png')}`);
    await page.close();
  });

  await t.test('a model that fails to load: a clear error in the page and in the worker', async (t) => {
    const bytes = readFileSync(join(inp.dir, inp.models.tiny));
    writeFileSync(join(inp.dir, 'corrupt.gguf'), bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    const bad = Buffer.from(bytes);
    bad.write('GGXX', 0, 'latin1');
    writeFileSync(join(inp.dir, 'notgguf.gguf'), bad);
    const cases: [string, string, RegExp][] = [
      ['bad URL', '/inputs/no-such-model.gguf', /cannot fetch the model from .*no-such-model\.gguf: HTTP 404/],
      ['truncated bytes', '/inputs/corrupt.gguf', /model file truncated/],
      ['not a model file', '/inputs/notgguf.gguf', /not a GGUF file/],
    ];
    for (const [what, url, msg] of cases) {
      const page = await ctx.newPage();
      const logs: string[] = [];
      page.on('console', (m) => logs.push(m.text()));
      page.on('worker', (w) =>
        (w as unknown as { on(e: string, f: (m: { text(): string }) => void): void }).on?.('console', (m) =>
          logs.push(m.text()),
        ),
      );
      await page.goto(`${server.url}/device-tests/browser/index.html?model=${encodeURIComponent(url)}&autorun=1`);
      await page.waitForSelector('body[data-state=error]', { timeout: 30000 });
      const shown = (await page.textContent('#error')) ?? '';
      t.match(shown, msg, `${what}: the page shows "${shown.slice(0, 110)}"`);
      t.ok(await page.isVisible('#error'), `${what}: the error box is visible`);
      await page.waitForTimeout(50);
      t.ok(
        logs.some((l) => /itera worker: load failed/.test(l) && msg.test(l)),
        `${what}: the worker logged it (${logs.find((l) => /itera worker/.test(l))?.slice(0, 80) ?? 'nothing'})`,
      );
      await page.close();
    }
  });

  const sizes = JSON.parse(readFileSync(join(repoRoot(), 'dist', 'web', 'sizes.json'), 'utf8')) as Record<
    string,
    { bytes: number; gzip: number }
  >;
  for (const [k, v] of Object.entries(sizes))
    t.comment(`bundle size: ${k} ${(v.bytes / 1024).toFixed(1)} KiB (gzip ${(v.gzip / 1024).toFixed(1)} KiB)`);
  t.ok(
    sizes['itera.js'].gzip < 32 * 1024,
    `the JS part stays small: ${(sizes['itera.js'].gzip / 1024).toFixed(1)} KiB gzipped`,
  );
  t.comment(
    `Chromium tier: launch ${launchMs.toFixed(0)} ms, total ${(performance.now() - t0).toFixed(0)} ms (Node x86 reference ${inp.x86Ms.toFixed(0)} ms)`,
  );
});
