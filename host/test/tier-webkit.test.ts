// The iOS WKWebView tier: WebKit, as WebKitGTK's MiniBrowser driven through WebKitWebDriver under
// Xvfb (the conformance cases in the bundle's Web Worker, the demo page with a screenshot, a model
// that fails to load), and the JavaScriptCore shell `jsc` (the cases with the bundle, no worker).
// Both must give the same token ids as Node x86 and logits within 1e-5.
import t from 'tap';
import type { SimdPeak } from '../runtime/probe/throughput.js';
import { spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './shared.js';
import { assertMatchesX86, engineOption, prepareInputs, screenshotDir, type Results } from './tier-common.js';
import { startDemoServer } from '../cli/commands/serve-demo.js';
import { missingWebKit, startWebKit, which, type WebDriver } from './webkit-driver.js';

const missingBrowser = missingWebKit();
const missingJsc = which('jsc') ? null : 'the JavaScriptCore shell jsc is not installed';

t.test(
  'JavaScriptCore shell (jsc): the cases with the bundle, SIMD and scalar',
  engineOption(missingJsc),
  async (t) => {
    const inp = prepareInputs();
    for (const f of ['itera.wasm', 'itera-scalar.wasm']) copyFileSync(join(repoRoot(), 'build', f), join(inp.dir, f));
    for (const build of ['auto', 'scalar']) {
      const a = performance.now();
      const r = spawnSync(
        'jsc',
        ['-m', join(repoRoot(), 'device-tests', 'jsc', 'conformance-jsc.mjs'), '--', inp.dir, build],
        { encoding: 'utf8', maxBuffer: 64 << 20 },
      );
      const line = r.stdout.split('\n').find((l) => l.startsWith('ITERA-RESULT ') || l.startsWith('ITERA-ERROR '));
      t.ok(
        line?.startsWith('ITERA-RESULT '),
        `jsc ${build}: printed its results (${line?.slice(0, 120) ?? r.stderr.slice(0, 200)})`,
      );
      if (!line?.startsWith('ITERA-RESULT ')) continue;
      const got = JSON.parse(line.slice('ITERA-RESULT '.length)) as Results & { build: string };
      t.equal(got.build, build === 'auto' ? 'simd' : 'scalar', `jsc ${build}: feature detection picked ${got.build}`);
      await assertMatchesX86(t, got, `jsc ${got.build}`);
      t.comment(`jsc ${got.build}: ${(performance.now() - a).toFixed(0)} ms`);
    }
  },
);

t.test(
  'WebKit MiniBrowser (iOS WKWebView engine) via WebDriver under Xvfb',
  engineOption(missingBrowser),
  async (t) => {
    const t0 = performance.now();
    const inp = prepareInputs();
    const server = await startDemoServer({ mounts: { '/inputs/': inp.dir } });
    let webkit: Awaited<ReturnType<typeof startWebKit>> | null = null;
    t.teardown(async () => {
      await webkit?.close();
      await server.close();
    });
    webkit = await startWebKit();
    const wd: WebDriver = webkit.wd;
    const launchMs = performance.now() - t0;

    await t.test('conformance cases in the Web Worker equal Node x86', async (t) => {
      await wd.go(`${server.url}/device-tests/browser/conformance.html`);
      t.ok(await wd.waitFor('window.conformanceReady', 20000), 'the conformance page is ready');
      for (const build of ['auto', 'scalar']) {
        const a = performance.now();
        const got = await wd.runAsync<
          Results & {
            diagnostics: { build: string; simd: boolean; worker: boolean; simdPeak: SimdPeak };
            error?: string;
          }
        >(
          'const done = arguments[arguments.length - 1]; window.runConformance(arguments[0], arguments[1]).then(done, (e) => done({ error: String(e && e.message || e) }));',
          '/inputs/',
          build,
        );
        t.notOk(got.error, `${build}: ran (${got.error ?? 'ok'})`);
        if (got.error) continue;
        t.equal(got.diagnostics.worker, true, `${build}: ran in a Web Worker`);
        t.ok(
          (got.diagnostics.simdPeak.i16DotAdd.value ?? 0) > 0,
          `${build}: SIMD ceiling measured in the worker (f32 ${got.diagnostics.simdPeak.f32MulAdd.value}, int16 ${got.diagnostics.simdPeak.i16DotAdd.value} G/s)`,
        );
        t.equal(
          got.diagnostics.build,
          build === 'auto' ? 'simd' : 'scalar',
          `${build}: feature detection picked ${got.diagnostics.build} (engine SIMD: ${got.diagnostics.simd})`,
        );
        await assertMatchesX86(t, got, `WebKit ${got.diagnostics.build}`);
        t.comment(`WebKit ${got.diagnostics.build}: ${(performance.now() - a).toFixed(0)} ms`);
      }
    });

    await t.test('demo page: streamed text and stats (screenshot)', async (t) => {
      const model = '/inputs/' + (inp.models.micro ?? inp.models.tiny);
      await wd.go(
        `${server.url}/device-tests/browser/index.html?model=${encodeURIComponent(model)}&autorun=1&max=40&temperature=0.8&seed=7`,
      );
      t.ok(await wd.waitFor("document.body.dataset.state === 'done'", 60000), 'the generation finished');
      const text = await wd.run<{ out: string; stats: string; diag: string }>(
        "return { out: document.getElementById('output').textContent, stats: document.getElementById('stats').textContent, diag: document.getElementById('diag').textContent };",
      );
      t.ok(
        text.out.length > 'Once upon a time,'.length + 10,
        `the streamed text is on the page: "${text.out.slice(0, 90)}..."`,
      );
      t.match(text.stats, /tokens\/s\d+/, 'tokens/s shown');
      t.match(text.stats, /module memory[\d.]+ (KiB|MiB)/, 'memory shown');
      t.match(text.diag, /runs ina Web Worker/, 'diagnostics: in a Web Worker');
      // let WebKit paint the finished page before the capture (it may still show an older frame)
      await wd.runAsync(
        'const done = arguments[arguments.length - 1]; requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(done, 300)));',
      );
      let png = await wd.cmd<string>('GET', '/screenshot');
      for (let i = 0; i < 5 && Buffer.from(png, 'base64').length < 60000; i++) {
        await new Promise((r) => setTimeout(r, 500));
        png = await wd.cmd<string>('GET', '/screenshot');
      }
      const dir = screenshotDir();
      writeFileSync(join(dir, 'demo-webkit.png'), Buffer.from(png, 'base64'));
      t.ok(
        readFileSync(join(dir, 'demo-webkit.png')).subarray(1, 4).toString() === 'PNG',
        `screenshot: ${join(dir, 'demo-webkit.png')}`,
      );
    });

    await t.test('a model that fails to load: a clear error in the page and from the worker', async (t) => {
      const bytes = readFileSync(join(inp.dir, inp.models.tiny));
      writeFileSync(join(inp.dir, 'corrupt.gguf'), bytes.subarray(0, Math.floor(bytes.length * 0.6)));
      for (const [what, url, msg] of [
        ['bad URL', '/inputs/no-such-model.gguf', /cannot fetch the model from .*no-such-model\.gguf: HTTP 404/],
        ['truncated bytes', '/inputs/corrupt.gguf', /model file truncated/],
      ] as [string, string, RegExp][]) {
        await wd.go(`${server.url}/device-tests/browser/index.html?model=${encodeURIComponent(url)}&autorun=1`);
        t.ok(
          await wd.waitFor("document.body.dataset.state === 'error'", 30000),
          `${what}: the page went to its error state`,
        );
        const shown = await wd.run<string>(
          "return document.getElementById('error').hidden ? '' : document.getElementById('error').textContent;",
        );
        t.match(shown, msg, `${what}: the page shows "${shown.slice(0, 110)}"`);
      }
    });
    t.comment(`WebKit tier: launch ${launchMs.toFixed(0)} ms, total ${(performance.now() - t0).toFixed(0)} ms`);
  },
);
