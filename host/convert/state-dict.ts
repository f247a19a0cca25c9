// A PyTorch state_dict (as the importers give it) -> the model file's configuration and canonical
// f32 tensors, every tensor checked against the shape the configuration implies.

import { IteraError, type DType, type IteraConfig, type RawTensor } from '../runtime/types.js';
import { bf16BytesToF32, f16BytesToF32, f32BytesToF32 } from '../runtime/f16.js';
import {
  configSummary,
  countParameters,
  quantizedTypeAllowed,
  fmtShape,
  modelTensorSpecs,
  numel,
  sameShape,
  validateConfig,
} from '../runtime/model-file.js';
import { QK, dequantizeI8, type QuantType } from '../runtime/quant.js';
import { GgmlType } from '../runtime/gguf.js';

export interface StateDictOptions {
  /** Experts used per token (k); not in the checkpoint. Default 2. Must be 1..E. */
  topK?: number;
  /** LayerNorm epsilon; not in the checkpoint. Default 1e-5. */
  eps?: number;
  /** T of a checkpoint without position_embedding.weight (a position-free model): the context
   *  it was trained with, e.g. from its export's metadata. Required then; ignored otherwise. */
  maxSeqLength?: number;
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
    throw new IteraError(
      `checkpoint has no tensor '${name}' (${why}); is this an Itera-Lite state_dict?`,
      'MODEL_MISSING_TENSOR',
    );
  }
  if (!Array.isArray(t.shape) || t.shape.length !== rank || !t.shape.every((x) => Number.isInteger(x) && x >= 1)) {
    throw new IteraError(
      `tensor '${name}' has shape ${fmtShape(t.shape ?? [])}, expected ${rank} dimensions (${why})`,
      'MODEL_BAD_SHAPE',
    );
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
  // without learned positions (a position-free model), T is the trained context, told by opts
  const positionFree = !sd.has('position_embedding.weight');
  if (positionFree && opts.maxSeqLength === undefined) {
    throw new IteraError(
      "checkpoint has no 'position_embedding.weight': a position-free model, whose training context T must be " +
        "given (itera convert --context T, or the export's __metadata__ config max_seq_length)",
      'MODEL_MISSING_TENSOR',
    );
  }
  const T = positionFree
    ? opts.maxSeqLength!
    : (need(sd, 'position_embedding.weight', 2, 'gives T') as [number, number])[0];

  const layerIdx = new Set<number>();
  for (const n of sd.keys()) {
    const m = /^layers\.(0|[1-9][0-9]*)\./.exec(n);
    if (m) layerIdx.add(Number(m[1]));
  }
  const L = layerIdx.size;
  if (L === 0) throw new IteraError("checkpoint has no 'layers.{i}.*' tensors", 'MODEL_MISSING_TENSOR');
  for (let i = 0; i < L; i++) {
    if (!layerIdx.has(i)) {
      throw new IteraError(
        `checkpoint has tensors of layers up to ${Math.max(...layerIdx)} but none of layer ${i}`,
        'MODEL_MISSING_TENSOR',
      );
    }
  }
  const [di, one, K] = need(sd, 'layers.0.ssm.conv1d.weight', 3, 'gives di and K') as [number, number, number];
  if (one !== 1) {
    throw new IteraError(
      `tensor 'layers.0.ssm.conv1d.weight' has shape [${di}, ${one}, ${K}]; a depthwise conv1d weight is [di, 1, K]`,
      'MODEL_BAD_SHAPE',
    );
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
      throw new IteraError(
        `layer ${i} has both mixture-of-experts (layers.${i}.moe.layer.*) and dense (layers.${i}.moe.ffn/norm.*) tensors`,
        'MODEL_BAD_LAYER',
      );
    }
    if (!moe && !dense) {
      throw new IteraError(
        `layer ${i} has no feed-forward tensors (neither layers.${i}.moe.layer.* nor layers.${i}.moe.ffn.*)`,
        'MODEL_MISSING_TENSOR',
      );
    }
    if (moe) {
      moeLayers.push(i);
      const experts = new Set<number>();
      for (const n of names) {
        const m = new RegExp(`^layers\\.${i}\\.moe\\.layer\\.experts\\.(0|[1-9][0-9]*)\\.`).exec(n);
        if (m) experts.add(Number(m[1]));
      }
      const e = experts.size;
      if (e === 0)
        throw new IteraError(
          `MoE layer ${i} has no experts (layers.${i}.moe.layer.experts.{j}.*)`,
          'MODEL_MISSING_TENSOR',
        );
      for (let j = 0; j < e; j++) {
        if (!experts.has(j))
          throw new IteraError(
            `MoE layer ${i} has experts up to ${Math.max(...experts)} but no expert ${j}`,
            'MODEL_MISSING_TENSOR',
          );
      }
      if (E === -1) E = e;
      else if (e !== E)
        throw new IteraError(`MoE layer ${i} has ${e} experts but layer ${moeLayers[0]} has ${E}`, 'MODEL_BAD_LAYER');
      if (f === -1) f = need(sd, `layers.${i}.moe.layer.experts.0.w1.weight`, 2, 'gives f')[0]!;
    } else if (f === -1) {
      f = need(sd, `layers.${i}.moe.ffn.w1.weight`, 2, 'gives f')[0]!;
    }
  }
  const hasMoe = moeLayers.length > 0;
  const topK = opts.topK ?? 2;
  if (hasMoe && (!Number.isInteger(topK) || topK < 1 || topK > E)) {
    throw new IteraError(
      `top-k is ${topK}, but it must be a whole number from 1 to the ${E} experts of this checkpoint`,
      'MODEL_BAD_CONFIG',
    );
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
    ...(positionFree ? { positionEmbedding: false } : {}),
  };
  validateConfig(config, 'configuration inferred from the checkpoint');
  return config;
}

