// The thin layer between TypeScript and the WebAssembly module: it lays a model's weights into
// linear memory once, writes the descriptor the module reads (assembly/model.ts), and wraps the
// module's sessions. Platform-neutral: it only needs a WebAssembly instance's exports.

import { IteraConfig, IteraError } from './types.js';

/** The module's exports (assembly/index.ts). */
export interface IteraExports {
  memory: WebAssembly.Memory;
  abi_version(): number;
  has_simd(): number;
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
  sample(s: number): number;
  generate_next(s: number): number;
  generate(s: number, max: number, out: number, eos: number): number;
  test_matvec_f32_ref(W: number, x: number, y: number, rows: number, cols: number): void;
  test_matvec_f32(W: number, x: number, y: number, rows: number, cols: number): void;
  test_erf(x: number): number;
  test_elementwise(which: number, x: number, y: number, n: number): void;
  test_elementwise_ref(which: number, x: number, y: number, n: number): void;
}

export const ABI_VERSION = 1;

// Descriptor layout: must match assembly/model.ts (a test checks a model runs end to end).
const D_GLOBALS = 13;
const GLOBAL_SLOTS = ['token_embd.weight', 'position_embd.weight', 'output_norm.weight', 'output_norm.bias', 'output.weight'] as const;
const D_LAYERS = D_GLOBALS + 2 * GLOBAL_SLOTS.length;
const LAYER_SLOTS = [
  'ssm_norm.weight', 'ssm_norm.bias', 'ssm_in.weight', 'ssm_conv1d.weight', 'ssm_conv1d.bias', 'ssm_a_log',
  'ssm_b', 'ssm_c', 'ssm_d', 'ssm_dt.weight', 'ssm_dt.bias', 'ssm_out.weight',
  'ffn_norm.weight', 'ffn_norm.bias', 'ffn_gate_inp.weight', 'ffn_up', 'ffn_down',
] as const;

const ERR_MESSAGES: Record<number, string> = {
  [-1]: 'token id out of range',
  [-2]: 'no tokens given where at least one is needed',
  [-3]: 'parameter out of range',
  [-4]: 'inconsistent model descriptor',
  [-5]: 'tensor type not supported by this build',
};

export function instantiateSync(module: WebAssembly.Module): IteraExports {
  const instance = new WebAssembly.Instance(module, {});
  return checkExports(instance.exports as unknown as IteraExports);
}

export async function instantiate(wasm: BufferSource | WebAssembly.Module): Promise<IteraExports> {
  const instance = wasm instanceof WebAssembly.Module
    ? await WebAssembly.instantiate(wasm, {})
    : (await WebAssembly.instantiate(wasm, {})).instance;
  return checkExports(instance.exports as unknown as IteraExports);
}

function checkExports(ex: IteraExports): IteraExports {
  if (typeof ex.abi_version !== 'function' || ex.abi_version() !== ABI_VERSION) {
    throw new IteraError(`the WebAssembly module speaks ABI ${typeof ex.abi_version === 'function' ? ex.abi_version() : '?'}, this host speaks ${ABI_VERSION}: rebuild with 'npm run build'`, 'WASM_ABI');
  }
  return ex;
}

/** Where the runtime gets each tensor of the model file as f32 values. */
export interface WeightSource {
  config: IteraConfig;
  /** The tensor's values as f32, or null if the file has no such tensor. */
  f32(name: string): Float32Array | null;
}

/** A model laid into one module instance's memory. Several sessions may share it. */
export class WasmModel {
  readonly ptr: number;
  readonly weightBytes: number;
  private freed = false;

