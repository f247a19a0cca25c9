// The page side: IteraWeb runs a model in a Web Worker (created from this same bundle file) and
// streams its tokens. Nothing here blocks: every call is a message to the worker.
//
//   const itera = IteraWeb.start();
//   await itera.load('models/student-q8_0.gguf', { onProgress: (l, t) => ... });
//   for await (const tok of itera.stream('Once upon a time', { maxTokens: 32 })) out.textContent += tok.text;
//   const stats = itera.lastStats;  // tokens/s, per-token ms, memory

import type { GenerateOptions } from '../runtime/api.js';
import { startWorker } from './worker-source.js';
import type {
  BuildChoice,
  Diagnostics,
  GenerationStats,
  LoadInfo,
  ModelSource,
  Reply,
  Request,
  TokenEvent,
} from './protocol.js';

export interface StartOptions {
  /** The script the worker runs (default: this bundle itself in dist/web/itera.js, worker.js
   *  beside it in dist/web/itera.module.js). */
  workerUrl?: string | URL;
  /** 'auto' (feature detection, default), or force 'simd' / 'scalar'; or 'relaxed', the opt-in
   *  relaxed-SIMD build, used only where the engine validates it and its self-test passes (else
   *  the SIMD build, with LoadInfo.buildNote and a console warning saying why). */
  build?: BuildChoice;
  /** Where the module builds are, if not beside the bundle (URLs or bytes). */
  wasm?: { simd?: string | ArrayBuffer; scalar?: string | ArrayBuffer; relaxed?: string | ArrayBuffer };
}

export interface LoadOptions {
  onProgress?: (loaded: number, total: number | null) => void;
}

/** An error from the worker, with the runtime's error code. */
export class IteraWebError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = 'IteraWebError';
  }
}

type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;

type Pending = {
  resolve(v: unknown): void;
  reject(e: Error): void;
  onProgress?: LoadOptions['onProgress'];
  onToken?: (t: TokenEvent) => void;
};

export class IteraWeb {
  private next = 1;
  private readonly pending = new Map<number, Pending>();
  /** Statistics of the last finished generation. */
  lastStats: GenerationStats | null = null;
  info: LoadInfo | null = null;

  private constructor(
    private readonly worker: Worker,
    private readonly opts: StartOptions,
  ) {
    worker.addEventListener('message', (ev: MessageEvent<Reply>) => this.onReply(ev.data));
    worker.addEventListener('error', (ev: ErrorEvent) => {
      const err = new IteraWebError(
        `the worker failed: ${ev.message || 'it could not start (is the bundle served over http(s), with module workers allowed?)'}`,
        'WORKER',
      );
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    });
  }

  /** Starts a worker running the bundle (or workerUrl). */
  static start(opts: StartOptions = {}): IteraWeb {
    const worker =
      opts.workerUrl !== undefined ? new Worker(opts.workerUrl, { type: 'module', name: 'itera' }) : startWorker();
    return new IteraWeb(worker, opts);
  }

  private onReply(r: Reply): void {
    const p = this.pending.get(r.id);
    if (!p) return;
    if (r.type === 'progress') p.onProgress?.(r.loaded, r.total);
    else if (r.type === 'token') p.onToken?.(r.token);
    else {
      this.pending.delete(r.id);
      if (r.type === 'result') p.resolve(r.value);
      else p.reject(new IteraWebError(r.message, r.code));
    }
  }

  private call<T>(
    req: DistributiveOmit<Request, 'id'>,
    extra: Partial<Pending> = {},
    transfer: Transferable[] = [],
  ): Promise<T> {
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, ...extra });
      this.worker.postMessage({ ...req, id } as Request, transfer);
    });
  }

  /** Loads a model from a URL, an ArrayBuffer / Uint8Array (copied) or a File/Blob, validating it. */
  async load(source: ModelSource, o: LoadOptions = {}): Promise<LoadInfo> {
    let src: string | ArrayBuffer | Blob;
    if (typeof source === 'string') src = new URL(source, globalThis.location?.href).href;
    else if (source instanceof URL) src = source.href;
    else if (source instanceof Uint8Array) src = source.slice().buffer;
    else src = source;
    this.info = await this.call<LoadInfo>(
      { type: 'load', source: src, build: this.opts.build ?? 'auto', wasm: this.opts.wasm },
      { onProgress: o.onProgress },
    );
    return this.info;
  }

  /** Generates, calling onToken for each token as the worker makes it. */
  generate(
    prompt: string | number[],
    options: GenerateOptions = {},
    onToken?: (t: TokenEvent) => void,
  ): Promise<GenerationStats> {
    return this.call<GenerationStats>({ type: 'generate', prompt, options }, { onToken }).then((s) => {
      this.lastStats = s;
      return s;
    });
  }

  /** The tokens as an async iterator; lastStats is set when it ends. */
  async *stream(prompt: string | number[], options: GenerateOptions = {}): AsyncGenerator<TokenEvent, GenerationStats> {
    const queue: TokenEvent[] = [];
    let wake: (() => void) | null = null;
    let finished = false;
    let failure: unknown = null;
    const done = this.generate(prompt, options, (t) => {
      queue.push(t);
      wake?.();
    })
      .catch((e: unknown) => {
        failure = e;
        return null;
      })
      .finally(() => {
        finished = true;
        wake?.();
      });
    for (;;) {
      while (queue.length) yield queue.shift()!;
      if (finished) break;
      await new Promise<void>((r) => {
        wake = r;
      });
      wake = null;
    }
    const stats = await done;
    if (failure !== null || stats === null) throw failure;
    return stats;
  }

  /** Every position's logits [n * V]. */
  logits(ids: number[]): Promise<Float32Array> {
    return this.call<Float32Array>({ type: 'logits', ids });
  }
  encode(text: string): Promise<number[]> {
    return this.call<number[]>({ type: 'encode', text });
  }
  diagnostics(): Promise<Diagnostics> {
    return this.call<Diagnostics>({ type: 'diagnostics' });
  }
  unload(): Promise<void> {
    return this.call<void>({ type: 'unload' });
  }
  terminate(): void {
    this.worker.terminate();
    const err = new IteraWebError('the worker was terminated', 'TERMINATED');
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }
}
