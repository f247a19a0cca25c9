// The Web Worker side: one model per worker, requests answered in order. Inference runs here, so
// the page's thread never blocks; tokens are posted as they are made. A failure is logged in the
// worker's console and answered as an 'error' with the message (the page shows it).

import { IteraError } from '../runtime/types.js';
import { diagnostics, Engine, engineHasSimd, pickBuild, sourceBytes } from './engine.js';
import { relaxedVerdict } from '../runtime/features.js';
import { wasmBytes } from './wasm-source.js';
import type { BuildChoice, Reply, Request } from './protocol.js';

interface Scope {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  addEventListener(type: 'message', listener: (e: MessageEvent<Request>) => void): void;
}

export function installWorker(scope: Scope = globalThis as unknown as Scope): void {
  let engine: Engine | null = null;
  let choice: BuildChoice = 'auto';
  let queue: Promise<void> = Promise.resolve();
  const post = (r: Reply, transfer?: Transferable[]): void => scope.postMessage(r, transfer);

  async function handle(req: Request): Promise<void> {
    switch (req.type) {
      case 'load': {
        engine?.dispose();
        engine = null;
        choice = req.build;
        let build = pickBuild(req.build);
        let [wasm, bytes] = await Promise.all([
          wasmBytes(build, req.wasm?.[build]).catch((e: unknown) => {
            if (build !== 'relaxed') throw e;
            return new Uint8Array(0); // refused below, with the reason
          }),
          sourceBytes(req.source, (loaded, total) => post({ id: req.id, type: 'progress', loaded, total })),
        ]);
        let note: string | null = null;
        if (build === 'relaxed') {
          const v = await relaxedVerdict(wasm as Uint8Array<ArrayBuffer>);
          if (!v.ok) {
            const fallback = engineHasSimd() ? 'simd' : 'scalar';
            note = `relaxed-SIMD build not used: ${wasm.length ? v.reason : 'its module could not be fetched'}; running the ${fallback === 'simd' ? 'SIMD' : 'scalar'} build`;
            console.warn(`itera: warning: ${note}`);
            build = fallback;
            wasm = await wasmBytes(build, req.wasm?.[build]);
          }
        }
        try {
          engine = await Engine.load(bytes, wasm, build, note);
        } catch (e) {
          // an engine may validate SIMD yet not compile it (JavaScriptCore with its JIT off, as in
          // iOS Lockdown Mode): fall back to the scalar build when the choice was automatic
          if (!(e instanceof WebAssembly.CompileError) || build !== 'simd' || req.build !== 'auto') throw e;
          engine = await Engine.load(bytes, await wasmBytes('scalar', req.wasm?.scalar), 'scalar');
        }
        post({ id: req.id, type: 'result', value: engine.info });
        return;
      }
      case 'generate': {
        const e = need(engine);
        const stats = await e.generate(req.prompt, req.options, (token) => post({ id: req.id, type: 'token', token }));
        post({ id: req.id, type: 'result', value: stats });
        return;
      }
      case 'logits': {
        const l = need(engine).logits(req.ids);
        post({ id: req.id, type: 'result', value: l }, [l.buffer]);
        return;
      }
      case 'encode':
        post({ id: req.id, type: 'result', value: need(engine).encode(req.text) });
        return;
      case 'diagnostics':
        post({ id: req.id, type: 'result', value: diagnostics(engine, choice) });
        return;
      case 'unload':
        engine?.dispose();
        engine = null;
        post({ id: req.id, type: 'result', value: null });
        return;
    }
  }

  scope.addEventListener('message', (ev) => {
    const req = ev.data;
    queue = queue
      .then(() => handle(req))
      .catch((e: unknown) => {
        const err = e as { message?: string; code?: string };
        const message = err?.message ?? String(e);
        console.error(`itera worker: ${req.type} failed: ${message}`);
        post({ id: req.id, type: 'error', message, code: typeof err?.code === 'string' ? err.code : 'ERROR' });
      });
  });
}

function need(e: Engine | null): Engine {
  if (!e) throw new IteraError('no model is loaded: call load() first', 'NO_MODEL');
  return e;
}
