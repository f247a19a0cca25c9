// The page side: IteraWeb runs a model in a Web Worker (created from this same bundle file) and
// streams its tokens. Nothing here blocks: every call is a message to the worker.
//
//   const itera = IteraWeb.start();
//   await itera.load('models/student-q8_0.gguf', { sha256, onProgress: (l, t, source) => ... });
//   for await (const tok of itera.stream('Once upon a time', { maxTokens: 32 })) out.textContent += tok.text;
//   const stats = itera.lastStats;  // tokens/s, per-token ms, memory

import type { GenerateOptions } from '../runtime/api.js';
import { startWorker } from './worker-source.js';
import type {
  BuildChoice,
  Diagnostics,
  GenerationStats,
  LoadInfo,
  LoadSource,
  ModelSource,
  Reply,
  Request,
  StorageWarning,
  TokenEvent,
} from './protocol.js';
import { abortReason, CACHE_NAME } from './store.js';

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
  /** After an abort, how long the worker has to end the aborted request before it is terminated
   *  and a new one started in its place (its model then gone). Default 3000 ms; 0: terminate at
   *  once, without waiting. */
  abortGraceMs?: number;
}

export interface LoadOptions {
  /** Bytes read so far, of total (null: not known), and where from: 'cache' (persistent
   *  storage), 'network', or 'memory' (bytes or a File the app gave). */
  onProgress?: (loaded: number, total: number | null, source: LoadSource) => void;
  /** What could not be done without stopping the load: storage full (STORAGE_QUOTA), a stored
   *  copy that failed its hash (CACHE_REJECTED, fetched again), no storage here. */
  onWarning?: (warning: StorageWarning) => void;
  /** The file's SHA-256 (64 hex digits): the bytes are checked against it before use, from
   *  storage or from the network. Give it from the app's own code, not from the server. */
  sha256?: string;
  /** Keep a URL's model in persistent storage and look there first. Default: true when sha256 is
   *  given (a stored copy is used only when it has that hash); it needs sha256. */
  cache?: boolean;
  /** Bytes this load may take at its peak (the worker's copy of the file + the module's memory);
   *  a model over it is refused before its memory is taken, with code MEMORY_BUDGET. */
  memoryBudget?: number;
  /** Stops the load (code ABORTED); the worker is then free, with no model loaded. */
  signal?: AbortSignal;
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
  onWarning?: LoadOptions['onWarning'];
  onToken?: (t: TokenEvent) => void;
};

function abortedError(what: string, signal: AbortSignal): IteraWebError {
  const why = abortReason(signal);
  const e = new IteraWebError(`${what} aborted${why ? ': ' + why : ''}`, 'ABORTED');
  e.name = 'AbortError';
  return e;
}

export class IteraWeb {
  private next = 1;
  private readonly pending = new Map<number, Pending>();
  /** Statistics of the last finished generation. */
  lastStats: GenerationStats | null = null;
  info: LoadInfo | null = null;

  private worker: Worker;
  /** Workers started in place of one that did not end an aborted request in time. */
  restarts = 0;

  private constructor(private readonly opts: StartOptions) {
    this.worker = this.spawn();
  }

  private spawn(): Worker {
    const o = this.opts;
    const worker =
      o.workerUrl !== undefined ? new Worker(o.workerUrl, { type: 'module', name: 'itera' }) : startWorker();
    worker.addEventListener('message', (ev: MessageEvent<Reply>) => {
      if (worker === this.worker) this.onReply(ev.data);
    });
    worker.addEventListener('error', (ev: ErrorEvent) => {
      if (worker !== this.worker) return;
      this.failAll(
        new IteraWebError(
          `the worker failed: ${ev.message || 'it could not start (is the bundle served over http(s), with module workers allowed?)'}`,
          'WORKER',
        ),
      );
    });
    return worker;
  }

  private failAll(err: Error): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  /** Starts a worker running the bundle (or workerUrl). */
  static start(opts: StartOptions = {}): IteraWeb {
    return new IteraWeb(opts);
  }

