// The Itera-Lite model file: a GGUF file (host/core/gguf.ts) with architecture "itera-lite",
// the configuration as `itera-lite.*` keys, the tokenizer, and the weights under llama.cpp-style
// names. docs/model-file.md describes the format; this file is its reference implementation:
//   - inferConfig / stateDictToModel: a PyTorch state_dict (as the importers give it) -> config
//     and canonical f32 tensors, every tensor checked against the shape the config implies;
//   - writeModelFile / readModelFile: the file itself, validated completely on reading;
//   - countParameters: the parameter count as the original reports it.
// Platform-neutral.

import { IteraError, type DType, type IteraConfig, type RawTensor } from './types.js';
import { readGguf, writeGguf, metadataMap, GgmlType, ggmlTypeName, type GgufKV, type GgufValue } from './gguf.js';
import { f16BytesToF32, bf16BytesToF32, f32BytesToF32, f32ToBytes, f32ToF16Bytes } from './f16.js';
import { tokenizerFromMetadata, type Tokenizer } from './tokenizer.js';
import { QK, QUANT_TYPE_IDS, quantFallback, checkBlockScales, dequantizeI8, dequantizeQ4_0, dequantizeQ8_0, isQuantizable, isTransposable, transpose2d, quantizeQ4_0, quantizeQ8_0, type QuantType } from './quant.js';

export const ARCHITECTURE = 'itera-lite';

/** The metadata keys of the configuration (exact names: the runtime depends on them). */
export const MODEL_KEYS = {
  architecture: 'general.architecture', // string "itera-lite"
  name: 'general.name', // string
  vocabSize: 'itera-lite.vocab_size', // u32 V
  maxSeqLength: 'itera-lite.context_length', // u32 T
  hiddenSize: 'itera-lite.embedding_length', // u32 d
  numLayers: 'itera-lite.block_count', // u32 L
  ssmStateSize: 'itera-lite.ssm.state_size', // u32 N
  ssmConvKernel: 'itera-lite.ssm.conv_kernel', // u32 K
  ssmInnerSize: 'itera-lite.ssm.inner_size', // u32 di
  numExperts: 'itera-lite.expert_count', // u32 E
  topK: 'itera-lite.expert_used_count', // u32 k
  expertSize: 'itera-lite.expert_feed_forward_length', // u32 f
  moeLayers: 'itera-lite.moe_layers', // u32[]
  layerNormEps: 'itera-lite.layer_norm_epsilon', // f32
  tiedEmbeddings: 'itera-lite.tied_embeddings', // bool
} as const;

/** ggml types the runtime runs: F32 and F16 for every tensor; Q8_0, Q4_0 and I8 for the matrices
 *  that may be quantized (quantizedTypeAllowed). */
export const RUNTIME_TENSOR_TYPES: readonly number[] = [GgmlType.F32, GgmlType.F16, GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.I8];

/** Whether a tensor may be stored in a quantized type (quant.ts isQuantizable). */
export function quantizedTypeAllowed(name: string): boolean {
  return isQuantizable(name);
}

/** Metadata keys of an I8 tensor's affine parameters: `scale` is an f32 array with one scale per
 *  source tensor (1, or E for stacked experts, each expert's rows in turn), `zero_point` an i32. */
export function i8Keys(name: string): { scale: string; zeroPoint: string } {
  return { scale: `itera-lite.i8.${name}.scale`, zeroPoint: `itera-lite.i8.${name}.zero_point` };
}

/** Sanity bounds on a configuration (far above any Itera-Lite model; they keep hostile files from
 *  implying absurd sizes). */
const MAX_DIM = 1 << 24;
const MAX_LAYERS = 4096;
const MAX_EXPERTS = 4096;

const littleEndianHost = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// ---------------------------------------------------------------------------------------------
// The tensor list a configuration implies

/** One tensor of the model file, with the PyTorch tensors it is made from. */
export interface TensorSpec {
  /** GGUF name, e.g. 'blk.0.ssm_in.weight'. */
  name: string;
  /** PyTorch order. */
  shape: number[];
  /** The shape in symbols, for messages: '[2*di, d]'. */
  dims: string;
  /** PyTorch state_dict names: one, or E for stacked experts (in expert order). */
  sources: string[];
  /** Shape of each source tensor (differs from `shape` for conv1d [di,1,K] and stacked experts). */
  sourceShape: number[];
}

/** Every tensor of a model with this configuration, in the file's canonical order. With tied
 *  embeddings there is no output.weight (the runtime uses token_embd.weight). */
