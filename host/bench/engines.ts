// The engines a benchmark runs side by side, behind one interface: our WebAssembly runtime, and
// ONNX Runtime (native through onnxruntime-node, WebAssembly through onnxruntime-web) running our
// model exported as ONNX (host/export), plus the original's own ONNX export as a reference point.
// Every engine is single-threaded and greedy, and is fed the same token ids.

import type { IteraModel } from '../runtime/api.js';
import type { SamplerSettings } from '../runtime/runtime.js';
import { exportOnnx, stateNames } from '../export/itera-onnx.js';
import type { IteraModelFile } from '../runtime/model-file.js';

export interface DecodeRun {
  /** generated ids (greedy) */
  ids: number[];
  /** milliseconds of each generated token */
  perTokenMs: number[];
  totalMs: number;
}

/** A generation through the public API (IteraModel.generate or .stream), timed by wall clock */
export interface ApiRun {
  ms: number;
  ids: number[];
}

export interface BenchEngine {
  id: string;
  label: string;
  /** what runs underneath, e.g. 'onnxruntime-node 1.30.0, CPU execution provider, 1 thread' */
  runtime: string;
  /** ms to create the engine's session(s) from bytes already in memory */
  loadMs: number;
  /** what this engine can do: the original's reference export only runs full windows */
  can: { prefill: boolean; decode: boolean; score: boolean };
  /** the prompt -> last position's logits, argmax (the first token). Returns the token. */
  prefill(ids: readonly number[]): Promise<number>;
  /** every position's logits */
  score(ids: readonly number[]): Promise<void>;
  /** greedy generation of n tokens after a prompt, one engine call per token */
  decode(prompt: readonly number[], n: number): Promise<DecodeRun>;
  /** bytes of WebAssembly memory the engine uses now, or null with the reason */
  wasmMemory(): { value: number | null; reason?: string };
  dispose(): Promise<void>;
}

export function argmax(a: ArrayLike<number>, from = 0, n = a.length - from): number {
  let best = 0;
  let bv = -Infinity;
  for (let i = 0; i < n; i++) {
    const v = a[from + i]!;
    if (v > bv) {
      bv = v;
      best = i;
    }
  }
  return best;
}

// ---------------------------------------------------------------------------------------------
// Ours

const BUILD_NAMES = { simd: 'SIMD', scalar: 'scalar', relaxed: 'relaxed-SIMD' } as const;