  /** Removes a model (by its URL, as given to load) or every model from persistent storage.
   *  Resolves true when something was removed. */
  static async clearCache(url?: string | URL): Promise<boolean> {
    const cs = (globalThis as { caches?: CacheStorage }).caches;
    if (!cs) return false;
    if (url === undefined) return cs.delete(CACHE_NAME);
    const cache = await cs.open(CACHE_NAME);
    return cache.delete(new URL(url, globalThis.location?.href).href);
  }

  private onReply(r: Reply): void {
    const p = this.pending.get(r.id);
    if (!p) return;
    if (r.type === 'progress') p.onProgress?.(r.loaded, r.total, r.source);
    else if (r.type === 'warning') p.onWarning?.(r.warning);
    else if (r.type === 'token') p.onToken?.(r.token);
    else {
      this.pending.delete(r.id);
      if (r.type === 'result') p.resolve(r.value);
      else {
        const e = new IteraWebError(r.message, r.code);
        if (r.code === 'ABORTED') e.name = 'AbortError';
        p.reject(e);
      }
    }
  }

  private call<T>(
    req: DistributiveOmit<Request, 'id'>,
    extra: Partial<Pending> = {},
    transfer: Transferable[] = [],
    signal?: AbortSignal,
  ): Promise<T> {
    const id = this.next++;
    const what = req.type === 'load' ? 'loading the model' : 'generation';
    if (signal?.aborted) return Promise.reject(abortedError(what, signal));
    return new Promise<T>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      // the worker ends the request with ABORTED; one that does not within the grace time is
      // terminated, and a new worker (without a model) takes its place
      const grace = this.opts.abortGraceMs ?? 3000;
      const giveUp = (): void => {
        if (!this.pending.has(id)) return;
        this.pending.get(id)!.reject(abortedError(what, signal!));
        this.pending.delete(id);
        this.restart(grace === 0 ? 'abortGraceMs is 0' : `the worker did not end an aborted request in ${grace} ms`);
      };
      const onAbort = (): void => {
        if (grace <= 0) return giveUp();
        this.worker.postMessage({
          type: 'abort',
          target: id,
          id: this.next++,
          reason: abortReason(signal!),
        } as Request);
        timer = setTimeout(giveUp, grace);
      };
      const settle = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.pending.set(id, {
        resolve: (v) => {
          settle();
          resolve(v as T);
        },
        reject: (e) => {
          settle();
          reject(e);
        },
        ...extra,
      });
      this.worker.postMessage({ ...req, id } as Request, transfer);
    });
  }

  /** Terminates the worker (rejecting what it had to do) and starts a new one, with no model. */
  private restart(why: string): void {
    this.worker.terminate();
    this.failAll(new IteraWebError(`the worker was restarted: ${why}`, 'TERMINATED'));
    this.info = null;
    this.restarts++;
    this.worker = this.spawn();
  }

  /** Loads a model from a URL, an ArrayBuffer / Uint8Array (copied) or a File/Blob, validating it.
   *  With sha256, a URL's model is kept in persistent storage and checked before every use. */
  async load(source: ModelSource, o: LoadOptions = {}): Promise<LoadInfo> {
    let src: string | ArrayBuffer | Blob;
    if (typeof source === 'string') src = new URL(source, globalThis.location?.href).href;
    else if (source instanceof URL) src = source.href;
    else if (source instanceof Uint8Array) src = source.slice().buffer;
    else src = source;
    this.info = null;
    this.info = await this.call<LoadInfo>(
      {
        type: 'load',
        source: src,
        build: this.opts.build ?? 'auto',
        wasm: this.opts.wasm,
        sha256: o.sha256,
        cache: o.cache ?? o.sha256 !== undefined,
        memoryBudget: o.memoryBudget,
      },
      { onProgress: o.onProgress, onWarning: o.onWarning },
      [],
      o.signal,
    );
    return this.info;
  }

  /** Generates, calling onToken for each token as the worker makes it. options.signal stops it
   *  (code ABORTED) between two tokens; the model stays loaded for the next request. */
  generate(
    prompt: string | number[],
    options: GenerateOptions = {},
    onToken?: (t: TokenEvent) => void,
  ): Promise<GenerationStats> {
    const { signal, ...rest } = options;
    return this.call<GenerationStats>({ type: 'generate', prompt, options: rest }, { onToken }, [], signal).then(
      (s) => {
        this.lastStats = s;
        return s;
      },
    );
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