export function modelTensorSpecs(c: IteraConfig, tied: boolean): TensorSpec[] {
  const { vocabSize: V, hiddenSize: d, ssmInnerSize: di, ssmConvKernel: K, ssmStateSize: N, numExperts: E, expertSize: f } = c;
  const out: TensorSpec[] = [];
  const add = (name: string, shape: number[], dims: string, source: string, sourceShape = shape): void => {
    out.push({ name, shape, dims, sources: [source], sourceShape });
  };
  add('token_embd.weight', [V, d], '[V, d]', 'embedding.weight');
  add('position_embd.weight', [c.maxSeqLength, d], '[T, d]', 'position_embedding.weight');
  const moe = new Set(c.moeLayers);
  for (let i = 0; i < c.numLayers; i++) {
    const b = `blk.${i}.`;
    const p = `layers.${i}.`;
    add(b + 'ssm_norm.weight', [d], '[d]', p + 'ssm.norm.weight');
    add(b + 'ssm_norm.bias', [d], '[d]', p + 'ssm.norm.bias');
    add(b + 'ssm_in.weight', [2 * di, d], '[2*di, d]', p + 'ssm.in_proj.weight');
    add(b + 'ssm_conv1d.weight', [di, K], '[di, K]', p + 'ssm.conv1d.weight', [di, 1, K]);
    add(b + 'ssm_conv1d.bias', [di], '[di]', p + 'ssm.conv1d.bias');
    add(b + 'ssm_a_log', [N], '[N]', p + 'ssm.ssm.A_log');
    add(b + 'ssm_b', [N, di], '[N, di]', p + 'ssm.ssm.B');
    add(b + 'ssm_c', [di, N], '[di, N]', p + 'ssm.ssm.C');
    add(b + 'ssm_d', [di], '[di]', p + 'ssm.ssm.D');
    add(b + 'ssm_dt.weight', [di, di], '[di, di]', p + 'ssm.ssm.delta_proj.weight');
    add(b + 'ssm_dt.bias', [di], '[di]', p + 'ssm.ssm.delta_proj.bias');
    add(b + 'ssm_out.weight', [d, di], '[d, di]', p + 'ssm.out_proj.weight');
    if (moe.has(i)) {
      const m = p + 'moe.layer.';
      add(b + 'ffn_norm.weight', [d], '[d]', m + 'norm.weight');
      add(b + 'ffn_norm.bias', [d], '[d]', m + 'norm.bias');
      add(b + 'ffn_gate_inp.weight', [E, d], '[E, d]', m + 'router.gate.weight');
      const experts = (w: string): string[] => Array.from({ length: E }, (_, j) => `${m}experts.${j}.${w}.weight`);
      out.push({ name: b + 'ffn_up_exps.weight', shape: [E, f, d], dims: '[E, f, d]', sources: experts('w1'), sourceShape: [f, d] });
      out.push({ name: b + 'ffn_down_exps.weight', shape: [E, d, f], dims: '[E, d, f]', sources: experts('w2'), sourceShape: [d, f] });
    } else {
      add(b + 'ffn_norm.weight', [d], '[d]', p + 'moe.norm.weight');
      add(b + 'ffn_norm.bias', [d], '[d]', p + 'moe.norm.bias');
      add(b + 'ffn_up.weight', [f, d], '[f, d]', p + 'moe.ffn.w1.weight');
      add(b + 'ffn_down.weight', [d, f], '[d, f]', p + 'moe.ffn.w2.weight');
    }
  }
  add('output_norm.weight', [d], '[d]', 'norm.weight');
  add('output_norm.bias', [d], '[d]', 'norm.bias');
  if (!tied) add('output.weight', [V, d], '[V, d]', 'lm_head.weight');
  return out;
}

/** The parameter count as the original reports it (sum(p.numel() for p in model.parameters())):
 *  a tied lm_head is the embedding's Parameter and counts once; router.expert_counts is a buffer,
 *  not a parameter, and does not count. The micro reference checkpoint: 293,656. */
export function countParameters(config: IteraConfig, tied: boolean): number {
  return modelTensorSpecs(config, tied).reduce((sum, s) => sum + numel(s.shape), 0);
}

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

const fmtShape = (s: readonly number[]): string => `[${s.join(', ')}]`;

function configSummary(c: IteraConfig): string {
  return `V=${c.vocabSize} d=${c.hiddenSize} T=${c.maxSeqLength} L=${c.numLayers} N=${c.ssmStateSize} K=${c.ssmConvKernel} ` +
    `di=${c.ssmInnerSize} E=${c.numExperts} f=${c.expertSize} moe_layers=[${c.moeLayers.join(',')}]`;
}

/** Throws IteraError MODEL_BAD_CONFIG unless every field is sane. */
export function validateConfig(c: IteraConfig, where = 'model configuration'): void {
  const bad = (why: string): never => {
    throw new IteraError(`${where}: ${why}`, 'MODEL_BAD_CONFIG');
  };
  const int = (name: keyof IteraConfig, v: unknown, min: number, max: number): void => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) bad(`${name} is ${String(v)}; it must be a whole number from ${min} to ${max}`);
  };
  if (typeof c !== 'object' || c === null) bad('not an object');
  int('vocabSize', c.vocabSize, 1, MAX_DIM);
  int('hiddenSize', c.hiddenSize, 1, MAX_DIM);
  int('maxSeqLength', c.maxSeqLength, 1, MAX_DIM);
  int('numLayers', c.numLayers, 1, MAX_LAYERS);
  int('ssmStateSize', c.ssmStateSize, 1, MAX_DIM);
  int('ssmConvKernel', c.ssmConvKernel, 1, MAX_DIM);
  int('ssmInnerSize', c.ssmInnerSize, 1, MAX_DIM);
  int('expertSize', c.expertSize, 1, MAX_DIM);
  if (!Array.isArray(c.moeLayers)) bad('moeLayers is not an array');
  c.moeLayers.forEach((l, i) => {
    if (!Number.isInteger(l) || l < 0 || l >= c.numLayers) bad(`moe layer ${String(l)} is not a layer index (0..${c.numLayers - 1})`);
    if (i > 0 && l <= c.moeLayers[i - 1]!) bad(`moeLayers [${c.moeLayers.join(', ')}] must be strictly ascending`);
  });
  if (c.moeLayers.length > 0) {
    int('numExperts', c.numExperts, 1, MAX_EXPERTS);
    int('topK', c.topK, 1, c.numExperts);
  } else {
    // No MoE layer: E and k are unused (inferConfig gives 0 for both).
    int('numExperts', c.numExperts, 0, MAX_EXPERTS);
    int('topK', c.topK, 0, Math.max(0, c.numExperts));
  }
  if (typeof c.layerNormEps !== 'number' || !Number.isFinite(c.layerNormEps) || !(c.layerNormEps > 0)) {
    bad(`layerNormEps is ${String(c.layerNormEps)}; it must be a finite number > 0`);
  }
  // Every tensor must be addressable: keep the largest well inside 2^31 bytes of f32.
  for (const s of modelTensorSpecs(c, false)) {
    if (numel(s.shape) * 4 > 0x7fffffff) bad(`tensor '${s.name}' ${s.dims} = ${fmtShape(s.shape)} would not fit in memory`);
  }
}

// ---------------------------------------------------------------------------------------------
// From a PyTorch state_dict

export interface StateDictOptions {
  /** Experts used per token (k); not in the checkpoint. Default 2. Must be 1..E. */
  topK?: number;
  /** LayerNorm epsilon; not in the checkpoint. Default 1e-5. */
  eps?: number;
}

