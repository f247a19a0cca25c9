// The Itera-Lite model file: a GGUF file (gguf.ts) with architecture "itera-lite", the
// configuration as `itera-lite.*` keys, the tokenizer, and the weights under llama.cpp-style
// names. docs/model-file.md describes the format; this file is its reference reader:
//   - modelTensorSpecs / validateConfig: the tensors a configuration implies, and its limits;
//   - readModelFile: the file itself, validated completely;
//   - countParameters: the parameter count as the original reports it.
// Writing (host/convert/model-write.ts) and the state_dict mapping (host/convert/state-dict.ts)
// live with the converters: a device only reads.
// Platform-neutral.

import { IteraError, type IteraConfig } from './types.js';
import { readGguf, metadataMap, GgmlType, ggmlTypeName, type GgufKV, type GgufValue } from './gguf.js';
import { f16BytesToF32, f32BytesToF32 } from './f16.js';
import { tokenizerFromMetadata, type Tokenizer } from './tokenizer/index.js';
import {
  QK,
  checkBlockScales,
  dequantizeI8,
  dequantizeQ4_0,
  dequantizeQ8_0,
  isQuantizable,
  isTransposable,
  transpose2d,
} from './quant.js';

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
  positionEmbedding: 'itera-lite.position_embedding', // bool, only when false (absent: true)
} as const;

/** ggml types the runtime runs: F32 and F16 for every tensor; Q8_0, Q4_0 and I8 for the matrices
 *  that may be quantized (quantizedTypeAllowed). */
export const RUNTIME_TENSOR_TYPES: readonly number[] = [
  GgmlType.F32,
  GgmlType.F16,
  GgmlType.Q8_0,
  GgmlType.Q4_0,
  GgmlType.I8,
];

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
  const {
    vocabSize: V,
    hiddenSize: d,
    ssmInnerSize: di,
    ssmConvKernel: K,
    ssmStateSize: N,
    numExperts: E,
    expertSize: f,
  } = c;
  const out: TensorSpec[] = [];
  const add = (name: string, shape: number[], dims: string, source: string, sourceShape = shape): void => {
    out.push({ name, shape, dims, sources: [source], sourceShape });
  };
  add('token_embd.weight', [V, d], '[V, d]', 'embedding.weight');
  if (c.positionEmbedding !== false)
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
      out.push({
        name: b + 'ffn_up_exps.weight',
        shape: [E, f, d],
        dims: '[E, f, d]',
        sources: experts('w1'),
        sourceShape: [f, d],
      });
      out.push({
        name: b + 'ffn_down_exps.weight',
        shape: [E, d, f],
        dims: '[E, d, f]',
        sources: experts('w2'),
        sourceShape: [d, f],
      });
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

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export const fmtShape = (s: readonly number[]): string => `[${s.join(', ')}]`;

export function configSummary(c: IteraConfig): string {
  return (
    `V=${c.vocabSize} d=${c.hiddenSize} T=${c.maxSeqLength} L=${c.numLayers} N=${c.ssmStateSize} K=${c.ssmConvKernel} ` +
    `di=${c.ssmInnerSize} E=${c.numExperts} f=${c.expertSize} moe_layers=[${c.moeLayers.join(',')}]` +
    (c.positionEmbedding === false ? ' no-positions' : '')
  );
}

/** Throws IteraError MODEL_BAD_CONFIG unless every field is sane. */
export function validateConfig(c: IteraConfig, where = 'model configuration'): void {
  const bad = (why: string): never => {
    throw new IteraError(`${where}: ${why}`, 'MODEL_BAD_CONFIG');
  };
  const int = (name: keyof IteraConfig, v: unknown, min: number, max: number): void => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
      bad(`${name} is ${String(v)}; it must be a whole number from ${min} to ${max}`);
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
    if (!Number.isInteger(l) || l < 0 || l >= c.numLayers)
      bad(`moe layer ${String(l)} is not a layer index (0..${c.numLayers - 1})`);
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
    if (numel(s.shape) * 4 > 0x7fffffff)
      bad(`tensor '${s.name}' ${s.dims} = ${fmtShape(s.shape)} would not fit in memory`);
  }
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

