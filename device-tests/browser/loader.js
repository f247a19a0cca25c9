// The loader's steps, run one at a time by host/test/web-loader.test.ts in Chromium and WebKit:
// persistent storage, SHA-256 checks, progress, the memory budget, aborting. It imports the build
// for bundlers (dist/web/itera.module.js, which starts worker.js beside it) with no bundler.
// Every step resolves to plain JSON: what happened, or the error's code and message.
import { IteraWeb, CACHE_NAME } from '../../dist/web/itera.module.js';

const itera = IteraWeb.start();
const log = (s) => (document.getElementById('log').textContent += '\n' + s);
const failure = (e) => ({
  error: { code: e?.code ?? e?.name ?? 'ERROR', name: e?.name, message: String(e?.message ?? e) },
});

const steps = {
  /** Loads a model: its info, every progress report and every warning. */
  async load({ url, ...opts }) {
    if (opts.sha256 === null) delete opts.sha256; // JSON has no undefined
    const progress = [];
    const warnings = [];
    try {
      const info = await itera.load(url, {
        ...opts,
        onProgress: (loaded, total, source) => progress.push({ loaded, total, source }),
        onWarning: (w) => warnings.push(w),
      });
      return { info, progress, warnings };
    } catch (e) {
      return { ...failure(e), progress, warnings };
    }
  },
  /** A generation's token ids. */
  async generate({ prompt, options }) {
    try {
      const s = await itera.generate(prompt, options);
      return { ids: s.ids };
    } catch (e) {
      return failure(e);
    }
  },
  /** A long generation aborted after `after` tokens: the error, how many tokens came, how long the
   *  abort took to end it, and whether the worker had to be restarted. */
  async abortGenerate({ prompt, after, max }) {
    const ac = new AbortController();
    let tokens = 0;
    let abortedAt = 0;
    try {
      await itera.generate(prompt, { maxTokens: max, stopAtEos: false, signal: ac.signal }, () => {
        if (++tokens === after) {
          abortedAt = performance.now();
          ac.abort();
        }
      });
      return { tokens, finished: true };
    } catch (e) {
      return { ...failure(e), tokens, endMs: performance.now() - abortedAt, restarts: itera.restarts };
    }
  },
  /** A load aborted as soon as it was asked for. */
  async abortLoad({ url, sha256 }) {
    const ac = new AbortController();
    const p = itera.load(url, { sha256, signal: ac.signal });
    ac.abort();
    try {
      await p;
      return { finished: true };
    } catch (e) {
      return { ...failure(e), restarts: itera.restarts };
    }
  },
  /** With abortGraceMs 0, an abort terminates the worker at once and starts a new one, without
   *  the model: the error, the restarts, what a generation then says, and one after a new load. */
  async abortRestart({ url, sha256, prompt }) {
    const other = IteraWeb.start({ abortGraceMs: 0 });
    try {
      await other.load(url, { sha256 });
      const ac = new AbortController();
      let tokens = 0;
      const r = await other
        .generate(prompt, { maxTokens: 4000, stopAtEos: false, signal: ac.signal }, () => {
          if (++tokens === 5) ac.abort('the user left');
        })
        .then(() => ({ finished: true }), failure);
      const next = await other.generate(prompt, { maxTokens: 24 }).then(() => ({}), failure);
      await other.load(url, { sha256 });
      const again = await other.generate(prompt, { maxTokens: 24 });
      return { ...r, restarts: other.restarts, info: other.info && other.info.source, next, ids: again.ids };
    } finally {
      other.terminate();
    }
  },
  /** Changes one byte of the stored copy of `url` (what a damaged or tampered store looks like). */
  async tamper({ url }) {
    const cache = await caches.open(CACHE_NAME);
    const key = new URL(url, location.href).href;
    const hit = await cache.match(key);
    if (!hit) return { error: { code: 'NOT_CACHED', message: `${key} is not in the cache` } };
    const bytes = new Uint8Array(await hit.arrayBuffer());
    bytes[bytes.length >> 1] ^= 0xff;
    await cache.put(key, new Response(bytes, { headers: { 'content-length': String(bytes.length) } }));
    return { changedAt: bytes.length >> 1, bytes: bytes.length };
  },
  /** Is `url` in the cache? */
  async cached({ url }) {
    const cache = await caches.open(CACHE_NAME);
    return { cached: !!(await cache.match(new URL(url, location.href).href)) };
  },
  async clear() {
    return { cleared: await IteraWeb.clearCache() };
  },
};

window.loaderStep = async (name, args = {}) => {
  const r = await steps[name](args);
  log(`${name}: ${JSON.stringify(r).slice(0, 300)}`);
  return r;
};
window.loaderReady = true;