/** A tensor of the converted model, f32 values. */
export interface ModelTensor {
  name: string;
  /** PyTorch order. */
  shape: number[];
  data: Float32Array;
  /** How writeModelFile stores it: 'F32' (default), 'F16', 'Q8_0' or 'Q4_0' (quantized from data). */
  typeName?: QuantType;
  /** Already quantized bytes to store as they are (e.g. PyTorch's INT8 integers, kept, not
   *  re-quantized); data then holds the dequantized values. */
  raw?: { type: number; data: Uint8Array; scales?: number[]; zeroPoint?: number };
}

export interface ConvertedModel {
  config: IteraConfig;
  tiedEmbeddings: boolean;
  /** Canonical order (modelTensorSpecs). */
  tensors: ModelTensor[];
  /** countParameters(config, tiedEmbeddings). */
  parameters: number;
  /** What the conversion decided, for people (e.g. dropped training statistics). */
  notes: string[];
}

const WRAPPER_PREFIXES = ['model_state_dict.', 'state_dict.'];

/** Accepts a bare state_dict or one whose names all carry a 'model_state_dict.' (or
 *  'state_dict.') prefix, as a flattening importer might give. */
function unwrap(tensors: ReadonlyMap<string, RawTensor>, notes?: string[]): Map<string, RawTensor> {
  if (!(tensors instanceof Map)) throw new IteraError('expected a Map of tensor name -> RawTensor', 'MODEL_BAD_INPUT');
  for (const prefix of WRAPPER_PREFIXES) {
    const names = [...tensors.keys()];
    if (names.length > 0 && names.every((n) => n.startsWith(prefix))) {
      notes?.push(`tensor names carried the prefix '${prefix}', which was removed`);
      return new Map(names.map((n) => [n.slice(prefix.length), tensors.get(n)!]));
    }
  }
  return new Map(tensors);
}

function need(tensors: ReadonlyMap<string, RawTensor>, name: string, rank: number, why: string): number[] {
  const t = tensors.get(name);
  if (!t) {
    throw new IteraError(`checkpoint has no tensor '${name}' (${why}); is this an Itera-Lite state_dict?`, 'MODEL_MISSING_TENSOR');
  }
  if (!Array.isArray(t.shape) || t.shape.length !== rank || !t.shape.every((x) => Number.isInteger(x) && x >= 1)) {
    throw new IteraError(`tensor '${name}' has shape ${fmtShape(t.shape ?? [])}, expected ${rank} dimensions (${why})`, 'MODEL_BAD_SHAPE');
  }
  return t.shape;
}

/** The configuration a state_dict implies, read off tensor shapes exactly as
 *  ../shared/spec/architecture.md says: V, d from embedding.weight; T from
 *  position_embedding.weight; di, K from layers.0.ssm.conv1d.weight [di,1,K]; N from
 *  layers.0.ssm.ssm.A_log; L, which layers are MoE, E and f from the names (and f from the first
 *  FFN's w1). k (default 2) and eps (default 1e-5) are not in a checkpoint: they come from opts.
 *  A model without MoE layers gets E = 0 and k = 0. Only these tensors are looked at; the others
 *  are checked by stateDictToModel. */
export function inferConfig(tensors: ReadonlyMap<string, RawTensor>, opts: StateDictOptions = {}): IteraConfig {
  const sd = unwrap(tensors);
  const [V, d] = need(sd, 'embedding.weight', 2, 'gives V and d') as [number, number];
  const [T] = need(sd, 'position_embedding.weight', 2, 'gives T') as [number, number];

  const layerIdx = new Set<number>();
  for (const n of sd.keys()) {
    const m = /^layers\.(0|[1-9][0-9]*)\./.exec(n);
    if (m) layerIdx.add(Number(m[1]));
  }
  const L = layerIdx.size;
  if (L === 0) throw new IteraError("checkpoint has no 'layers.{i}.*' tensors", 'MODEL_MISSING_TENSOR');
  for (let i = 0; i < L; i++) {
    if (!layerIdx.has(i)) {
      throw new IteraError(`checkpoint has tensors of layers up to ${Math.max(...layerIdx)} but none of layer ${i}`, 'MODEL_MISSING_TENSOR');
    }
  }
  const [di, one, K] = need(sd, 'layers.0.ssm.conv1d.weight', 3, 'gives di and K') as [number, number, number];
  if (one !== 1) {
    throw new IteraError(`tensor 'layers.0.ssm.conv1d.weight' has shape [${di}, ${one}, ${K}]; a depthwise conv1d weight is [di, 1, K]`, 'MODEL_BAD_SHAPE');
  }
  const [N] = need(sd, 'layers.0.ssm.ssm.A_log', 1, 'gives N') as [number];

  const moeLayers: number[] = [];
  let E = -1;
  let f = -1;
  for (let i = 0; i < L; i++) {
    const names = [...sd.keys()].filter((n) => n.startsWith(`layers.${i}.moe.`));
    const moe = names.some((n) => n.startsWith(`layers.${i}.moe.layer.`));
    const dense = names.some((n) => !n.startsWith(`layers.${i}.moe.layer.`));
    if (moe && dense) {
      throw new IteraError(`layer ${i} has both mixture-of-experts (layers.${i}.moe.layer.*) and dense (layers.${i}.moe.ffn/norm.*) tensors`, 'MODEL_BAD_LAYER');
    }
    if (!moe && !dense) {
      throw new IteraError(`layer ${i} has no feed-forward tensors (neither layers.${i}.moe.layer.* nor layers.${i}.moe.ffn.*)`, 'MODEL_MISSING_TENSOR');
    }
    if (moe) {
      moeLayers.push(i);
      const experts = new Set<number>();
      for (const n of names) {
        const m = new RegExp(`^layers\\.${i}\\.moe\\.layer\\.experts\\.(0|[1-9][0-9]*)\\.`).exec(n);
        if (m) experts.add(Number(m[1]));
      }
      const e = experts.size;
      if (e === 0) throw new IteraError(`MoE layer ${i} has no experts (layers.${i}.moe.layer.experts.{j}.*)`, 'MODEL_MISSING_TENSOR');
      for (let j = 0; j < e; j++) {
        if (!experts.has(j)) throw new IteraError(`MoE layer ${i} has experts up to ${Math.max(...experts)} but no expert ${j}`, 'MODEL_MISSING_TENSOR');
      }
      if (E === -1) E = e;
      else if (e !== E) throw new IteraError(`MoE layer ${i} has ${e} experts but layer ${moeLayers[0]} has ${E}`, 'MODEL_BAD_LAYER');
      if (f === -1) f = need(sd, `layers.${i}.moe.layer.experts.0.w1.weight`, 2, 'gives f')[0]!;
    } else if (f === -1) {
      f = need(sd, `layers.${i}.moe.ffn.w1.weight`, 2, 'gives f')[0]!;
    }
  }
  const hasMoe = moeLayers.length > 0;
  const topK = opts.topK ?? 2;
  if (hasMoe && (!Number.isInteger(topK) || topK < 1 || topK > E)) {
    throw new IteraError(`top-k is ${topK}, but it must be a whole number from 1 to the ${E} experts of this checkpoint`, 'MODEL_BAD_CONFIG');
  }
  const eps = opts.eps ?? 1e-5;
  const config: IteraConfig = {
    vocabSize: V,
    hiddenSize: d,
    numLayers: L,
    ssmStateSize: N,
    ssmConvKernel: K,
    ssmInnerSize: di,
    numExperts: hasMoe ? E : 0,
    expertSize: f,
    topK: hasMoe ? topK : 0,
    moeLayers,
    maxSeqLength: T,
    layerNormEps: eps,
  };
  validateConfig(config, 'configuration inferred from the checkpoint');
  return config;
}

