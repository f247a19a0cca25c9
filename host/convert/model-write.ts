// Writing the model file (docs/model-file.md; read by host/runtime/model-file.ts): the
// configuration keys, the tokenizer and the tensors, quantized as asked.

import { IteraError, type IteraConfig } from '../runtime/types.js';
import { GgmlType, type GgufKV, type GgufValue } from '../runtime/gguf.js';
import { f32ToBytes, f32ToF16Bytes } from '../runtime/f16.js';
import type { Tokenizer } from '../runtime/tokenizer/index.js';
import {
  ARCHITECTURE,
  MODEL_KEYS,
  configSummary,
  fmtShape,
  i8Keys,
  modelTensorSpecs,
  numel,
  quantizedTypeAllowed,
  sameShape,
  validateConfig,
} from '../runtime/model-file.js';
import { QK, isQuantizable, isTransposable, transpose2d, type QuantType } from '../runtime/quant.js';
import type { ModelTensor } from './state-dict.js';
import { QUANT_TYPE_IDS, quantFallback, quantizeQ4_0, quantizeQ8_0 } from './quantize.js';
import { writeGguf } from './gguf-write.js';

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
    // written only for position-free models, so files of the original's kind are unchanged
    ...(c.positionEmbedding === false
      ? [{ key: MODEL_KEYS.positionEmbedding, value: { type: 'bool', value: false } } as GgufKV]
      : []),
  ];
}

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
  if (!tokenizer || typeof tokenizer.toMetadata !== 'function')
    throw new IteraError('a tokenizer is required', 'MODEL_BAD_INPUT');
  if (tokenizer.size > config.vocabSize) {
    throw new IteraError(
      `the tokenizer has ${tokenizer.size} tokens but the model's vocabulary has only ${config.vocabSize} rows`,
      'MODEL_TOKENIZER_TOO_BIG',
    );
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
    if (!known.has(n))
      throw new IteraError(
        `tensor '${n}' is not part of an Itera-Lite model (${configSummary(config)})`,
        'MODEL_UNKNOWN_TENSOR',
      );
  }
  const i8meta: GgufKV[] = [];
  const tensors = specs.map((s) => {
    const t = given.get(s.name);
    if (!t)
      throw new IteraError(`tensor '${s.name}' ${s.dims} = ${fmtShape(s.shape)} is missing`, 'MODEL_MISSING_TENSOR');
    if (!sameShape(t.shape, s.shape)) {
      throw new IteraError(
        `tensor '${s.name}' has shape ${fmtShape(t.shape)} but the configuration implies ${s.dims} = ${fmtShape(s.shape)}`,
        'MODEL_BAD_SHAPE',
      );
    }
    if (!(t.data instanceof Float32Array) || t.data.length !== numel(s.shape)) {
      throw new IteraError(
        `tensor '${s.name}' needs a Float32Array of ${numel(s.shape)} values`,
        'MODEL_BAD_TENSOR_DATA',
      );
    }
    if (t.raw) {
      if (!quantizedTypeAllowed(s.name))
        throw new IteraError(`tensor '${s.name}' cannot be stored quantized`, 'MODEL_UNSUPPORTED_TYPE');
      if (t.raw.type === GgmlType.I8) {
        const k = i8Keys(s.name);
        i8meta.push({
          key: k.scale,
          value: { type: 'array', itemType: 'f32', value: t.raw.scales ?? [] } as GgufValue,
        });
        i8meta.push({ key: k.zeroPoint, value: { type: 'i32', value: t.raw.zeroPoint ?? 0 } });
      }
      return { name: s.name, type: t.raw.type, shape: s.shape, data: t.raw.data };
    }
    // the default policy: input.type for the quantizable matrices whose rows are whole blocks
    // (F16 for every tensor), F32 for the rest
    const rowLen = s.shape[s.shape.length - 1];
    const quantizing = input.type === 'Q8_0' || input.type === 'Q4_0';
    const byPolicy =
      input.type === 'F16' || (isQuantizable(s.name) && rowLen % QK === 0)
        ? input.type
        : quantizing
          ? quantFallback(s.name, s.shape)
          : undefined;
    const typeName = t.typeName ?? byPolicy ?? 'F32';
    if (typeName === 'F32') return { name: s.name, type: GgmlType.F32, shape: s.shape, data: f32ToBytes(t.data) };
    if (typeName === 'F16') return { name: s.name, type: GgmlType.F16, shape: s.shape, data: f32ToF16Bytes(t.data) };
    if ((typeName === 'Q8_0' || typeName === 'Q4_0') && isTransposable(s.name)) {
      // stored transposed ([N, di]) under name + '_t': rows of di values, whole blocks
      const [rows, cols] = s.shape as [number, number];
      if (rows % QK !== 0)
        throw new IteraError(
          `tensor '${s.name}': neither its rows (${cols} values) nor its columns (${rows}) are a whole number of ${QK}-value blocks, so it cannot be ${typeName}`,
          'QUANT_BAD_LENGTH',
        );
      const tt = transpose2d(t.data, rows, cols);
      return {
        name: s.name + '_t',
        type: QUANT_TYPE_IDS[typeName],
        shape: [cols, rows],
        data: typeName === 'Q8_0' ? quantizeQ8_0(tt) : quantizeQ4_0(tt),
      };
    }
    if (typeName === 'Q8_0' || typeName === 'Q4_0') {
      if (!quantizedTypeAllowed(s.name))
        throw new IteraError(
          `tensor '${s.name}' stays F32 (only the large matrices are quantized)`,
          'MODEL_UNSUPPORTED_TYPE',
        );
      const row = s.shape[s.shape.length - 1];
      if (row % QK !== 0)
        throw new IteraError(
          `tensor '${s.name}': rows of ${row} values are not a whole number of ${QK}-value blocks, so it cannot be ${typeName}`,
          'QUANT_BAD_LENGTH',
        );
      return {
        name: s.name,
        type: QUANT_TYPE_IDS[typeName],
        shape: s.shape,
        data: typeName === 'Q8_0' ? quantizeQ8_0(t.data) : quantizeQ4_0(t.data),
      };
    }
    throw new IteraError(
      `tensor '${s.name}': storage type '${String(typeName)}' is not supported (F32, F16, Q8_0, Q4_0)`,
      'MODEL_UNSUPPORTED_TYPE',
    );
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
