// The thin layer between TypeScript and the WebAssembly module: it lays a model's weights into
// linear memory once, writes the descriptor the module reads (assembly/model.ts), and wraps the
// module's sessions. Platform-neutral: it only needs a WebAssembly instance's exports.

import { IteraConfig, IteraError } from './types.js';
import { decodeState, encodeState, fnv1a64 } from './state.js';
import {
  ABI_VERSION,
  D_ABI,
  D_BLOCK,
  D_D,
  D_DI,
  D_E,
  D_EPS,
  D_F,
  D_GLOBALS,
  D_K,
  D_L,
  D_LAYERS,
  D_N,
  D_T,
  D_TOPK,
  D_V,
  ERROR_MESSAGES,
  GLOBAL_TENSORS,
  G_OUTPUT,
  G_POS_EMBD,
  LAYER_TENSORS,
  SLOT_ADDRESS,
  SLOT_EXTRA,
  SLOT_SCALES,
  SLOT_TYPE,
  SLOT_WORDS,
  S_DOWN,
  S_ROUTER,
  S_UP,
  SAMPLER_V1,
  SAMPLER_VERSION,
  WINDOW_EXACT,
  WINDOW_SLIDE,
} from './abi.js';

/** The module's exports (assembly/index.ts). */
export interface IteraExports {
  memory: WebAssembly.Memory;
  abi_version(): number;
  has_simd(): number;
  /** 1 in the relaxed-SIMD build (assembly/index.ts). */
  has_relaxed(): number;
  relaxed_selftest(): number;
  fused_madd(): number;
  alloc(bytes: number): number;
  free(ptr: number): void;
  last_error(): number;
  error_detail(): number;
  model_new(desc: number): number;
  model_free(m: number): void;
  session_new(m: number): number;
  session_free(s: number): void;
  session_reset(s: number): void;
  session_pos(s: number): number;
  session_logits(s: number): number;
  session_set_window(s: number, mode: number): number;
  prefill(s: number, ids: number, n: number, out: number): number;
  sampler_set(s: number, temperature: number, topk: number, topp: number, seedLo: number, seedHi: number): number;
  sampler_set_version(s: number, version: number): number;
  sample(s: number): number;
  generate_next(s: number): number;
  generate(s: number, max: number, out: number, eos: number): number;
  session_state_size(s: number): number;
  session_state_save(s: number, out: number): void;
  session_state_load(s: number, src: number, n: number): number;
  batch_new(m: number): number;
  generate_next_batch(scratch: number, sessions: number, n: number, out: number): number;
}

export { ABI_VERSION } from './abi.js';

/** Model-file tensor names in descriptor order for a configuration. */
export function descriptorTensorNames(c: IteraConfig): string[] {
  const names: string[] = [...GLOBAL_TENSORS];
  for (let l = 0; l < c.numLayers; l++) {
    const moe = c.moeLayers.includes(l);
    LAYER_TENSORS.forEach((s, slot) => {
      const suffix = slot === S_UP || slot === S_DOWN ? (moe ? '_exps.weight' : '.weight') : '';
      names.push(`blk.${l}.${s}${suffix}`);
    });
  }
  return names;
}

/** Which build an instance is: the code a saved state records (host/runtime/state.ts). */
export function buildCode(ex: IteraExports): number {
  return ex.has_relaxed() === 1 ? 2 : ex.has_simd();
}

export function instantiateSync(module: WebAssembly.Module): IteraExports {
  const instance = new WebAssembly.Instance(module, {});
  return checkExports(instance.exports as unknown as IteraExports);
}

export async function instantiate(wasm: BufferSource | WebAssembly.Module): Promise<IteraExports> {
  const instance =
    wasm instanceof WebAssembly.Module
      ? await WebAssembly.instantiate(wasm, {})
      : (await WebAssembly.instantiate(wasm, {})).instance;
  return checkExports(instance.exports as unknown as IteraExports);
}

function checkExports(ex: IteraExports): IteraExports {
  if (typeof ex.abi_version !== 'function' || ex.abi_version() !== ABI_VERSION) {
    throw new IteraError(
      `the WebAssembly module speaks ABI ${typeof ex.abi_version === 'function' ? ex.abi_version() : '?'}, this host speaks ${ABI_VERSION}: rebuild with 'npm run build'`,
      'WASM_ABI',
    );
  }
  return ex;
}