const DTYPE_BYTES: Partial<Record<DType, number>> = { f32: 4, f16: 2, bf16: 2, f64: 8 };

/** A RawTensor's values as f32 (f32, f16, bf16 exactly; f64 rounded). */
export function rawTensorToF32(t: RawTensor): Float32Array {
  if (t.dtype === 'qint8') {
    const q = t.quant;
    if (!q) throw new IteraError(`tensor '${t.name}' is INT8 (qint8) without its scale and zero point`, 'MODEL_BAD_TENSOR_DATA');
    return dequantizeI8(t.data, t.data.length, q.scale, q.zeroPoint);
  }
  const size = DTYPE_BYTES[t.dtype];
  if (size === undefined) {
    throw new IteraError(`tensor '${t.name}' has dtype ${t.dtype}; weights must be floating point (f32, f16, bf16 or f64)`, 'MODEL_BAD_DTYPE');
  }
  const n = numel(t.shape);
  if (!(t.data instanceof Uint8Array) || t.data.length !== n * size) {
    throw new IteraError(
      `tensor '${t.name}' ${fmtShape(t.shape)} of ${t.dtype} needs ${n * size} bytes but has ${t.data instanceof Uint8Array ? t.data.length : 'no'} bytes of data`,
      'MODEL_BAD_TENSOR_DATA',
    );
  }
  switch (t.dtype) {
    case 'f32': return f32BytesToF32(t.data);
    case 'f16': return f16BytesToF32(t.data);
    case 'bf16': return bf16BytesToF32(t.data);
    default: {
      const dv = new DataView(t.data.buffer, t.data.byteOffset, t.data.byteLength);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getFloat64(i * 8, true);
      return out;
    }
  }
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A state_dict (flat Map, bare or with a 'model_state_dict.' prefix) -> the model file's config
 *  and tensors (canonical order, f32). Every tensor the config implies must be there with exactly
 *  the implied shape; an unknown tensor is an error. router.expert_counts (a training statistic)
 *  is dropped; a tied lm_head (same storage as the embedding, identical bytes, or absent) is
 *  stored once. */
export function stateDictToModel(tensors: ReadonlyMap<string, RawTensor>, opts: StateDictOptions = {}): ConvertedModel {
  const notes: string[] = [];
  const sd = unwrap(tensors, notes);
  const config = inferConfig(sd, opts);
  if (opts.topK === undefined && config.moeLayers.length > 0) notes.push('top-k (experts used per token) is not stored in checkpoints: using the default 2');
  if (opts.eps === undefined) notes.push('LayerNorm epsilon is not stored in checkpoints: using the default 1e-5');

  const emb = sd.get('embedding.weight')!;
  const head = sd.get('lm_head.weight');
  let tied: boolean;
  if (head === undefined) {
    tied = true;
    notes.push('no lm_head.weight: the output head is tied to the embedding (token_embd.weight)');
  } else if (emb.storageKey !== undefined && emb.storageKey === head.storageKey) {
    tied = true;
    notes.push('lm_head.weight shares its storage with embedding.weight (tied): stored once, as token_embd.weight');
  } else if (head.dtype === emb.dtype && sameShape(head.shape, emb.shape) && bytesEqual(head.data, emb.data)) {
    tied = true;
    notes.push('lm_head.weight is byte-identical to embedding.weight (tied): stored once, as token_embd.weight');
  } else {
    tied = false;
    notes.push('lm_head.weight differs from embedding.weight: stored as output.weight');
  }

  const used = new Set<string>();
  if (tied && head) used.add('lm_head.weight');
  const out: ModelTensor[] = [];
  const quantized: string[] = [];
  for (const spec of modelTensorSpecs(config, tied)) {
    const data = new Float32Array(numel(spec.shape));
    spec.sources.forEach((src, j) => {
      const raw = sd.get(src);
      if (!raw) {
        throw new IteraError(
          `checkpoint is missing tensor '${src}' ${fmtShape(spec.sourceShape)} (for '${spec.name}' ${spec.dims}; ${configSummary(config)})`,
          'MODEL_MISSING_TENSOR',
        );
      }
      if (!Array.isArray(raw.shape) || !sameShape(raw.shape, spec.sourceShape)) {
        throw new IteraError(
          `tensor '${src}' has shape ${fmtShape(raw.shape ?? [])} but the configuration implies ${fmtShape(spec.sourceShape)} ` +
            `(for '${spec.name}' ${spec.dims}; ${configSummary(config)})`,
          'MODEL_BAD_SHAPE',
        );
      }
      const values = rawTensorToF32(raw);
      for (let i = 0; i < values.length; i++) {
        if (!Number.isFinite(values[i]!)) {
          throw new IteraError(`tensor '${src}' has a non-finite value (${values[i]}) at element ${i}: the checkpoint is damaged`, 'MODEL_NON_FINITE');
        }
      }
      data.set(values, j * values.length);
      used.add(src);
    });
    const srcs = spec.sources.map((src) => sd.get(src)!);
    const nq = srcs.filter((r) => r.dtype === 'qint8').length;
    if (nq > 0) {
      // PyTorch's dynamic INT8: keep the stored integers and scales (one per source tensor)
      if (nq !== srcs.length) throw new IteraError(`'${spec.name}': its source tensors mix INT8 and float storage`, 'MODEL_BAD_TENSOR_DATA');
      if (!quantizedTypeAllowed(spec.name)) throw new IteraError(`tensor '${spec.sources[0]}' is INT8, but '${spec.name}' must stay float in this runtime`, 'MODEL_UNSUPPORTED_TYPE');
      const zps = new Set(srcs.map((r) => r.quant!.zeroPoint));
      if (zps.size !== 1) throw new IteraError(`'${spec.name}': its INT8 source tensors have different zero points (${[...zps].join(', ')}); one per tensor is supported`, 'MODEL_BAD_TENSOR_DATA');
      const row = spec.shape[spec.shape.length - 1];
      if (row % QK !== 0) throw new IteraError(`'${spec.name}' is INT8 but its rows of ${row} values are not whole ${QK}-value blocks`, 'QUANT_BAD_LENGTH');
      const bytes = new Uint8Array(numel(spec.shape));
      srcs.forEach((r, j) => bytes.set(r.data, j * r.data.length));
      out.push({ name: spec.name, shape: spec.shape, data, raw: { type: GgmlType.I8, data: bytes, scales: srcs.map((r) => r.quant!.scale), zeroPoint: [...zps][0] } });
      quantized.push(spec.name);
      continue;
    }
    out.push({ name: spec.name, shape: spec.shape, data });
  }
  if (quantized.length) notes.push(`INT8 (PyTorch dynamic quantization) kept as stored, type I8 with per-tensor scales: ${quantized.join(', ')}`);

  const dropped: string[] = [];
  for (const i of config.moeLayers) {
    const name = `layers.${i}.moe.layer.router.expert_counts`;
    const t = sd.get(name);
    if (!t) continue;
    if (!sameShape(t.shape, [config.numExperts])) {
      throw new IteraError(`tensor '${name}' has shape ${fmtShape(t.shape)} but the configuration implies [${config.numExperts}] (E)`, 'MODEL_BAD_SHAPE');
    }
    used.add(name);
    dropped.push(name);
  }
  if (dropped.length) notes.push(`dropped ${dropped.join(', ')}: a training statistic (running expert usage), not used by the forward pass`);

  const unknown = [...sd.keys()].filter((n) => !used.has(n));
  if (unknown.length) {
    const list = unknown.slice(0, 8).map((n) => `'${n}' ${fmtShape(sd.get(n)!.shape ?? [])}`).join(', ');
    throw new IteraError(
      `checkpoint has ${unknown.length} tensor${unknown.length > 1 ? 's' : ''} that an Itera-Lite model (${configSummary(config)}) does not have: ${list}${unknown.length > 8 ? ', ...' : ''}`,
      'MODEL_UNKNOWN_TENSOR',
    );
  }
  return { config, tiedEmbeddings: tied, tensors: out, parameters: countParameters(config, tied), notes };
}

// ---------------------------------------------------------------------------------------------
// Metadata

/** The configuration keys, in the file's order. */
export function configToMetadata(c: IteraConfig, tied: boolean): GgufKV[] {
  const u32 = (key: string, value: number): GgufKV => ({ key, value: { type: 'u32', value } });
  return [
    u32(MODEL_KEYS.vocabSize, c.vocabSize),
    u32(MODEL_KEYS.maxSeqLength, c.maxSeqLength),
    u32(MODEL_KEYS.hiddenSize, c.hiddenSize),
    u32(MODEL_KEYS.numLayers, c.numLayers),
    u32(MODEL_KEYS.ssmStateSize, c.ssmStateSize),
    u32(MODEL_KEYS.ssmConvKernel, c.ssmConvKernel),
    u32(MODEL_KEYS.ssmInnerSize, c.ssmInnerSize),
    u32(MODEL_KEYS.numExperts, c.numExperts),
    u32(MODEL_KEYS.topK, c.topK),
    u32(MODEL_KEYS.expertSize, c.expertSize),
    { key: MODEL_KEYS.moeLayers, value: { type: 'array', itemType: 'u32', value: c.moeLayers.slice() } },
    { key: MODEL_KEYS.layerNormEps, value: { type: 'f32', value: c.layerNormEps } },
    { key: MODEL_KEYS.tiedEmbeddings, value: { type: 'bool', value: tied } },
  ];
}

/** The shortest decimal that rounds to the same f32, so an eps written as 1e-5 reads back as
 *  1e-5 (the runtime uses the f32 either way). */
function shortestF32(x: number): number {
  for (let p = 1; p <= 9; p++) {
    const y = Number(x.toPrecision(p));
    if (Math.fround(y) === x) return y;
  }
  return x;
}

function metaError(why: string): never {
  throw new IteraError(`model file: ${why}`, 'MODEL_BAD_METADATA');
}

function metaGet(meta: ReadonlyMap<string, GgufValue>, key: string, type: GgufValue['type']): GgufValue {
  const v = meta.get(key);
  if (v === undefined) metaError(`${key} is missing`);
  if (v.type !== type) metaError(`${key} must be a ${type}, found ${v.type}`);
  return v;
}

/** Reads and validates the configuration keys. */
export function configFromMetadata(meta: ReadonlyMap<string, GgufValue>): { config: IteraConfig; tied: boolean } {
  const u32 = (key: string): number => metaGet(meta, key, 'u32').value as number;
  const moe = metaGet(meta, MODEL_KEYS.moeLayers, 'array');
  if (moe.type !== 'array' || moe.itemType !== 'u32') metaError(`${MODEL_KEYS.moeLayers} must be an array of u32`);
  const config: IteraConfig = {
    vocabSize: u32(MODEL_KEYS.vocabSize),
    hiddenSize: u32(MODEL_KEYS.hiddenSize),
    numLayers: u32(MODEL_KEYS.numLayers),
    ssmStateSize: u32(MODEL_KEYS.ssmStateSize),
    ssmConvKernel: u32(MODEL_KEYS.ssmConvKernel),
    ssmInnerSize: u32(MODEL_KEYS.ssmInnerSize),
    numExperts: u32(MODEL_KEYS.numExperts),
    expertSize: u32(MODEL_KEYS.expertSize),
    topK: u32(MODEL_KEYS.topK),
    moeLayers: (moe.value as number[]).slice(),
    maxSeqLength: u32(MODEL_KEYS.maxSeqLength),
    layerNormEps: shortestF32(metaGet(meta, MODEL_KEYS.layerNormEps, 'f32').value as number),
  };
  validateConfig(config, 'model file configuration');
  const tied = metaGet(meta, MODEL_KEYS.tiedEmbeddings, 'bool').value as boolean;
  return { config, tied };
}

// ---------------------------------------------------------------------------------------------
// The file

export interface WriteModelInput {
  config: IteraConfig;
  /** Every tensor modelTensorSpecs(config, tied) lists (any order; written in canonical order).
   *  tied = there is no 'output.weight'. */
  tensors: readonly ModelTensor[];
  tokenizer: Tokenizer;
  /** general.name */
  name: string;
  /** Storage type for the quantizable matrices that do not set typeName ('F16' applies to every
   *  tensor; default 'F32'). */
  type?: QuantType;
}

/** The model file's bytes. Deterministic: the same input gives the same bytes. */
export function writeModelFile(input: WriteModelInput): Uint8Array {
  const { config, tokenizer, name } = input;
  validateConfig(config);
  if (typeof name !== 'string') throw new IteraError('the model name must be a string', 'MODEL_BAD_INPUT');
  if (!tokenizer || typeof tokenizer.toMetadata !== 'function') throw new IteraError('a tokenizer is required', 'MODEL_BAD_INPUT');
  if (tokenizer.size > config.vocabSize) {
    throw new IteraError(`the tokenizer has ${tokenizer.size} tokens but the model's vocabulary has only ${config.vocabSize} rows`, 'MODEL_TOKENIZER_TOO_BIG');
  }
  const given = new Map<string, ModelTensor>();
  for (const t of input.tensors) {
    if (given.has(t.name)) throw new IteraError(`tensor '${t.name}' given twice`, 'MODEL_DUPLICATE_TENSOR');
    given.set(t.name, t);
  }
  const tied = !given.has('output.weight');
  const specs = modelTensorSpecs(config, tied);
  const known = new Set(specs.map((s) => s.name));
  for (const n of given.keys()) {
    if (!known.has(n)) throw new IteraError(`tensor '${n}' is not part of an Itera-Lite model (${configSummary(config)})`, 'MODEL_UNKNOWN_TENSOR');
  }
  const i8meta: GgufKV[] = [];
  const tensors = specs.map((s) => {
    const t = given.get(s.name);
    if (!t) throw new IteraError(`tensor '${s.name}' ${s.dims} = ${fmtShape(s.shape)} is missing`, 'MODEL_MISSING_TENSOR');
    if (!sameShape(t.shape, s.shape)) {
      throw new IteraError(`tensor '${s.name}' has shape ${fmtShape(t.shape)} but the configuration implies ${s.dims} = ${fmtShape(s.shape)}`, 'MODEL_BAD_SHAPE');
    }
    if (!(t.data instanceof Float32Array) || t.data.length !== numel(s.shape)) {
      throw new IteraError(`tensor '${s.name}' needs a Float32Array of ${numel(s.shape)} values`, 'MODEL_BAD_TENSOR_DATA');
    }
    if (t.raw) {
      if (!quantizedTypeAllowed(s.name)) throw new IteraError(`tensor '${s.name}' cannot be stored quantized`, 'MODEL_UNSUPPORTED_TYPE');
      if (t.raw.type === GgmlType.I8) {
        const k = i8Keys(s.name);
        i8meta.push({ key: k.scale, value: { type: 'array', itemType: 'f32', value: t.raw.scales ?? [] } as GgufValue });
        i8meta.push({ key: k.zeroPoint, value: { type: 'i32', value: t.raw.zeroPoint ?? 0 } });
      }
      return { name: s.name, type: t.raw.type, shape: s.shape, data: t.raw.data };
    }
    // the default policy: input.type for the quantizable matrices whose rows are whole blocks
    // (F16 for every tensor), F32 for the rest
    const rowLen = s.shape[s.shape.length - 1];
    const quantizing = input.type === 'Q8_0' || input.type === 'Q4_0';
    const byPolicy = input.type === 'F16' || (isQuantizable(s.name) && rowLen % QK === 0) ? input.type
      : quantizing ? quantFallback(s.name, s.shape) : undefined;
    const typeName = t.typeName ?? byPolicy ?? 'F32';
    if (typeName === 'F32') return { name: s.name, type: GgmlType.F32, shape: s.shape, data: f32ToBytes(t.data) };
    if (typeName === 'F16') return { name: s.name, type: GgmlType.F16, shape: s.shape, data: f32ToF16Bytes(t.data) };
    if ((typeName === 'Q8_0' || typeName === 'Q4_0') && isTransposable(s.name)) {
      // stored transposed ([N, di]) under name + '_t': rows of di values, whole blocks
      const [rows, cols] = s.shape as [number, number];
      if (rows % QK !== 0) throw new IteraError(`tensor '${s.name}': neither its rows (${cols} values) nor its columns (${rows}) are a whole number of ${QK}-value blocks, so it cannot be ${typeName}`, 'QUANT_BAD_LENGTH');
      const tt = transpose2d(t.data, rows, cols);
      return { name: s.name + '_t', type: QUANT_TYPE_IDS[typeName], shape: [cols, rows], data: typeName === 'Q8_0' ? quantizeQ8_0(tt) : quantizeQ4_0(tt) };
    }
    if (typeName === 'Q8_0' || typeName === 'Q4_0') {
      if (!quantizedTypeAllowed(s.name)) throw new IteraError(`tensor '${s.name}' stays F32 (only the large matrices are quantized)`, 'MODEL_UNSUPPORTED_TYPE');
      const row = s.shape[s.shape.length - 1];
      if (row % QK !== 0) throw new IteraError(`tensor '${s.name}': rows of ${row} values are not a whole number of ${QK}-value blocks, so it cannot be ${typeName}`, 'QUANT_BAD_LENGTH');
      return { name: s.name, type: QUANT_TYPE_IDS[typeName], shape: s.shape, data: typeName === 'Q8_0' ? quantizeQ8_0(t.data) : quantizeQ4_0(t.data) };
    }
    throw new IteraError(`tensor '${s.name}': storage type '${String(typeName)}' is not supported (F32, F16, Q8_0, Q4_0)`, 'MODEL_UNSUPPORTED_TYPE');
  });
  const metadata: GgufKV[] = [
    { key: MODEL_KEYS.architecture, value: { type: 'string', value: ARCHITECTURE } },
    { key: MODEL_KEYS.name, value: { type: 'string', value: name } },
    ...configToMetadata(config, tied),
    ...tokenizer.toMetadata(),
    ...i8meta,
  ];
  return writeGguf({ metadata, tensors });
}

/** A tensor as stored in the model file. */
export interface ModelFileTensor {
  /** ggml type id: F32, F16, Q8_0, Q4_0 or I8. */
  type: number;
  /** PyTorch order. */
  shape: number[];
  /** Raw little-endian bytes: a view into the file's bytes. */
  data: Uint8Array;
  /** I8 only: value = scales[g] * (q - zeroPoint), g the row group (expert) of the value. */
  scales?: number[];
  zeroPoint?: number;
  /** The file stores the tensor transposed (name + '_t', shape reversed: ssm_c as [N, di]);
   *  `shape` is still the canonical one, and tensorAsF32 gives canonical order. */
  transposed?: boolean;
}

export interface IteraModelFile {
  name: string;
  config: IteraConfig;
  tiedEmbeddings: boolean;
  tokenizer: Tokenizer;
  /** Canonical order. Without output.weight when tiedEmbeddings. */
  tensors: Map<string, ModelFileTensor>;
  /** All metadata, in file order. */
  metadata: GgufKV[];
}

/** Reads and validates a model file completely: the GGUF structure (readGguf), the architecture,
 *  every configuration key (type and value), the tokenizer, every tensor the configuration
 *  implies (present, exact shape, a type the runtime runs) and no others. Throws IteraError. */
export function readModelFile(bytes: Uint8Array): IteraModelFile {
  const file = readGguf(bytes);
  const meta = metadataMap(file.metadata);
  const arch = meta.get(MODEL_KEYS.architecture);
  if (arch === undefined) metaError(`${MODEL_KEYS.architecture} is missing: not an Itera-Lite model file`);
  if (arch.type !== 'string' || arch.value !== ARCHITECTURE) {
    throw new IteraError(
      `model file is for architecture ${arch.type === 'string' ? `'${arch.value}'` : `(a ${arch.type})`}, not '${ARCHITECTURE}': this runtime runs Itera-Lite models only`,
      'MODEL_WRONG_ARCHITECTURE',
    );
  }
  const nameV = meta.get(MODEL_KEYS.name);
  if (nameV !== undefined && nameV.type !== 'string') metaError(`${MODEL_KEYS.name} must be a string, found ${nameV.type}`);
  const { config, tied } = configFromMetadata(meta);
  const tokenizer = tokenizerFromMetadata(meta);
  if (tokenizer.size > config.vocabSize) {
    throw new IteraError(`model file: the tokenizer has ${tokenizer.size} tokens but the model's vocabulary has only ${config.vocabSize} rows`, 'MODEL_TOKENIZER_TOO_BIG');
  }

  const byName = new Map(file.tensors.map((t) => [t.name, t]));
  const tensors = new Map<string, ModelFileTensor>();
  for (const s of modelTensorSpecs(config, tied)) {
    // ssm_c may be stored transposed, as ssm_c_t [N, di] (exactly one of the two)
    const tName = isTransposable(s.name) ? s.name + '_t' : '';
    const transposed = tName !== '' && byName.has(tName);
    if (transposed && byName.has(s.name)) throw new IteraError(`model file has both '${s.name}' and '${tName}': it must have one`, 'MODEL_DUPLICATE_TENSOR');
    const stored = transposed ? tName : s.name;
    const storedShape = transposed ? s.shape.slice().reverse() : s.shape;
    const storedDims = transposed ? `[${s.dims.slice(1, -1).split(', ').reverse().join(', ')}]` : s.dims;
    const t = byName.get(stored);
    if (!t) throw new IteraError(`model file is missing tensor '${s.name}' ${s.dims} = ${fmtShape(s.shape)}`, 'MODEL_MISSING_TENSOR');
    if (!sameShape(t.shape, storedShape)) {
      throw new IteraError(`model file tensor '${stored}' has shape ${fmtShape(t.shape)} but the configuration implies ${storedDims} = ${fmtShape(storedShape)}`, 'MODEL_BAD_SHAPE');
    }
    const quantized = t.type === GgmlType.Q8_0 || t.type === GgmlType.Q4_0 || t.type === GgmlType.I8;
    if (quantized && !quantizedTypeAllowed(s.name) && !(transposed && t.type !== GgmlType.I8)) {
      throw new IteraError(`model file tensor '${stored}' is stored as ${ggmlTypeName(t.type)}, but only the large matrices (and ssm_c stored transposed as ssm_c_t, Q8_0 or Q4_0) may be quantized: it must be F32 or F16`, 'MODEL_UNSUPPORTED_TYPE');
    }
    if (quantized && storedShape[storedShape.length - 1]! % QK !== 0) {
      throw new IteraError(`model file tensor '${stored}' is ${ggmlTypeName(t.type)} but its rows of ${storedShape[storedShape.length - 1]} values are not whole ${QK}-value blocks`, 'QUANT_BAD_LENGTH');
    }
    let scales: number[] | undefined;
    let zeroPoint: number | undefined;
    if (t.type === GgmlType.I8) {
      const k = i8Keys(s.name);
      const sv = meta.get(k.scale), zv = meta.get(k.zeroPoint);
      const groups = s.sources.length;
      if (sv === undefined || sv.type !== 'array' || sv.itemType !== 'f32') metaError(`I8 tensor '${s.name}' needs its scales as an f32 array ${k.scale}`);
      if (zv === undefined || zv.type !== 'i32') metaError(`I8 tensor '${s.name}' needs its zero point as an i32 ${k.zeroPoint}`);
      scales = (sv.value as number[]).slice();
      zeroPoint = zv.value as number;
      if (scales.length !== groups) throw new IteraError(`I8 tensor '${s.name}' has ${scales.length} scales, expected ${groups}`, 'QUANT_BAD_SCALE');
      for (const sc of scales) {
        if (!(sc > 0) || !Number.isFinite(sc)) throw new IteraError(`I8 tensor '${s.name}' has scale ${sc}: it must be a positive finite number`, 'QUANT_BAD_SCALE');
      }
      if (!Number.isInteger(zeroPoint) || zeroPoint < -128 || zeroPoint > 127) throw new IteraError(`I8 tensor '${s.name}' has zero point ${zeroPoint}: it must be an integer in -128..127`, 'QUANT_BAD_SCALE');
    }
    checkBlockScales(stored, t.type, t.data);
    if (!RUNTIME_TENSOR_TYPES.includes(t.type)) {
      throw new IteraError(
        `model file tensor '${s.name}' is stored as ${ggmlTypeName(t.type)}, which this runtime does not run yet (it runs ${RUNTIME_TENSOR_TYPES.map(ggmlTypeName).join(', ')})`,
        'MODEL_UNSUPPORTED_TYPE',
      );
    }
    tensors.set(s.name, t.type === GgmlType.I8 ? { type: t.type, shape: t.shape, data: t.data, scales, zeroPoint }
      : transposed ? { type: t.type, shape: s.shape.slice(), data: t.data, transposed: true } : { type: t.type, shape: t.shape, data: t.data });
    byName.delete(stored);
  }
  if (byName.size > 0) {
    const extra = [...byName.keys()];
    const hint = tied && byName.has('output.weight') ? ` (output.weight with ${MODEL_KEYS.tiedEmbeddings} = true)` : '';
    throw new IteraError(
      `model file has tensor${extra.length > 1 ? 's' : ''} that an Itera-Lite model (${configSummary(config)}) does not have: ${extra.slice(0, 8).map((n) => `'${n}'`).join(', ')}${extra.length > 8 ? ', ...' : ''}${hint}`,
      'MODEL_UNKNOWN_TENSOR',
    );
  }
  return { name: nameV?.value as string ?? '', config, tiedEmbeddings: tied, tokenizer, tensors, metadata: file.metadata };
}

/** A model-file tensor's values as f32. F32 data at a 4-byte-aligned offset is returned as a view
 *  into the file's bytes (no copy: do not modify it); otherwise a new array. */
export function tensorAsF32(t: { type: number; shape: readonly number[]; data: Uint8Array; scales?: number[]; zeroPoint?: number; transposed?: boolean }): Float32Array {
  if (t.transposed) {
    // stored as the transpose of its [rows, cols] shape: read as [cols, rows], then turn back
    const [rows, cols] = t.shape as [number, number];
    return transpose2d(tensorAsF32({ type: t.type, shape: [cols, rows], data: t.data }), cols, rows);
  }
  const n = numel(t.shape);
  if (t.type === GgmlType.F32) {
    if (t.data.length !== n * 4) throw new IteraError(`F32 tensor ${fmtShape(t.shape)} needs ${n * 4} bytes, has ${t.data.length}`, 'MODEL_BAD_TENSOR_DATA');
    if (t.data.byteOffset % 4 === 0 && littleEndianHost) return new Float32Array(t.data.buffer, t.data.byteOffset, n);
    return f32BytesToF32(t.data);
  }
  if (t.type === GgmlType.F16) {
    if (t.data.length !== n * 2) throw new IteraError(`F16 tensor ${fmtShape(t.shape)} needs ${n * 2} bytes, has ${t.data.length}`, 'MODEL_BAD_TENSOR_DATA');
    return f16BytesToF32(t.data);
  }
  if (t.type === GgmlType.Q8_0) return dequantizeQ8_0(t.data, n);
  if (t.type === GgmlType.Q4_0) return dequantizeQ4_0(t.data, n);
  if (t.type === GgmlType.I8) {
    const sc = t.scales ?? [];
    const per = n / Math.max(1, sc.length);
    const out = new Float32Array(n);
    sc.forEach((scale, g) => out.set(dequantizeI8(t.data.subarray(g * per, (g + 1) * per), per, scale, t.zeroPoint ?? 0), g * per));
    return out;
  }
  throw new IteraError(`tensors of type ${ggmlTypeName(t.type)} cannot be read as f32`, 'MODEL_UNSUPPORTED_TYPE');
}
