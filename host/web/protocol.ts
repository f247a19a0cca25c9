// Messages between the page (client.ts) and the Web Worker (worker.ts). Plain structured-clone
// data only: no SharedArrayBuffer, no functions. Every request carries an id; the worker answers
// with 'result' or 'error' for that id, and streams 'progress' / 'token' messages before it.

import type { SimdPeak } from '../runtime/probe/throughput.js';
import type { GenerateOptions } from '../runtime/api.js';

/** Where a model comes from: a URL (fetched in the worker), bytes, or a File/Blob. */
export type ModelSource = string | URL | ArrayBuffer | Uint8Array | Blob;

/** Where a load's bytes came from: persistent storage, the network, or the app (bytes, File). */
export type LoadSource = 'cache' | 'network' | 'memory';

/** Something the load could not do that did not stop it (the model still runs from memory). */
export interface StorageWarning {
  /** STORAGE_QUOTA: storage is full; STORAGE_FAILED: another write failure; STORAGE_UNAVAILABLE:
   *  no Cache API here; CACHE_REJECTED: a stored copy failed its SHA-256 check or could not be
   *  read (fetched again). */
  code: 'STORAGE_QUOTA' | 'STORAGE_FAILED' | 'STORAGE_UNAVAILABLE' | 'CACHE_REJECTED';
  message: string;
}

/** Which module build to run: picked by feature detection ('auto'), or forced. */
export type BuildChoice = 'auto' | 'simd' | 'scalar' | 'relaxed';
/** A module build: SIMD (the default), scalar, or the opt-in relaxed-SIMD build. */
export type WebBuild = 'simd' | 'scalar' | 'relaxed';

export type Request =
  | {
      id: number;
      type: 'load';
      source: string | ArrayBuffer | Blob;
      build: BuildChoice;
      wasm?: { simd?: string | ArrayBuffer; scalar?: string | ArrayBuffer; relaxed?: string | ArrayBuffer };
      sha256?: string;
      cache: boolean;
      memoryBudget?: number;
    }
  | { id: number; type: 'generate'; prompt: string | number[]; options: Omit<GenerateOptions, 'signal'> }
  /** Stops request `target` (a load or a generation) if it has not ended; answered by nothing:
   *  the target ends with an 'error' of code ABORTED. */
  | { id: number; type: 'abort'; target: number; reason: string }
  | { id: number; type: 'logits'; ids: number[] }
  | { id: number; type: 'encode'; text: string }
  | { id: number; type: 'diagnostics' }
  | { id: number; type: 'unload' };

export interface LoadInfo {
  name: string;
  build: WebBuild;
  /** Why another build than the one asked for runs (the relaxed build refused here), else null. */
  buildNote: string | null;
  fileBytes: number;
  parameters: number;
  tokenizer: string;
  vocabSize: number;
  contextLength: number;
  loadMs: number;
  /** Bytes of the module's linear memory after loading. */
  memoryBytes: number;
  /** Where the bytes came from. */
  source: LoadSource;
  /** The model is in persistent storage (the Cache API) now. */
  stored: boolean;
  /** The file's SHA-256 (hex) when it was computed: a sha256 was given, or the file was cached. */
  sha256: string | null;
  /** What the load could not do that did not stop it (also given to onWarning as it happens). */
  warnings: StorageWarning[];
}

export interface TokenEvent {
  id: number;
  text: string;
  ms: number;
}

export interface GenerationStats {
  promptIds: number[];
  ids: number[];
  text: string;
  prefillMs: number;
  decodeMs: number;
  /** Milliseconds per generated token, in order. */
  tokenMs: number[];
  tokensPerSecond: number | null;
  memoryBytes: number;
}

export interface Diagnostics {
  /** This engine validates a WebAssembly SIMD module. */
  simd: boolean;
  /** The build a model was (or would be) loaded with. */
  build: WebBuild;
  /** Running inside a dedicated Web Worker. */
  worker: boolean;
  userAgent: string | null;
  hardwareConcurrency: number | null;
  /** navigator.deviceMemory (GiB, Chromium only), or null. */
  deviceMemoryGiB: number | null;
  crossOriginIsolated: boolean | null;
  /** Resolution of performance.now() seen here, in ms (WebKit rounds to 1 ms). */
  timerResolutionMs: number | null;
  /** Module memory now, 0 before a model is loaded. */
  memoryBytes: number;
  /** The engine's SIMD ceiling here, one thread (as itera diag measures it): G multiply-adds/s of
   *  f32x4.mul + f32x4.add and of i32x4.dot_i16x8_s + i32x4.add, or null with the reason.
   *  Measured once per worker, at the first diagnostics call (about half a second). */
  simdPeak: SimdPeak;
}

export type Reply =
  | { id: number; type: 'progress'; loaded: number; total: number | null; source: LoadSource }
  | { id: number; type: 'warning'; warning: StorageWarning }
  | { id: number; type: 'token'; token: TokenEvent }
  | { id: number; type: 'result'; value: unknown }
  | { id: number; type: 'error'; message: string; code: string };