/** A tensor as the model file stores it: its GGUF type and raw little-endian bytes. */
export interface RawModelTensor {
  /** GGUF type: F32 0, F16 1, Q4_0 2, Q8_0 8, I8 24 (with scales and zeroPoint). */
  type: number;
  data: Uint8Array;
  /** I8: one scale per row group (1, or E for stacked experts). */
  scales?: number[];
  zeroPoint?: number;
  /** ssm_c stored transposed ([N, di]). */
  transposed?: boolean;
}

/** Where the runtime gets each tensor of the model. */
export interface WeightSource {
  config: IteraConfig;
  /** The tensor, or null if the model has no such tensor. */
  tensor(name: string): RawModelTensor | null;
}

/** A WeightSource over f32 arrays (tests, converters). */
export function f32Source(config: IteraConfig, get: (name: string) => Float32Array | null | undefined): WeightSource {
  return {
    config,
    tensor(name) {
      const v = get(name);
      return v ? { type: 0, data: new Uint8Array(v.buffer, v.byteOffset, v.byteLength) } : null;
    },
  };
}

/** A model laid into one module instance's memory. Several sessions may share it. */
export class WasmModel {
  readonly ptr: number;
  readonly weightBytes: number;
  /** The model's identity in saved states: FNV-1a 64 (8 bytes) of its model file, as the caller
   *  gives it, or else of its configuration and every tensor's type and bytes. */
  readonly modelHash: Uint8Array;
  private freed = false;
  /** stepBatch's scratch session and its buffer of session pointers and tokens (made on first use). */
  private batch = { scratch: 0, buf: 0, capacity: 0 };

  constructor(
    readonly ex: IteraExports,
    readonly config: IteraConfig,
    src: WeightSource,
    modelHash?: Uint8Array,
  ) {
    const c = config;
    const names = descriptorTensorNames(c);
    const perLayer = LAYER_TENSORS.length;
    const tensors = names.map((n, i) => {
      const layerSlot = i < GLOBAL_TENSORS.length ? -1 : (i - GLOBAL_TENSORS.length) % perLayer;
      const layer = Math.floor((i - GLOBAL_TENSORS.length) / perLayer);
      if (layerSlot === S_ROUTER && !c.moeLayers.includes(layer)) return null; // a dense layer has no router
      const t = src.tensor(n);
      const optional = i === G_OUTPUT || (i === G_POS_EMBD && c.positionEmbedding === false);
      if (t === null && !optional) throw new IteraError(`model is missing tensor '${n}'`, 'MODEL_MISSING_TENSOR');
      return t;
    });
    // one block for every weight, each tensor 16-byte aligned; quantized ones are repacked in place
    const offsets: number[] = [];
    let total = 0;
    for (const t of tensors) {
      offsets.push(total);
      if (t)
        total += Math.ceil(t.data.byteLength / 16) * 16 + (t.scales ? Math.ceil((t.scales.length * 4) / 16) * 16 : 0);
    }
    this.modelHash = modelHash?.slice(0, 8) ?? weightsHash(c, names, tensors);
    const block = ex.alloc(Math.max(16, total));
    const descWords = D_LAYERS + SLOT_WORDS * perLayer * c.numLayers;
    const desc = ex.alloc(descWords * 4);
    try {
      const mem = new Uint8Array(ex.memory.buffer);
      const d = new Uint32Array(ex.memory.buffer, desc, descWords);
      const f = new Float32Array([c.layerNormEps]);
      const fbits = new Uint32Array(f.buffer);
      d[D_ABI] = ABI_VERSION;
      d[D_V] = c.vocabSize;
      d[D_D] = c.hiddenSize;
      d[D_L] = c.numLayers;
      d[D_N] = c.ssmStateSize;
      d[D_K] = c.ssmConvKernel;
      d[D_DI] = c.ssmInnerSize;
      d[D_E] = c.numExperts;
      d[D_F] = c.expertSize;
      d[D_TOPK] = c.topK;
      d[D_T] = c.maxSeqLength;
      d[D_EPS] = fbits[0]!;
      d[D_BLOCK] = block;
      tensors.forEach((t, i) => {
        const w = D_GLOBALS + SLOT_WORDS * i;
        d.fill(0, w, w + SLOT_WORDS);
        if (t === null) return;
        mem.set(t.data, block + offsets[i]);
        d[w + SLOT_ADDRESS] = block + offsets[i];
        d[w + SLOT_TYPE] = t.type;
        if (t.scales) {
          const sp = block + offsets[i] + Math.ceil(t.data.byteLength / 16) * 16;
          new Float32Array(ex.memory.buffer, sp, t.scales.length).set(t.scales);
          d[w + SLOT_SCALES] = sp;
        }
        // the extra word: I8's zero point, or 1 for a transposed ssm_c (assembly/abi.ts)
        d[w + SLOT_EXTRA] = t.transposed ? 1 : (t.zeroPoint ?? 0) >>> 0;
      });
      this.ptr = ex.model_new(desc);
      if (this.ptr === 0) {
        const word = ex.error_detail();
        const slot = word >= D_GLOBALS ? Math.floor((word - D_GLOBALS) / SLOT_WORDS) : -1;
        const what = slot >= 0 && slot < names.length ? `tensor '${names[slot]}'` : `descriptor word ${word}`;
        throw new IteraError(
          `the runtime rejected the model: ${ERROR_MESSAGES[ex.last_error()] ?? 'error ' + ex.last_error()} (${what})`,
          'MODEL_REJECTED',
        );
      }
    } catch (e) {
      ex.free(block);
      throw e;
    } finally {
      ex.free(desc);
    }
    this.weightBytes = total;
  }

