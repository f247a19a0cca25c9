// Where a model's bytes come from in the worker: persistent storage (the Cache API) or the network,
// checked against the SHA-256 the app gives before anything uses them, with progress from either
// place, a memory budget checked before the download, and an AbortSignal.
//
// The Cache API rather than the origin private file system: it is in every engine we run on
// (Chromium, WebKit, in pages and in workers), a cached entry reads back as a stream (so loading
// from storage reports progress like a download), and one put() writes it. Writing to OPFS from a
// worker needs createWritable (which WebKit shipped only recently) or sync access handles.

import { IteraError } from '../runtime/types.js';
import { checkBudget, roughLoadBytes } from './budget.js';
import type { LoadSource, StorageWarning } from './protocol.js';

/** The cache the models are kept in (one entry per model URL). */
export const CACHE_NAME = 'itera-models-v1';

export type Progress = (loaded: number, total: number | null, source: LoadSource) => void;

export interface FetchModelOptions {
  /** Lowercase hex SHA-256 the bytes must have. */
  sha256?: string;
  /** Keep the model in persistent storage, and look there first (needs sha256). */
  cache: boolean;
  memoryBudget?: number;
  signal?: AbortSignal;
  onProgress?: Progress;
  onWarning?: (w: StorageWarning) => void;
}

export interface Fetched {
  bytes: Uint8Array;
  source: LoadSource;
  /** The model is in persistent storage now. */
  stored: boolean;
  sha256: string | null;
}

/** The reason an app gave to abort(reason), as text ('' when none: abort() alone). */
export function abortReason(signal?: AbortSignal): string {
  const r: unknown = signal?.reason;
  return r instanceof Error && r.name !== 'AbortError' ? r.message : typeof r === 'string' ? r : '';
}

/** The error an aborted load ends with (code ABORTED, named like the platform's AbortError). */
export function abortError(what: string, signal?: AbortSignal): IteraError {
  const why = abortReason(signal);
  const e = new IteraError(`${what} aborted${why ? ': ' + why : ''}`, 'ABORTED');
  e.name = 'AbortError';
  return e;
}

function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw abortError(what, signal);
}

/** Checks a sha256 option: 64 hex digits (any case), returned lowercase. */
export function validSha256(h: unknown): string | undefined {
  if (h === undefined) return undefined;
  if (typeof h !== 'string' || !/^[0-9a-fA-F]{64}$/.test(h))
    throw new IteraError(
      `sha256 must be the file's SHA-256 as 64 hex digits (as sha256sum prints it), got ${JSON.stringify(h)}`,
      'BAD_PARAM',
    );
  return h.toLowerCase();
}

