// The Web Worker side: one model per worker, requests answered in order. Inference runs here, so
// the page's thread never blocks; tokens are posted as they are made. A failure is logged in the
// worker's console and answered as an 'error' with the message (the page shows it).

import { IteraError } from '../runtime/types.js';
import { diagnostics, Engine, engineHasSimd, pickBuild } from './engine.js';
import { relaxedVerdict } from '../runtime/features.js';
import { wasmBytes } from './wasm-source.js';
import { abortError, fetchModel, localModel, validSha256, type FetchModelOptions } from './store.js';
import { checkBudget, memoryNeed, validBudget, type MemoryNeed } from './budget.js';
import type { BuildChoice, Reply, Request, StorageWarning } from './protocol.js';

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
        const sha256 = validSha256(req.sha256);
        const memoryBudget = validBudget(req.memoryBudget);
        if (req.cache && sha256 === undefined)
          throw new IteraError(
            'cache: true needs sha256: a stored copy is used only after it is checked against the hash the app gives',
            'BAD_PARAM',
          );
        engine?.dispose();
        engine = null;
        choice = req.build;
        let build = pickBuild(req.build);
        const signal = controllerOf(req.id).signal;
        const warnings: StorageWarning[] = [];
        const o: FetchModelOptions = {
          sha256,
          cache: req.cache,
          memoryBudget,
          signal,
          onProgress: (loaded, total, source) => post({ id: req.id, type: 'progress', loaded, total, source }),
          onWarning: (warning) => {
            warnings.push(warning);
            console.warn(`itera worker: ${warning.message}`);
            post({ id: req.id, type: 'warning', warning });
          },
        };
        const [firstWasm, got] = await Promise.all([
          wasmBytes(build, req.wasm?.[build]).catch((e: unknown) => {
            if (build !== 'relaxed') throw e;
            return new Uint8Array(0); // refused below, with the reason
          }),
          typeof req.source === 'string' ? fetchModel(req.source, o) : localModel(req.source, o),
        ]);
        let wasm = firstWasm;
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
        // the file is read; the module's memory is not taken yet: the exact figure from its header
        // (a file whose header does not read is refused by Engine.load, with the full reason)
        const fit = memoryBudget === undefined ? null : headerNeed(got.bytes);
        if (fit)
          checkBudget(
            fit.total,
            memoryBudget,
            `file ${fit.fileBytes} + weights ${fit.weightBytes} + buffers ${fit.bufferBytes} bytes`,
          );
        if (signal.aborted) throw abortError('loading the model', signal);
        const from = { source: got.source, stored: got.stored, sha256: got.sha256, warnings };
        try {
          engine = await Engine.load(got.bytes, wasm, build, note, from);
        } catch (e) {
          // an engine may validate SIMD yet not compile it (JavaScriptCore with its JIT off, as in
          // iOS Lockdown Mode): fall back to the scalar build when the choice was automatic
          if (!(e instanceof WebAssembly.CompileError) || build !== 'simd' || req.build !== 'auto') throw e;
          engine = await Engine.load(got.bytes, await wasmBytes('scalar', req.wasm?.scalar), 'scalar', null, from);
        }
        post({ id: req.id, type: 'result', value: engine.info });
        return;
      }
      case 'generate': {
        const e = need(engine);
        const signal = controllerOf(req.id).signal;
        const stats = await e.generate(req.prompt, { ...req.options, signal }, (token) =>
          post({ id: req.id, type: 'token', token }),
        );
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
      case 'abort':
        return; // answered where it arrives (below)
      case 'unload':
        engine?.dispose();
        engine = null;
        post({ id: req.id, type: 'result', value: null });
        return;
    }
  }

  // one AbortController per load or generation, made when its message arrives, so that an abort
  // that comes while it waits in the queue stops it before it starts
  const controllers = new Map<number, AbortController>();
  const controllerOf = (id: number): AbortController => {
    let c = controllers.get(id);
    if (!c) controllers.set(id, (c = new AbortController()));
    return c;
  };

  scope.addEventListener('message', (ev) => {
    const req = ev.data;
    if (req.type === 'abort') {
      // a string reason ('' for none), so the error reads 'generation aborted[: reason]'
      controllers.get(req.target)?.abort(req.reason);
      return;
    }
    if (req.type === 'load' || req.type === 'generate') controllerOf(req.id);
    queue = queue
      .then(() => handle(req))
      .finally(() => controllers.delete(req.id))
      .catch((e: unknown) => {
        const err = e as { message?: string; code?: string };
        const message = err?.message ?? String(e);
        if (err?.code !== 'ABORTED') console.error(`itera worker: ${req.type} failed: ${message}`);
        post({ id: req.id, type: 'error', message, code: typeof err?.code === 'string' ? err.code : 'ERROR' });
      });
  });
}

/** What loading the file takes, or null when its header does not read (Engine.load then refuses
 *  it with the full reason). */
function headerNeed(bytes: Uint8Array): MemoryNeed | null {
  try {
    return memoryNeed(bytes);
  } catch {
    return null;
  }
}

function need(e: Engine | null): Engine {
  if (!e) throw new IteraError('no model is loaded: call load() first', 'NO_MODEL');
  return e;
}
