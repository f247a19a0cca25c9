// The memory budget of a load (LoadOptions.memoryBudget): what a model will take, worked out before
// the memory is taken. A WebView that runs out is ended by the system without a word (iOS, around
// 1.5-2 GB), so the loader refuses a model that would not fit and says what to do instead.
//
// What a load holds at its peak: the worker's copy of the file, plus the module's memory (the
// weights, copied out of the file; one session's buffers; the module's own data and stack).

import { IteraError, type IteraConfig } from '../runtime/types.js';
import { GGML_TYPES, GgmlType, readGguf, metadataMap } from '../runtime/gguf.js';
import { configFromMetadata } from '../runtime/model-file.js';

/** The module's own memory before any model: its initial pages, data and stack, rounded up. */
export const MODULE_BASE_BYTES = 256 * 1024;

const MiB = (n: number): string => (n / 1048576).toFixed(n < 10 * 1048576 ? 2 : 0) + ' MiB';

/** Bytes one session's buffers take (assembly/model.ts sessionNew: CHUNK rows of activations,
 *  logits, conv windows, scan states, sampling and quantization scratch; each 16-byte aligned). */
export function sessionBytes(c: IteraConfig): number {
  const CHUNK = 8;
  const QK = 32;
  const fl = (n: number): number => Math.ceil(n / 4) * 16;
  const row = (n: number): number => Math.ceil(n / 4) * 4;
  const d = c.hiddenSize,
    di = c.ssmInnerSize,
    k = c.topK,
    f = c.expertSize,
    V = c.vocabSize;
  const stride = Math.ceil(Math.max(d, di, f, c.ssmStateSize) / QK) * QK;
  return (
    fl(CHUNK * row(d)) * 3 + // h, u, m
    fl(CHUNK * row(2 * di)) +
    fl(CHUNK * row(di)) * 2 +
    fl(CHUNK * row(Math.max(di, d))) +
    fl(CHUNK * row(c.ssmStateSize)) +
    fl(CHUNK * row(Math.max(k, 1) * f)) +
    fl(c.numExperts) +
    2 * fl(k) +
    3 * fl(V) +
    fl(c.numLayers * (c.ssmConvKernel - 1) * di) +
    fl(c.numLayers * c.ssmStateSize) +
    fl(c.maxSeqLength) +
    fl((CHUNK * stride) / 2) +
    2 * fl((CHUNK * stride) / QK) +
    1024 // the session's own fields and the quantization scratch header
  );
}

/** The peak bytes loading a model file of `fileBytes` needs, known from its size alone: the
 *  worker's copy and the module's copy of the tensor data, which is nearly all of a model file. */
export function roughLoadBytes(fileBytes: number): number {
  return 2 * fileBytes;
}

export interface MemoryNeed {
  /** The worker's copy of the file while it loads. */
  fileBytes: number;
  /** The weights in the module's memory (each tensor 16-byte aligned). */
  weightBytes: number;
  /** One session's buffers and the module's own memory. */
  bufferBytes: number;
  total: number;
}

/** What loading this model file takes, from its GGUF header (nothing is allocated for it). */
export function memoryNeed(bytes: Uint8Array): MemoryNeed {
  const file = readGguf(bytes);
  const { config } = configFromMetadata(metadataMap(file.metadata));
  let weightBytes = 0;
  // each tensor's bytes, its I8 scales (one per expert at most) and its matrix record in the model
  for (const t of file.tensors) {
    weightBytes += Math.ceil(t.data.byteLength / 16) * 16 + 16 * config.numExperts + 64;
    // what the module derives at load (assembly/model.ts matSlot): an f32 scale per block of a
    // quantized matrix, an f32 copy of an F16 tensor
    if (t.type === GgmlType.Q8_0 || t.type === GgmlType.Q4_0)
      weightBytes += (t.data.byteLength / GGML_TYPES.get(t.type)!.typeSize) * 4;
    else if (t.type === GgmlType.I8) weightBytes += Math.ceil(t.data.byteLength / 32) * 4;
    else if (t.type === GgmlType.F16) weightBytes += t.data.byteLength * 2;
  }
  const bufferBytes = sessionBytes(config) + MODULE_BASE_BYTES;
  return { fileBytes: bytes.byteLength, weightBytes, bufferBytes, total: bytes.byteLength + weightBytes + bufferBytes };
}

/** Throws MEMORY_BUDGET when `need` bytes are over the budget (none given: no limit). */
export function checkBudget(need: number, budget: number | undefined, what: string): void {
  if (budget === undefined || need <= budget) return;
  throw new IteraError(
    `the model needs about ${MiB(need)} (${what}), more than the memory budget of ${MiB(budget)}: ` +
      'load a smaller or more quantized model (q4_0), or raise memoryBudget if this device has the memory',
    'MEMORY_BUDGET',
  );
}

/** Checks a budget option: a positive number of bytes, or undefined. */
export function validBudget(b: unknown): number | undefined {
  if (b === undefined) return undefined;
  if (typeof b !== 'number' || !(b > 0) || !Number.isFinite(b))
    throw new IteraError(`memoryBudget must be a positive number of bytes, got ${String(b)}`, 'BAD_PARAM');
  return b;
}