/** The SHA-256 of some bytes, in hex (crypto.subtle: only in secure contexts). */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const subtle = (globalThis as { crypto?: Crypto }).crypto?.subtle;
  if (!subtle)
    throw new IteraError(
      'cannot check the SHA-256: crypto.subtle is missing, as it is outside secure contexts; serve the page over https (or from localhost / 127.0.0.1)',
      'INSECURE_CONTEXT',
    );
  const d = new Uint8Array(await subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
  return Array.from(d, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Reads a body to its end, reporting progress; stops when aborted or past the budget. */
export async function readBody(
  body: ReadableStream<Uint8Array>,
  total: number | null,
  source: LoadSource,
  o: { signal?: AbortSignal; onProgress?: Progress; memoryBudget?: number; what?: string },
): Promise<Uint8Array> {
  const reader = body.getReader();
  const parts: Uint8Array[] = [];
  let loaded = 0;
  const stop = (): void => void reader.cancel().catch(() => undefined);
  o.signal?.addEventListener('abort', stop, { once: true });
  try {
    o.onProgress?.(0, total, source);
    for (;;) {
      const { done, value } = await reader.read();
      throwIfAborted(o.signal, `loading the ${o.what ?? 'model'}`);
      if (done) break;
      parts.push(value);
      loaded += value.length;
      // a body of unknown length, or longer than its Content-Length said (a compressed transfer
      // counts the compressed bytes): stop as soon as what has come is over the budget
      if (total === null || loaded > total) {
        checkBudget(
          roughLoadBytes(loaded),
          o.memoryBudget,
          `a file of more than ${loaded} bytes, held by the worker and copied into the module`,
        );
        total = null;
      }
      o.onProgress?.(loaded, total, source);
    }
  } catch (e) {
    stop();
    throw e;
  } finally {
    o.signal?.removeEventListener('abort', stop);
  }
  const out = new Uint8Array(loaded);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function lengthOf(res: Response): number | null {
  const n = Number(res.headers.get('content-length'));
  return Number.isFinite(n) && n > 0 ? n : null;
}

/** Before any byte is read: refuses a file whose size alone puts the load over the budget. */
function checkSize(size: number | null, budget: number | undefined): void {
  if (size !== null)
    checkBudget(
      roughLoadBytes(size),
      budget,
      `its file of ${size} bytes, held by the worker and copied into the module`,
    );
}

/** A response's bytes, with progress, the budget and the signal. */
async function responseBytes(
  res: Response,
  source: LoadSource,
  o: FetchModelOptions,
  what: string,
): Promise<Uint8Array> {
  const total = lengthOf(res);
  try {
    checkSize(total, o.memoryBudget);
  } catch (e) {
    void res.body?.cancel().catch(() => undefined);
    throw e;
  }
  if (!res.body || typeof res.body.getReader !== 'function') {
    const b = new Uint8Array(await res.arrayBuffer());
    throwIfAborted(o.signal, `loading the ${what}`);
    checkSize(b.length, o.memoryBudget);
    o.onProgress?.(b.length, total ?? b.length, source);
    return b;
  }
  return readBody(res.body, total, source, { ...o, what });
}

/** A URL's bytes, reporting progress as they arrive. A failure names the URL and the reason. */
export async function fetchResponse(url: string, signal: AbortSignal | undefined, what: string): Promise<Response> {
  throwIfAborted(signal, `loading the ${what}`);
  let res: Response;
  try {
    res = await fetch(url, signal ? { signal } : undefined);
  } catch (e) {
    throwIfAborted(signal, `loading the ${what}`);
    throw new IteraError(`cannot fetch the ${what} from ${url}: ${(e as Error)?.message ?? String(e)}`, 'FETCH_FAILED');
  }
  if (!res.ok)
    throw new IteraError(
      `cannot fetch the ${what} from ${url}: HTTP ${res.status} ${res.statusText}`.trim(),
      'FETCH_FAILED',
    );
  return res;
}

function openCache(o: FetchModelOptions): Promise<Cache | null> {
  const cs = (globalThis as { caches?: CacheStorage }).caches;
  if (!cs) {
    o.onWarning?.({
      code: 'STORAGE_UNAVAILABLE',
      message:
        'the model cannot be kept in storage: the Cache API is missing (it needs a secure context: https, localhost or 127.0.0.1); it runs from memory and is downloaded again next time',
    });
    return Promise.resolve(null);
  }
  return cs.open(CACHE_NAME).catch((e: unknown) => {
    o.onWarning?.({
      code: 'STORAGE_UNAVAILABLE',
      message: `the model cannot be kept in storage: opening the cache failed (${(e as Error)?.message ?? String(e)}); it runs from memory`,
    });
    return null;
  });
}

/** The model at `url`: from the cache when a copy there has the expected SHA-256 (a copy that does
 *  not is evicted and fetched again), else from the network (checked, then stored). */
export async function fetchModel(url: string, o: FetchModelOptions): Promise<Fetched> {
  const cache = o.cache && o.sha256 !== undefined ? await openCache(o) : null;
  if (cache) {
    const hit = await cache.match(url);
    throwIfAborted(o.signal, 'loading the model');
    if (hit) {
      let why: string;
      try {
        const bytes = await responseBytes(hit, 'cache', o, 'model');
        const got = await sha256Hex(bytes);
        throwIfAborted(o.signal, 'loading the model');
        if (got === o.sha256) return { bytes, source: 'cache', stored: true, sha256: got };
        why = `has SHA-256 ${got}, not ${o.sha256}: it was changed or damaged in storage`;
      } catch (e) {
        const code = (e as { code?: string })?.code;
        if (code === 'ABORTED' || code === 'MEMORY_BUDGET' || code === 'INSECURE_CONTEXT') throw e;
        why = `cannot be read (${(e as Error)?.message ?? String(e)})`;
      }
      await cache.delete(url);
      o.onWarning?.({
        code: 'CACHE_REJECTED',
        message: `the stored copy of ${url} ${why}, so it was removed and the model is downloaded again`,
      });
    }
  }
  const res = await fetchResponse(url, o.signal, 'model');
  const bytes = await responseBytes(res, 'network', o, 'model');
  const got = o.sha256 !== undefined || cache ? await sha256Hex(bytes) : null;
  throwIfAborted(o.signal, 'loading the model');
  if (o.sha256 !== undefined && got !== o.sha256)
    throw new IteraError(
      `the model downloaded from ${url} has SHA-256 ${got}, not the ${o.sha256} the app expects: the server has another file (update the app's hash) or it was altered on the way; it was not used or stored`,
      'HASH_MISMATCH',
    );
  let stored = false;
  if (cache) {
    try {
      await cache.put(
        url,
        new Response(bytes as Uint8Array<ArrayBuffer>, {
          headers: { 'content-type': 'application/octet-stream', 'content-length': String(bytes.length) },
        }),
      );
      stored = true;
    } catch (e) {
      const err = e as { name?: string; message?: string };
      const quota = err?.name === 'QuotaExceededError';
      o.onWarning?.({
        code: quota ? 'STORAGE_QUOTA' : 'STORAGE_FAILED',
        message: quota
          ? `the model (${bytes.length} bytes) cannot be kept in storage: the storage quota is exceeded; it runs from memory and is downloaded again next time (free some storage, or ask for more with navigator.storage.persist())`
          : `the model cannot be kept in storage (${err?.message ?? String(e)}); it runs from memory and is downloaded again next time`,
      });
    }
  }
  return { bytes, source: 'network', stored, sha256: got };
}

/** The bytes of a model given by the app (an ArrayBuffer or a File/Blob): size checked against
 *  the budget first, then read (a Blob as a stream, with progress), then checked against sha256. */
export async function localModel(source: ArrayBuffer | Blob, o: FetchModelOptions): Promise<Fetched> {
  let bytes: Uint8Array;
  if (source instanceof ArrayBuffer) {
    checkSize(source.byteLength, o.memoryBudget);
    bytes = new Uint8Array(source);
    o.onProgress?.(bytes.length, bytes.length, 'memory');
  } else if (typeof Blob !== 'undefined' && source instanceof Blob) {
    checkSize(source.size, o.memoryBudget);
    if (typeof source.stream === 'function')
      bytes = await readBody(source.stream() as ReadableStream<Uint8Array>, source.size, 'memory', o);
    else {
      bytes = new Uint8Array(await source.arrayBuffer());
      o.onProgress?.(bytes.length, bytes.length, 'memory');
    }
  } else {
    throw new IteraError('a model source must be a URL, an ArrayBuffer, a Uint8Array or a File/Blob', 'BAD_SOURCE');
  }
  const got = o.sha256 !== undefined ? await sha256Hex(bytes) : null;
  throwIfAborted(o.signal, 'loading the model');
  if (o.sha256 !== undefined && got !== o.sha256)
    throw new IteraError(
      `the model the app gave has SHA-256 ${got}, not the ${o.sha256} it expects: it is another or a damaged file`,
      'HASH_MISMATCH',
    );
  return { bytes, source: 'memory', stored: false, sha256: got };
}