export function itera(
  model: IteraModel,
  label = 'Itera-Lite (WebAssembly)',
  loadMs = model.loadMs,
  id = 'itera',
): BenchEngine & {
  decodeOneCall(prompt: readonly number[], n: number): number;
  /** ms to decode n tokens with these sampling settings, exactly as decode() (one call per token,
   *  the clock read per token) */
  decodeSampled(prompt: readonly number[], n: number, o: SamplerSettings): number;
  /** the public API: ms and ids of model.generate() for n tokens after the prompt (one call) */
  generateApi(prompt: readonly number[], n: number, o: SamplerSettings): ApiRun;
  /** ...and of iterating model.stream() with the same options to its end */
  streamApi(prompt: readonly number[], n: number, o: SamplerSettings): Promise<ApiRun>;
} {
  const s = model.session();
  s.setSampler({ temperature: 0 });
  const V = model.config.vocabSize;
  // sampled decoding runs in its own session, so that the greedy one keeps its settings
  const sampled = model.session();
  const perToken: number[] = [];
  return {
    id,
    label,
    runtime: `itera-lite WebAssembly module (${BUILD_NAMES[model.info().build]} build), 1 thread`,
    loadMs,
    can: { prefill: true, decode: true, score: true },
    async prefill(ids) {
      s.reset();
      s.prefill(ids);
      return argmax(s.logits(), 0, V);
    },
    async score(ids) {
      s.reset();
      s.prefill(ids, true);
    },
    async decode(prompt, n) {
      s.reset();
      s.prefill(prompt);
      const ids: number[] = [];
      const perTokenMs: number[] = [];
      const t0 = performance.now();
      let last = t0;
      for (let i = 0; i < n; i++) {
        ids.push(s.next());
        const t = performance.now();
        perTokenMs.push(t - last);
        last = t;
      }
      return { ids, perTokenMs, totalMs: last - t0 };
    },
    decodeSampled(prompt, n, o) {
      sampled.reset();
      sampled.setSampler(o);
      sampled.prefill(prompt);
      perToken.length = 0;
      const t0 = performance.now();
      let last = t0;
      for (let i = 0; i < n; i++) {
        sampled.next();
        const t = performance.now();
        perToken.push(t - last);
        last = t;
      }
      return last - t0;
    },
    decodeOneCall(prompt, n) {
      s.reset();
      s.prefill(prompt);
      const t0 = performance.now();
      s.generate(n, -1);
      return performance.now() - t0;
    },
    generateApi(prompt, n, o) {
      const t0 = performance.now();
      const ids = model.generate(prompt, { ...o, maxTokens: n, stopAtEos: false }).ids;
      return { ms: performance.now() - t0, ids };
    },
    async streamApi(prompt, n, o) {
      const ids: number[] = [];
      const t0 = performance.now();
      for await (const t of model.stream(prompt, { ...o, maxTokens: n, stopAtEos: false })) ids.push(t.id);
      return { ms: performance.now() - t0, ids };
    },
    wasmMemory: () => ({ value: model.memoryBytes() }),
    async dispose() {
      s.free();
      sampled.free();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// ONNX Runtime (the subset of its API used here; onnxruntime-node and -web share it)

interface OrtTensor {
  data: unknown;
  dims: readonly number[];
}
interface OrtSession {
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  release?(): Promise<void>;
}
export interface OrtApi {
  Tensor: new (type: string, data: unknown, dims: readonly number[]) => OrtTensor;
  InferenceSession: { create(bytes: Uint8Array, opts?: Record<string, unknown>): Promise<OrtSession> };
  env: { versions?: Record<string, string>; wasm?: { numThreads?: number; wasmPaths?: unknown; simd?: boolean } };
}

export type OrtFlavour = 'node' | 'web';

export interface OrtLoaded {
  api: OrtApi;
  version: string;
}

/** Loads onnxruntime-node or onnxruntime-web (one thread). wasmDir: onnxruntime-web's dist/
 *  folder as a file: URL (Node needs it to find the .wasm). */
export async function loadOrt(flavour: OrtFlavour, wasmDir?: string): Promise<OrtLoaded> {
  if (flavour === 'node') {
    const m = (await import('onnxruntime-node')) as unknown as OrtApi & { default?: OrtApi };
    const api = (m.InferenceSession ? m : m.default!) as OrtApi;
    return { api, version: api.env.versions?.node ?? api.env.versions?.common ?? '?' };
  }
  const m = (await import('onnxruntime-web')) as unknown as OrtApi & { default?: OrtApi };
  const api = (m.InferenceSession ? m : m.default!) as OrtApi;
  if (api.env.wasm) {
    api.env.wasm.numThreads = 1;
    if (wasmDir) api.env.wasm.wasmPaths = wasmDir;
  }
  return { api, version: api.env.versions?.web ?? api.env.versions?.common ?? '?' };
}

function sessionOptions(flavour: OrtFlavour): Record<string, unknown> {
  return flavour === 'node'
    ? { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' }
    : { executionProviders: ['wasm'], graphOptimizationLevel: 'all' };
}

const i64 = (ids: readonly number[]): BigInt64Array => BigInt64Array.from(ids, (x) => BigInt(x));

/** ONNX Runtime running our model: the 'last' graph for prefill, 'full' for scoring, 'step'
 *  (with the recurrent state) for decoding. The graphs are exported here from the model file. */
export async function ortItera(ort: OrtLoaded, flavour: OrtFlavour, file: IteraModelFile): Promise<BenchEngine> {
  const c = file.config;
  const t0 = performance.now();
  const so = sessionOptions(flavour);
  const full = await ort.api.InferenceSession.create(exportOnnx(file, { kind: 'full' }), so);
  const last = await ort.api.InferenceSession.create(exportOnnx(file, { kind: 'last' }), so);
  const step = await ort.api.InferenceSession.create(exportOnnx(file, { kind: 'step' }), so);
  const loadMs = performance.now() - t0;
  const T = ort.api.Tensor;
  const zeroState = (): Record<string, OrtTensor> => {
    const feeds: Record<string, OrtTensor> = {};
    for (let l = 0; l < c.numLayers; l++) {
      const st = stateNames(l);
      feeds[st.convIn] = new T('float32', new Float32Array((c.ssmConvKernel - 1) * c.ssmInnerSize), [
        c.ssmConvKernel - 1,
        c.ssmInnerSize,
      ]);
      feeds[st.ssmIn] = new T('float32', new Float32Array(c.ssmStateSize), [c.ssmStateSize]);
    }
    return feeds;
  };
  const stepOnce = async (feeds: Record<string, OrtTensor>, id: number, pos: number): Promise<Float32Array> => {
    feeds.input_ids = new T('int64', i64([id]), [1, 1]);
    feeds.position = new T('int64', i64([pos]), [1]);
    const r = await step.run(feeds);
    for (let l = 0; l < c.numLayers; l++) {
      const st = stateNames(l);
      feeds[st.convIn] = r[st.convOut]!;
      feeds[st.ssmIn] = r[st.ssmOut]!;
    }
    return r.logits!.data as Float32Array;
  };
  return {
    id: `ort-${flavour}`,
    label: flavour === 'node' ? 'ONNX Runtime native' : 'ONNX Runtime WASM',
    runtime:
      flavour === 'node'
        ? `onnxruntime-node ${ort.version}, CPU execution provider, intra/inter-op threads 1`
        : `onnxruntime-web ${ort.version}, wasm execution provider, numThreads 1`,
    loadMs,
    can: { prefill: true, decode: true, score: true },
    async prefill(ids) {
      const r = await last.run({ input_ids: new T('int64', i64(ids), [1, ids.length]) });
      return argmax(r.logits!.data as Float32Array);
    },
    async score(ids) {
      await full.run({ input_ids: new T('int64', i64(ids), [1, ids.length]) });
    },
    async decode(prompt, n) {
      const feeds = zeroState();
      let logits: Float32Array = new Float32Array(0);
      for (let i = 0; i < prompt.length; i++) logits = await stepOnce(feeds, prompt[i]!, i);
      const ids: number[] = [];
      const perTokenMs: number[] = [];
      const t0 = performance.now();
      let prev = t0;
      let pos = prompt.length;
      for (let i = 0; i < n; i++) {
        const id = argmax(logits);
        ids.push(id);
        logits = await stepOnce(feeds, id, pos++);
        const t = performance.now();
        perTokenMs.push(t - prev);
        prev = t;
      }
      return { ids, perTokenMs, totalMs: prev - t0 };
    },
    wasmMemory: () =>
      flavour === 'node'
        ? { value: null, reason: 'ONNX Runtime native runs no WebAssembly (its memory is part of the process RSS)' }
        : { value: null, reason: "onnxruntime-web does not expose its module's memory size through its API" },
    async dispose() {
      await full.release?.();
      await last.release?.();
      await step.release?.();
    },
  };
}

/** The original's own ONNX export (input 'input' int64 [batch, 128] -> 'output' [batch, 128, V]):
 *  a different model's weights, so a speed reference only. It runs whole windows: scoring and
 *  prefill are one forward over the window; generating a token costs one whole forward (the
 *  original's generator recomputed the window for every token). */
export async function ortReference(
  ort: OrtLoaded,
  flavour: OrtFlavour,
  bytes: Uint8Array,
  window: number,
): Promise<BenchEngine> {
  const t0 = performance.now();
  const sess = await ort.api.InferenceSession.create(bytes, sessionOptions(flavour));
  const loadMs = performance.now() - t0;
  const T = ort.api.Tensor;
  const pad = (ids: readonly number[]): BigInt64Array => {
    const a = new BigInt64Array(window);
    for (let i = 0; i < window; i++) a[i] = BigInt(ids[i % ids.length]!);
    return a;
  };
  const forward = async (ids: readonly number[]): Promise<Float32Array> =>
    (await sess.run({ input: new T('int64', pad(ids), [1, window]) })).output!.data as Float32Array;
  return {
    id: `reference-ort-${flavour}`,
    label: `original's ONNX export, ONNX Runtime ${flavour === 'node' ? 'native' : 'WASM'}`,
    runtime: `${flavour === 'node' ? 'onnxruntime-node' : 'onnxruntime-web'} ${ort.version}, 1 thread, the original's export (fixed window of ${window})`,
    loadMs,
    can: { prefill: true, decode: true, score: true },
    async prefill(ids) {
      const out = await forward(ids);
      const V = out.length / window;
      return argmax(out, (window - 1) * V, V);
    },
    async score(ids) {
      await forward(ids);
    },
    async decode(prompt, n) {
      // window recomputation: one full forward per token (as the original generated)
      const ctx = [...prompt];
      const ids: number[] = [];
      const perTokenMs: number[] = [];
      const t0 = performance.now();
      let prev = t0;
      for (let i = 0; i < n; i++) {
        const out = await forward(ctx.slice(-window));
        const V = out.length / window;
        const id = argmax(out, (Math.min(ctx.length, window) - 1) * V, V);
        ids.push(id);
        ctx.push(id);
        const t = performance.now();
        perTokenMs.push(t - prev);
        prev = t;
      }
      return { ids, perTokenMs, totalMs: prev - t0 };
    },
    wasmMemory: () => ({
      value: null,
      reason:
        flavour === 'node'
          ? 'ONNX Runtime native runs no WebAssembly'
          : "onnxruntime-web does not expose its module's memory size",
    }),
    async dispose() {
      await sess.release?.();
    },
  };
}
