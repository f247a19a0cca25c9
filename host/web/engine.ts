// The runtime where it runs (a Web Worker, or the page/shell itself): feature detection, fetching
// with progress, loading a model into the module. Uses host/runtime only; no Node APIs, no DOM.

import { IteraModel } from '../runtime/api.js';
import type { BuildChoice, Diagnostics, GenerationStats, LoadInfo, TokenEvent, WebBuild } from './protocol.js';
import { measureSimdPeak, type SimdPeak } from '../runtime/probe/throughput.js';
import type { GenerateOptions } from '../runtime/api.js';

export { engineHasSimd } from '../runtime/features.js';
import { engineHasSimd } from '../runtime/features.js';
import { fetchResponse, localModel, readBody } from './store.js';

/** The build to try first: the one forced, or SIMD where the engine has it. 'relaxed' still has
 *  to pass relaxedVerdict (the worker checks it) before it runs. */
export function pickBuild(choice: BuildChoice): WebBuild {
  if (choice === 'simd' || choice === 'scalar' || choice === 'relaxed') return choice;
  return engineHasSimd() ? 'simd' : 'scalar';
}

export type Progress = (loaded: number, total: number | null) => void;

/** A URL's bytes, reporting progress as they arrive. A failure names the URL and the reason. */
export async function fetchBytes(url: string, onProgress?: Progress, what = 'model'): Promise<Uint8Array> {
  const res = await fetchResponse(url, undefined, what);
  const len = Number(res.headers.get('content-length'));
  const total = Number.isFinite(len) && len > 0 ? len : null;
  if (!res.body || typeof res.body.getReader !== 'function') {
    const b = new Uint8Array(await res.arrayBuffer());
    onProgress?.(b.length, total ?? b.length);
    return b;
  }
  return readBody(res.body, total, 'network', { onProgress, what });
}

/** Bytes of a model source: a URL, an ArrayBuffer, a Uint8Array or a File/Blob (read as a stream). */
export async function sourceBytes(
  source: string | ArrayBuffer | Uint8Array | Blob,
  onProgress?: Progress,
): Promise<Uint8Array> {
  if (typeof source === 'string') return fetchBytes(source, onProgress);
  if (source instanceof Uint8Array) {
    onProgress?.(source.length, source.length);
    return source;
  }
  return (await localModel(source, { cache: false, onProgress })).bytes;
}

/** How long a generation with a signal runs before it lets other messages in. */
const YIELD_MS = 8;

/** Resolves in a task of its own (a message to itself: unlike setTimeout, never clamped to 4 ms). */
function nextTask(): Promise<void> {
  if (typeof MessageChannel === 'undefined') return new Promise((r) => setTimeout(r, 0));
  return new Promise((r) => {
    const ch = new MessageChannel();
    ch.port1.onmessage = () => {
      ch.port1.close();
      r();
    };
    ch.port2.postMessage(0);
  });
}

/** One loaded model and what it reports. */
export class Engine {
  private constructor(
    readonly model: IteraModel,
    readonly build: WebBuild,
    readonly info: LoadInfo,
  ) {}

  /** Validates the model file completely, then lays it into a fresh module instance. */
  static async load(
    modelBytes: Uint8Array,
    wasm: Uint8Array | WebAssembly.Module,
    build: WebBuild,
    buildNote: string | null = null,
    from: Pick<LoadInfo, 'source' | 'stored' | 'sha256' | 'warnings'> = {
      source: 'memory',
      stored: false,
      sha256: null,
      warnings: [],
    },
  ): Promise<Engine> {
    const model = await IteraModel.fromBytes(modelBytes, wasm as BufferSource | WebAssembly.Module, () =>
      performance.now(),
    );
    const i = model.info();
    return new Engine(model, build, {
      name: i.name,
      build,
      buildNote,
      fileBytes: i.fileBytes,
      parameters: i.parameters,
      tokenizer: i.tokenizer,
      vocabSize: i.config.vocabSize,
      contextLength: i.config.maxSeqLength,
      loadMs: model.loadMs,
      memoryBytes: model.memoryBytes(),
      ...from,
    });
  }