  newSession(): WasmSession {
    if (this.freed) throw new IteraError('model was freed', 'FREED');
    return new WasmSession(this);
  }

  /** A new session holding a state saved by WasmSession.save() from a session of this model (in
   *  this instance or another one of the same build). Refused with an IteraError (codes STATE_*,
   *  see WasmSession.restore) when the bytes are not such a state. */
  restore(bytes: Uint8Array): WasmSession {
    const s = this.newSession();
    try {
      s.restore(bytes);
      return s;
    } catch (e) {
      s.free();
      throw e;
    }
  }

  /** One token for each session (all of this model, each at most once, each with a prompt fed):
   *  each draws with its own sampler and settings, then all of them go through the model together,
   *  every weight read once per 8 sessions. Returns the tokens in the sessions' order. The same
   *  tokens, logits and states as session.next() on each in turn, bit for bit; sessions may join
   *  and leave between calls. A session past T in the exact window recomputes its window alone. */
  stepBatch(sessions: readonly WasmSession[]): number[] {
    if (this.freed) throw new IteraError('model was freed', 'FREED');
    const seen = new Set<WasmSession>();
    sessions.forEach((s, i) => {
      if (!(s instanceof WasmSession) || s.model !== this)
        throw new IteraError(`session ${i} of the batch belongs to another model`, 'BAD_PARAM');
      if (s.isFreed) throw new IteraError(`session ${i} of the batch was freed`, 'FREED');
      if (seen.has(s)) throw new IteraError(`session ${i} of the batch appears twice`, 'BAD_PARAM');
      if (s.position === 0)
        throw new IteraError(
          `session ${i} of the batch has nothing to continue: prefill a prompt first`,
          'EMPTY_PROMPT',
        );
      seen.add(s);
    });
    const B = sessions.length;
    if (B === 0) return [];
    const ex = this.ex;
    const b = this.batch;
    if (b.scratch === 0) b.scratch = ex.batch_new(this.ptr);
    if (b.capacity < B) {
      if (b.buf) ex.free(b.buf);
      b.capacity = Math.max(B, 2 * b.capacity, 16);
      b.buf = ex.alloc(b.capacity * 8);
    }
    new Uint32Array(ex.memory.buffer, b.buf, B).set(sessions.map((s) => s.ptr));
    const out = b.buf + b.capacity * 4;
    const rc = ex.generate_next_batch(b.scratch, b.buf, B, out);
    if (rc !== 0) {
      throw new IteraError(
        `runtime error: ${ERROR_MESSAGES[rc] ?? 'code ' + rc} (session ${ex.error_detail()} of the batch)`,
        'RUNTIME',
      );
    }
    return Array.from(new Int32Array(ex.memory.buffer, out, B));
  }

  free(): void {
    if (!this.freed) {
      if (this.batch.scratch) this.ex.session_free(this.batch.scratch);
      if (this.batch.buf) this.ex.free(this.batch.buf);
      this.ex.model_free(this.ptr);
      this.freed = true;
    }
  }
}

/** FNV-1a 64 of a model given as tensors rather than a file: its configuration, then each
 *  tensor's name, type, extras and bytes, in descriptor order. */
function weightsHash(c: IteraConfig, names: string[], tensors: Array<RawModelTensor | null>): Uint8Array {
  const enc = new TextEncoder();
  let h = fnv1a64(enc.encode(JSON.stringify(c)));
  tensors.forEach((t, i) => {
    if (t === null) return;
    const extra = { type: t.type, scales: t.scales ?? null, zeroPoint: t.zeroPoint ?? 0, transposed: !!t.transposed };
    h = fnv1a64(enc.encode(names[i] + JSON.stringify(extra)), h);
    h = fnv1a64(t.data, h);
  });
  return h;
}