const DTYPE_BYTES: Partial<Record<DType, number>> = { f32: 4, f16: 2, bf16: 2, f64: 8 };

/** A RawTensor's values as f32 (f32, f16, bf16 exactly; f64 rounded). */
export function rawTensorToF32(t: RawTensor): Float32Array {
  if (t.dtype === 'qint8') {
    const q = t.quant;
    if (!q)
      throw new IteraError(
        `tensor '${t.name}' is INT8 (qint8) without its scale and zero point`,
        'MODEL_BAD_TENSOR_DATA',
      );
    return dequantizeI8(t.data, t.data.length, q.scale, q.zeroPoint);
  }
  const size = DTYPE_BYTES[t.dtype];
  if (size === undefined) {
    throw new IteraError(
      `tensor '${t.name}' has dtype ${t.dtype}; weights must be floating point (f32, f16, bf16 or f64)`,
      'MODEL_BAD_DTYPE',
    );
  }
  const n = numel(t.shape);
  if (!(t.data instanceof Uint8Array) || t.data.length !== n * size) {
    throw new IteraError(
      `tensor '${t.name}' ${fmtShape(t.shape)} of ${t.dtype} needs ${n * size} bytes but has ${t.data instanceof Uint8Array ? t.data.length : 'no'} bytes of data`,
      'MODEL_BAD_TENSOR_DATA',
    );
  }
  switch (t.dtype) {
    case 'f32':
      return f32BytesToF32(t.data);
    case 'f16':
      return f16BytesToF32(t.data);
    case 'bf16':
      return bf16BytesToF32(t.data);
    default: {
      const dv = new DataView(t.data.buffer, t.data.byteOffset, t.data.byteLength);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getFloat64(i * 8, true);
      return out;
    }
  }
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
  if (opts.topK === undefined && config.moeLayers.length > 0)
    notes.push('top-k (experts used per token) is not stored in checkpoints: using the default 2');
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
          throw new IteraError(
            `tensor '${src}' has a non-finite value (${values[i]}) at element ${i}: the checkpoint is damaged`,
            'MODEL_NON_FINITE',
          );
        }
      }
      data.set(values, j * values.length);
      used.add(src);
    });
    const srcs = spec.sources.map((src) => sd.get(src)!);
    const nq = srcs.filter((r) => r.dtype === 'qint8').length;
    if (nq > 0) {
      // PyTorch's dynamic INT8: keep the stored integers and scales (one per source tensor)
      if (nq !== srcs.length)
        throw new IteraError(`'${spec.name}': its source tensors mix INT8 and float storage`, 'MODEL_BAD_TENSOR_DATA');
      if (!quantizedTypeAllowed(spec.name))
        throw new IteraError(
          `tensor '${spec.sources[0]}' is INT8, but '${spec.name}' must stay float in this runtime`,
          'MODEL_UNSUPPORTED_TYPE',
        );
      const zps = new Set(srcs.map((r) => r.quant!.zeroPoint));
      if (zps.size !== 1)
        throw new IteraError(
          `'${spec.name}': its INT8 source tensors have different zero points (${[...zps].join(', ')}); one per tensor is supported`,
          'MODEL_BAD_TENSOR_DATA',
        );
      const row = spec.shape[spec.shape.length - 1];
      if (row % QK !== 0)
        throw new IteraError(
          `'${spec.name}' is INT8 but its rows of ${row} values are not whole ${QK}-value blocks`,
          'QUANT_BAD_LENGTH',
        );
      const bytes = new Uint8Array(numel(spec.shape));
      srcs.forEach((r, j) => bytes.set(r.data, j * r.data.length));
      out.push({
        name: spec.name,
        shape: spec.shape,
        data,
        raw: { type: GgmlType.I8, data: bytes, scales: srcs.map((r) => r.quant!.scale), zeroPoint: [...zps][0] },
      });
      quantized.push(spec.name);
      continue;
    }
    out.push({ name: spec.name, shape: spec.shape, data });
  }
  if (quantized.length)
    notes.push(
      `INT8 (PyTorch dynamic quantization) kept as stored, type I8 with per-tensor scales: ${quantized.join(', ')}`,
    );

  const dropped: string[] = [];
  for (const i of config.moeLayers) {
    const name = `layers.${i}.moe.layer.router.expert_counts`;
    const t = sd.get(name);
    if (!t) continue;
    if (!sameShape(t.shape, [config.numExperts])) {
      throw new IteraError(
        `tensor '${name}' has shape ${fmtShape(t.shape)} but the configuration implies [${config.numExperts}] (E)`,
        'MODEL_BAD_SHAPE',
      );
    }
    used.add(name);
    dropped.push(name);
  }
  if (dropped.length)
    notes.push(
      `dropped ${dropped.join(', ')}: a training statistic (running expert usage), not used by the forward pass`,
    );

  const unknown = [...sd.keys()].filter((n) => !used.has(n));
  if (unknown.length) {
    const list = unknown
      .slice(0, 8)
      .map((n) => `'${n}' ${fmtShape(sd.get(n)!.shape ?? [])}`)
      .join(', ');
    throw new IteraError(
      `checkpoint has ${unknown.length} tensor${unknown.length > 1 ? 's' : ''} that an Itera-Lite model (${configSummary(config)}) does not have: ${list}${unknown.length > 8 ? ', ...' : ''}`,
      'MODEL_UNKNOWN_TENSOR',
    );
  }
  return { config, tiedEmbeddings: tied, tensors: out, parameters: countParameters(config, tied), notes };
}