  constructor(readonly ex: IteraExports, readonly config: IteraConfig, src: WeightSource) {
    const c = config;
    const tensors: (Float32Array | null)[] = [];
    const names: string[] = [];
    const tokEmbd = src.f32('token_embd.weight');
    const outW = src.f32('output.weight');
    for (const g of GLOBAL_SLOTS) {
      names.push(g);
      tensors.push(g === 'output.weight' ? outW : src.f32(g));
    }
    for (let l = 0; l < c.numLayers; l++) {
      const moe = c.moeLayers.includes(l);
      for (const s of LAYER_SLOTS) {
        let name = `blk.${l}.${s}`;
        if (s === 'ffn_up' || s === 'ffn_down') name += moe ? '_exps.weight' : '.weight';
        names.push(name);
        tensors.push(s === 'ffn_gate_inp.weight' && !moe ? null : src.f32(name));
      }
    }
    // one block for every weight, each tensor 16-byte aligned; the tied head reuses the embedding
    const offsets: number[] = [];
    let total = 0;
    tensors.forEach((t, i) => {
      offsets.push(total);
      if (t === null) {
        const optional = names[i] === 'output.weight' || names[i].endsWith('ffn_gate_inp.weight');
        if (!optional) throw new IteraError(`model is missing tensor '${names[i]}'`, 'MODEL_MISSING_TENSOR');
        return;
      }
      total += Math.ceil(t.byteLength / 16) * 16;
    });
    if (tokEmbd === null) throw new IteraError(`model is missing tensor 'token_embd.weight'`, 'MODEL_MISSING_TENSOR');
    const block = ex.alloc(total);
    const descWords = D_LAYERS + 2 * LAYER_SLOTS.length * c.numLayers;
    const desc = ex.alloc(descWords * 4);
    try {
      const mem = new Uint8Array(ex.memory.buffer);
      const ptrs = tensors.map((t, i) => {
        if (t === null) return 0;
        mem.set(new Uint8Array(t.buffer, t.byteOffset, t.byteLength), block + offsets[i]);
        return block + offsets[i];
      });
      // tied output head: the embedding itself
      const outSlot = GLOBAL_SLOTS.indexOf('output.weight');
      if (ptrs[outSlot] === 0) ptrs[outSlot] = ptrs[GLOBAL_SLOTS.indexOf('token_embd.weight')];
      const d = new Uint32Array(ex.memory.buffer, desc, descWords);
      const f = new Float32Array(1);
      f[0] = c.layerNormEps;
      d.set([
        ABI_VERSION, c.vocabSize, c.hiddenSize, c.numLayers, c.ssmStateSize, c.ssmConvKernel, c.ssmInnerSize,
        c.numExperts, c.expertSize, c.topK, c.maxSeqLength, new Uint32Array(f.buffer)[0], block,
      ]);
      ptrs.forEach((p, i) => { d[D_GLOBALS + 2 * i] = p; d[D_GLOBALS + 2 * i + 1] = 0; });
      this.ptr = ex.model_new(desc);
      if (this.ptr === 0) {
        throw new IteraError(`the runtime rejected the model: ${ERR_MESSAGES[ex.last_error()] ?? 'error ' + ex.last_error()} (descriptor word ${ex.error_detail()})`, 'MODEL_REJECTED');
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

  free(): void {
    if (!this.freed) { this.ex.model_free(this.ptr); this.freed = true; }
  }
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

/** Checks sampling parameters and says which one is wrong and what is allowed. */
export function validateSampler(o: SamplerOptions, vocabSize: number): Required<SamplerOptions> {
  const temperature = o.temperature ?? 0;
  const topK = o.topK ?? 0;
  const topP = o.topP ?? 1;
  const seed = o.seed ?? 0;
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
    throw new IteraError(`seed must be a whole number from 0 to ${Number.MAX_SAFE_INTEGER}, got ${seed}`, 'BAD_SAMPLER');
  }
  return { temperature, topK: Math.min(topK, vocabSize), topP, seed };
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

  get position(): number { return this.ex.session_pos(this.ptr); }

  reset(): void { this.ex.session_reset(this.ptr); }

  /** 'exact' (the original's window recomputation past T) or 'slide' (approximation). */
  setWindow(mode: 'exact' | 'slide'): void {
    this.ex.session_set_window(this.ptr, mode === 'exact' ? 0 : 1);
  }

  private checkIds(ids: ArrayLike<number>): void {
    const V = this.model.config.vocabSize;
    if (ids.length === 0) throw new IteraError('empty prompt: give at least one token', 'EMPTY_PROMPT');
    for (let i = 0; i < ids.length; i++) {
      const t = ids[i];
      if (!Number.isInteger(t) || t < 0 || t >= V) {
        throw new IteraError(`token id ${t} at index ${i} is out of range: this model's ids run from 0 to ${V - 1}`, 'BAD_TOKEN');
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

  setSampler(o: SamplerOptions): void {
    const s = validateSampler(o, this.model.config.vocabSize);
    const rc = this.ex.sampler_set(this.ptr, s.temperature, s.topK, s.topP, s.seed % 0x100000000, Math.floor(s.seed / 0x100000000));
    if (rc !== 0) throw this.error(rc);
  }

  /** Samples the next token, feeds it, returns it: one call into the module per token. */
  next(): number {
    if (this.position === 0) throw new IteraError('nothing to continue: prefill a prompt first', 'EMPTY_PROMPT');
    const t = this.ex.generate_next(this.ptr);
    if (t < 0) throw this.error(t);
    return t;
  }

  /** Up to max tokens in one call into the module; stops after eos (pass -1 for none). */
  generate(max: number, eos: number): number[] {
    if (!Number.isInteger(max) || max < 0) throw new IteraError(`max tokens must be a whole number >= 0, got ${max}`, 'BAD_PARAM');
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

  free(): void {
    if (!this.freed) { this.ex.session_free(this.ptr); this.freed = true; }
  }

  private error(rc: number): IteraError {
    return new IteraError(`runtime error: ${ERR_MESSAGES[rc] ?? 'code ' + rc} (detail ${this.ex.error_detail()})`, 'RUNTIME');
  }
}