export interface SamplerOptions {
  /** 0 = greedy (argmax). Default 0. */
  temperature?: number;
  /** 0 = off. */
  topK?: number;
  /** 1 = off. */
  topP?: number;
  /** any integer 0 .. 2^53-1 */
  seed?: number;
}

/** Sampling parameters and the sampler that uses them. */
export interface SamplerSettings extends SamplerOptions {
  /** The sampler's version (docs/runtime.md, "Sampling"): 1 .. SAMPLER_VERSION (3), the default.
   *  Versions 1 and 2 give the tokens seeds gave before the next one came (greedy is the same in
   *  every one). */
  sampler?: number;
}

/** Checks sampling parameters and says which one is wrong and what is allowed. */
export function validateSampler(o: SamplerSettings, vocabSize: number): Required<SamplerSettings> {
  const temperature = o.temperature ?? 0;
  const topK = o.topK ?? 0;
  const topP = o.topP ?? 1;
  const seed = o.seed ?? 0;
  const sampler = o.sampler ?? SAMPLER_VERSION;
  if (typeof temperature !== 'number' || !Number.isFinite(temperature) || temperature < 0) {
    throw new IteraError(`temperature must be a finite number >= 0 (0 = greedy), got ${temperature}`, 'BAD_SAMPLER');
  }
  if (!Number.isInteger(topK) || topK < 0) {
    throw new IteraError(`top-k must be a whole number >= 0 (0 = off), got ${topK}`, 'BAD_SAMPLER');
  }
  if (typeof topP !== 'number' || Number.isNaN(topP) || !(topP > 0 && topP <= 1)) {
    throw new IteraError(`top-p must be in (0, 1] (1 = off), got ${topP}`, 'BAD_SAMPLER');
  }
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new IteraError(
      `seed must be a whole number from 0 to ${Number.MAX_SAFE_INTEGER}, got ${seed}`,
      'BAD_SAMPLER',
    );
  }
  if (!Number.isInteger(sampler) || sampler < SAMPLER_V1 || sampler > SAMPLER_VERSION) {
    throw new IteraError(
      `sampler version must be a whole number from ${SAMPLER_V1} to ${SAMPLER_VERSION}, got ${sampler}`,
      'BAD_SAMPLER',
    );
  }
  return { temperature, topK: Math.min(topK, vocabSize), topP, seed, sampler };
}

/** One conversation's recurrent state inside the module. */
export class WasmSession {
  readonly ptr: number;
  private readonly ex: IteraExports;
  private freed = false;

  constructor(readonly model: WasmModel) {
    this.ex = model.ex;
    this.ptr = this.ex.session_new(model.ptr);
  }

  get position(): number {
    return this.ex.session_pos(this.ptr);
  }

  reset(): void {
    this.ex.session_reset(this.ptr);
  }

  /** 'exact' (the original's window recomputation past T) or 'slide' (approximation). */
  setWindow(mode: 'exact' | 'slide'): void {
    this.ex.session_set_window(this.ptr, mode === 'exact' ? WINDOW_EXACT : WINDOW_SLIDE);
  }

  private checkIds(ids: ArrayLike<number>): void {
    const V = this.model.config.vocabSize;
    if (ids.length === 0) throw new IteraError('empty prompt: give at least one token', 'EMPTY_PROMPT');
    for (let i = 0; i < ids.length; i++) {
      const t = ids[i];
      if (!Number.isInteger(t) || t < 0 || t >= V) {
        throw new IteraError(
          `token id ${t} at index ${i} is out of range: this model's ids run from 0 to ${V - 1}`,
          'BAD_TOKEN',
        );
      }
    }
  }

  /** Feeds tokens (one call into the module). Returns every position's logits [n*V] if asked. */
  prefill(ids: ArrayLike<number>, allLogits = false): Float32Array | null {
    this.checkIds(ids);
    const ex = this.ex;
    const n = ids.length;
    const V = this.model.config.vocabSize;
    const idp = ex.alloc(n * 4);
    const out = allLogits ? ex.alloc(n * V * 4) : 0;
    try {
      new Int32Array(ex.memory.buffer, idp, n).set(Array.from(ids));
      const rc = ex.prefill(this.ptr, idp, n, out);
      if (rc !== 0) throw this.error(rc);
      return allLogits ? new Float32Array(ex.memory.buffer, out, n * V).slice() : null;
    } finally {
      ex.free(idp);
      if (out) ex.free(out);
    }
  }