// ---------------------------------------------------------------------------------------------
// Metadata
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
  if (meta.has(MODEL_KEYS.positionEmbedding)) {
    const pe = metaGet(meta, MODEL_KEYS.positionEmbedding, 'bool').value as boolean;
    if (pe) metaError(`${MODEL_KEYS.positionEmbedding} is written only when false (no learned positions)`);
    config.positionEmbedding = false;
  }
  validateConfig(config, 'model file configuration');
  const tied = metaGet(meta, MODEL_KEYS.tiedEmbeddings, 'bool').value as boolean;
  return { config, tied };
}

// ---------------------------------------------------------------------------------------------
// The file
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
  if (nameV !== undefined && nameV.type !== 'string')
    metaError(`${MODEL_KEYS.name} must be a string, found ${nameV.type}`);
  const { config, tied } = configFromMetadata(meta);
  const tokenizer = tokenizerFromMetadata(meta);
  if (tokenizer.size > config.vocabSize) {
    throw new IteraError(
      `model file: the tokenizer has ${tokenizer.size} tokens but the model's vocabulary has only ${config.vocabSize} rows`,
      'MODEL_TOKENIZER_TOO_BIG',
    );
  }

  const byName = new Map(file.tensors.map((t) => [t.name, t]));
  const tensors = new Map<string, ModelFileTensor>();
  for (const s of modelTensorSpecs(config, tied)) {
    // ssm_c may be stored transposed, as ssm_c_t [N, di] (exactly one of the two)
    const tName = isTransposable(s.name) ? s.name + '_t' : '';
    const transposed = tName !== '' && byName.has(tName);
    if (transposed && byName.has(s.name))
      throw new IteraError(
        `model file has both '${s.name}' and '${tName}': it must have one`,
        'MODEL_DUPLICATE_TENSOR',
      );
    const stored = transposed ? tName : s.name;
    const storedShape = transposed ? s.shape.slice().reverse() : s.shape;
    const storedDims = transposed ? `[${s.dims.slice(1, -1).split(', ').reverse().join(', ')}]` : s.dims;
    const t = byName.get(stored);
    if (!t)
      throw new IteraError(
        `model file is missing tensor '${s.name}' ${s.dims} = ${fmtShape(s.shape)}`,
        'MODEL_MISSING_TENSOR',
      );
    if (!sameShape(t.shape, storedShape)) {
      throw new IteraError(
        `model file tensor '${stored}' has shape ${fmtShape(t.shape)} but the configuration implies ${storedDims} = ${fmtShape(storedShape)}`,
        'MODEL_BAD_SHAPE',
      );
    }
    const quantized = t.type === GgmlType.Q8_0 || t.type === GgmlType.Q4_0 || t.type === GgmlType.I8;
    if (quantized && !quantizedTypeAllowed(s.name) && !(transposed && t.type !== GgmlType.I8)) {
      throw new IteraError(
        `model file tensor '${stored}' is stored as ${ggmlTypeName(t.type)}, but only the large matrices (and ssm_c stored transposed as ssm_c_t, Q8_0 or Q4_0) may be quantized: it must be F32 or F16`,
        'MODEL_UNSUPPORTED_TYPE',
      );
    }
    if (quantized && storedShape[storedShape.length - 1]! % QK !== 0) {
      throw new IteraError(
        `model file tensor '${stored}' is ${ggmlTypeName(t.type)} but its rows of ${storedShape[storedShape.length - 1]} values are not whole ${QK}-value blocks`,
        'QUANT_BAD_LENGTH',
      );
    }
    let scales: number[] | undefined;
    let zeroPoint: number | undefined;
    if (t.type === GgmlType.I8) {
      const k = i8Keys(s.name);
      const sv = meta.get(k.scale),
        zv = meta.get(k.zeroPoint);
      const groups = s.sources.length;
      if (sv === undefined || sv.type !== 'array' || sv.itemType !== 'f32')
        metaError(`I8 tensor '${s.name}' needs its scales as an f32 array ${k.scale}`);
      if (zv === undefined || zv.type !== 'i32')
        metaError(`I8 tensor '${s.name}' needs its zero point as an i32 ${k.zeroPoint}`);
      scales = (sv.value as number[]).slice();
      zeroPoint = zv.value as number;
      if (scales.length !== groups)
        throw new IteraError(
          `I8 tensor '${s.name}' has ${scales.length} scales, expected ${groups}`,
          'QUANT_BAD_SCALE',
        );
      for (const sc of scales) {
        if (!(sc > 0) || !Number.isFinite(sc))
          throw new IteraError(
            `I8 tensor '${s.name}' has scale ${sc}: it must be a positive finite number`,
            'QUANT_BAD_SCALE',
          );
      }
      if (!Number.isInteger(zeroPoint) || zeroPoint < -128 || zeroPoint > 127)
        throw new IteraError(
          `I8 tensor '${s.name}' has zero point ${zeroPoint}: it must be an integer in -128..127`,
          'QUANT_BAD_SCALE',
        );
    }
    checkBlockScales(stored, t.type, t.data);
    if (!RUNTIME_TENSOR_TYPES.includes(t.type)) {
      throw new IteraError(
        `model file tensor '${s.name}' is stored as ${ggmlTypeName(t.type)}, which this runtime does not run yet (it runs ${RUNTIME_TENSOR_TYPES.map(ggmlTypeName).join(', ')})`,
        'MODEL_UNSUPPORTED_TYPE',
      );
    }
    tensors.set(
      s.name,
      t.type === GgmlType.I8
        ? { type: t.type, shape: t.shape, data: t.data, scales, zeroPoint }
        : transposed
          ? { type: t.type, shape: s.shape.slice(), data: t.data, transposed: true }
          : { type: t.type, shape: t.shape, data: t.data },
    );
    byName.delete(stored);
  }
  if (byName.size > 0) {
    const extra = [...byName.keys()];
    const hint = tied && byName.has('output.weight') ? ` (output.weight with ${MODEL_KEYS.tiedEmbeddings} = true)` : '';
    throw new IteraError(
      `model file has tensor${extra.length > 1 ? 's' : ''} that an Itera-Lite model (${configSummary(config)}) does not have: ${extra
        .slice(0, 8)
        .map((n) => `'${n}'`)
        .join(', ')}${extra.length > 8 ? ', ...' : ''}${hint}`,
      'MODEL_UNKNOWN_TENSOR',
    );
  }
  return {
    name: (nameV?.value as string) ?? '',
    config,
    tiedEmbeddings: tied,
    tokenizer,
    tensors,
    metadata: file.metadata,
  };
}