  /** Streams tokens to onToken (one call into the module per token), then the statistics. With
   *  o.signal, it lets the event loop run every few milliseconds (so an abort message reaches
   *  the worker mid-generation) and ends with an ABORTED error once the signal fires. */
  async generate(
    prompt: string | readonly number[],
    o: GenerateOptions,
    onToken?: (t: TokenEvent) => void,
  ): Promise<GenerationStats> {
    const it = this.model.stream(prompt, o, () => performance.now());
    const tokenMs: number[] = [];
    let lastYield = performance.now();
    for (;;) {
      if (o.signal && performance.now() - lastYield > YIELD_MS) {
        await nextTask();
        lastYield = performance.now();
      }
      const step = await it.next();
      if (step.done) {
        const r = step.value;
        return {
          promptIds: r.promptIds,
          ids: r.ids,
          text: r.text,
          prefillMs: r.prefillMs,
          decodeMs: r.decodeMs,
          tokenMs,
          tokensPerSecond: r.ids.length > 0 && r.decodeMs > 0 ? r.ids.length / (r.decodeMs / 1000) : null,
          memoryBytes: this.model.memoryBytes(),
        };
      }
      tokenMs.push(step.value.ms);
      onToken?.({ id: step.value.id, text: step.value.text, ms: step.value.ms });
    }
  }

  logits(ids: readonly number[]): Float32Array {
    return this.model.logits(ids);
  }
  encode(text: string): number[] {
    return this.model.encode(text);
  }
  dispose(): void {
    this.model.dispose();
  }
}

/** What this engine and device report about themselves. */
export function diagnostics(engine: Engine | null, choice: BuildChoice): Diagnostics {
  const g = globalThis as unknown as {
    navigator?: { userAgent?: string; hardwareConcurrency?: number; deviceMemory?: number };
    crossOriginIsolated?: boolean;
    WorkerGlobalScope?: unknown;
  };
  const nav = g.navigator;
  let res: number | null = null;
  if (typeof performance !== 'undefined') {
    // the smallest step performance.now() takes here
    let smallest = Infinity;
    let last = performance.now();
    for (let i = 0; i < 2000 && smallest > 0.0005; i++) {
      const t = performance.now();
      if (t > last) {
        smallest = Math.min(smallest, t - last);
        last = t;
      }
    }
    res = Number.isFinite(smallest) ? Math.round(smallest * 1e6) / 1e6 : null;
  }
  return {
    simd: engineHasSimd(),
    build: engine?.build ?? pickBuild(choice),
    worker: isWorkerScope(),
    userAgent: nav?.userAgent ?? null,
    hardwareConcurrency: nav?.hardwareConcurrency ?? null,
    deviceMemoryGiB: nav?.deviceMemory ?? null,
    crossOriginIsolated: typeof g.crossOriginIsolated === 'boolean' ? g.crossOriginIsolated : null,
    timerResolutionMs: res,
    memoryBytes: engine ? engine.model.memoryBytes() : 0,
    simdPeak: peakHere(res),
  };
}

let peak: SimdPeak | null = null;

/** The SIMD ceiling, measured once (timed calls long enough for the clock's resolution). */
function peakHere(resolutionMs: number | null): SimdPeak {
  if (peak === null) {
    const simd = engineHasSimd();
    peak = measureSimdPeak(
      simd ? { value: true, source: 'a SIMD module validates' } : { value: false, source: 'no SIMD module validates' },
      undefined,
      Math.max(15, Math.ceil(40 * (resolutionMs ?? 0))),
    );
  }
  return peak;
}

export function isWorkerScope(): boolean {
  const g = globalThis as unknown as { WorkerGlobalScope?: new () => unknown; importScripts?: unknown };
  return typeof g.WorkerGlobalScope === 'function' && globalThis instanceof g.WorkerGlobalScope;
}