  /** The logits after the last token fed (a copy). */
  logits(): Float32Array {
    const V = this.model.config.vocabSize;
    return new Float32Array(this.ex.memory.buffer, this.ex.session_logits(this.ptr), V).slice();
  }

  setSampler(o: SamplerSettings): void {
    const s = validateSampler(o, this.model.config.vocabSize);
    const rc = this.ex.sampler_set(
      this.ptr,
      s.temperature,
      s.topK,
      s.topP,
      s.seed % 0x100000000,
      Math.floor(s.seed / 0x100000000),
    );
    if (rc !== 0) throw this.error(rc);
    const rv = this.ex.sampler_set_version(this.ptr, s.sampler);
    if (rv !== 0) throw this.error(rv);
  }

  /** Samples the next token, feeds it, returns it: one call into the module per token. */
  next(): number {
    const t = this.ex.generate_next(this.ptr); // the only call into the module per token
    if (t === -2) throw new IteraError('nothing to continue: prefill a prompt first', 'EMPTY_PROMPT');
    if (t < 0) throw this.error(t);
    return t;
  }

  /** Up to max tokens in one call into the module; stops after eos (pass -1 for none). */
  generate(max: number, eos: number): number[] {
    if (!Number.isInteger(max) || max < 0)
      throw new IteraError(`max tokens must be a whole number >= 0, got ${max}`, 'BAD_PARAM');
    if (this.position === 0) throw new IteraError('nothing to continue: prefill a prompt first', 'EMPTY_PROMPT');
    if (max === 0) return [];
    const ex = this.ex;
    const out = ex.alloc(max * 4);
    try {
      const n = ex.generate(this.ptr, max, out, eos);
      if (n < 0) throw this.error(n);
      return Array.from(new Int32Array(ex.memory.buffer, out, n));
    } finally {
      ex.free(out);
    }
  }

  /** The session's complete state as bytes: the recurrent state of every layer, the position and
   *  the window's tokens (which the exact window recomputes past T), the last logits, the
   *  sampler's settings and random state, the window mode; in a header naming the model file, the
   *  build and the versions, with a checksum. WasmModel.restore() continues it bit for bit. */
  save(): Uint8Array {
    if (this.freed) throw new IteraError('session was freed', 'FREED');
    const ex = this.ex;
    const n = ex.session_state_size(this.ptr);
    const p = ex.alloc(n);
    try {
      ex.session_state_save(this.ptr, p);
      return encodeState(
        { modelHash: this.model.modelHash, simd: buildCode(ex) },
        new Uint8Array(ex.memory.buffer, p, n),
      );
    } finally {
      ex.free(p);
    }
  }

  /** Replaces this session's state with a saved one (see save()). Throws an IteraError, leaving
   *  the session as it was, when the bytes are not a state of this model and build: codes
   *  STATE_MAGIC, STATE_VERSION, STATE_LENGTH, STATE_CHECKSUM, STATE_MODEL, STATE_BUILD, STATE_ABI,
   *  STATE_SAMPLER (host/runtime/state.ts), or STATE_INVALID when the module finds a field out of
   *  range in a state whose checksum holds (one made by hand). */
  restore(bytes: Uint8Array): void {
    if (this.freed) throw new IteraError('session was freed', 'FREED');
    const ex = this.ex;
    const body = decodeState(
      { modelHash: this.model.modelHash, simd: buildCode(ex) },
      bytes,
      ex.session_state_size(this.ptr),
    );
    const p = ex.alloc(body.length);
    try {
      new Uint8Array(ex.memory.buffer, p, body.length).set(body);
      const rc = ex.session_state_load(this.ptr, p, body.length);
      if (rc !== 0) {
        throw new IteraError(
          `saved state is invalid: ${ERROR_MESSAGES[rc] ?? 'code ' + rc} (byte ${ex.error_detail()} of the session state)`,
          'STATE_INVALID',
        );
      }
    } finally {
      ex.free(p);
    }
  }

  /** True once free() has run (the session can no longer be used). */
  get isFreed(): boolean {
    return this.freed;
  }

  free(): void {
    if (!this.freed) {
      this.ex.session_free(this.ptr);
      this.freed = true;
    }
  }

  private error(rc: number): IteraError {
    return new IteraError(
      `runtime error: ${ERROR_MESSAGES[rc] ?? 'code ' + rc} (detail ${this.ex.error_detail()})`,
      'RUNTIME',
    );
  }
}