/** A model-file tensor's values as f32. F32 data at a 4-byte-aligned offset is returned as a view
 *  into the file's bytes (no copy: do not modify it); otherwise a new array. */
export function tensorAsF32(t: {
  type: number;
  shape: readonly number[];
  data: Uint8Array;
  scales?: number[];
  zeroPoint?: number;
  transposed?: boolean;
}): Float32Array {
  if (t.transposed) {
    // stored as the transpose of its [rows, cols] shape: read as [cols, rows], then turn back
    const [rows, cols] = t.shape as [number, number];
    return transpose2d(tensorAsF32({ type: t.type, shape: [cols, rows], data: t.data }), cols, rows);
  }
  const n = numel(t.shape);
  if (t.type === GgmlType.F32) {
    if (t.data.length !== n * 4)
      throw new IteraError(
        `F32 tensor ${fmtShape(t.shape)} needs ${n * 4} bytes, has ${t.data.length}`,
        'MODEL_BAD_TENSOR_DATA',
      );
    if (t.data.byteOffset % 4 === 0 && littleEndianHost) return new Float32Array(t.data.buffer, t.data.byteOffset, n);
    return f32BytesToF32(t.data);
  }
  if (t.type === GgmlType.F16) {
    if (t.data.length !== n * 2)
      throw new IteraError(
        `F16 tensor ${fmtShape(t.shape)} needs ${n * 2} bytes, has ${t.data.length}`,
        'MODEL_BAD_TENSOR_DATA',
      );
    return f16BytesToF32(t.data);
  }
  if (t.type === GgmlType.Q8_0) return dequantizeQ8_0(t.data, n);
  if (t.type === GgmlType.Q4_0) return dequantizeQ4_0(t.data, n);
  if (t.type === GgmlType.I8) {
    const sc = t.scales ?? [];
    const per = n / Math.max(1, sc.length);
    const out = new Float32Array(n);
    sc.forEach((scale, g) =>
      out.set(dequantizeI8(t.data.subarray(g * per, (g + 1) * per), per, scale, t.zeroPoint ?? 0), g * per),
    );
    return out;
  }
  throw new IteraError(`tensors of type ${ggmlTypeName(t.type)} cannot be read as f32`, 'MODEL_UNSUPPORTED_TYPE');
}
