// Re-typing a model file's tensors: F16, Q8_0, Q4_0, or a mixed choice from measured sensitivity.
// Platform-neutral: loading a candidate into the runtime is the caller's (it knows where the
// module's bytes are).

import { readModelFile, tensorAsF32 } from '../runtime/model-file.js';
import { writeModelFile } from '../convert/model-write.js';
import { type ModelTensor } from '../convert/state-dict.js';
import { isQuantizable, QK, type QuantType } from '../runtime/quant.js';
import { quantFallback } from '../convert/quantize.js';
import type { IteraModel } from '../runtime/api.js';
import { GgmlType } from '../runtime/gguf.js';
import { IteraError } from '../runtime/types.js';

export type QuantChoice = QuantType | 'mixed';

export interface TensorChoice {
  name: string;
  type: QuantType;
  sensitivity?: number;
}

export interface QuantizeResult {
  bytes: Uint8Array;
  choices: TensorChoice[];
  /** Why mixed chose what it chose (empty for the fixed types). */
  notes: string[];
}

/** The model's tensors as f32 (dequantizing whatever they are stored as). */
export function modelTensorsF32(fileBytes: Uint8Array): {
  file: ReturnType<typeof readModelFile>;
  tensors: ModelTensor[];
} {
  const file = readModelFile(fileBytes);
  const tensors = [...file.tensors].map(([name, t]) => ({
    name,
    shape: t.shape,
    data: Float32Array.from(tensorAsF32(t)),
  }));
  return { file, tensors };
}

/** How the small tensors (norms, biases, A_log, D, conv taps) are stored beside quantized
 *  matrices: F32 by default; F16 halves them, for files where every byte counts. */
export type SmallType = 'F32' | 'F16';

function fixedChoice(tensors: ModelTensor[], type: QuantType, small: SmallType = 'F32'): TensorChoice[] {
  return tensors.map((t) => {
    const row = t.shape[t.shape.length - 1];
    if (type === 'F16' || type === 'F32') return { name: t.name, type };
    const q = isQuantizable(t.name) && row % QK === 0;
    const other = quantFallback(t.name, t.shape);
    return { name: t.name, type: q ? type : other === 'F32' ? small : other };
  });
}

function write(
  file: ReturnType<typeof readModelFile>,
  tensors: ModelTensor[],
  choices: TensorChoice[],
  name = file.name,
): Uint8Array {
  const by = new Map(choices.map((c) => [c.name, c.type]));
  return writeModelFile({
    config: file.config,
    tokenizer: file.tokenizer,
    name,
    tensors: tensors.map((t) => ({ ...t, typeName: by.get(t.name) ?? 'F32' })),
  });
}

/** The model re-stored in one type by the policy (synchronous; no measurement). */
export function quantizeFixed(fileBytes: Uint8Array, type: QuantType, name?: string): Uint8Array {
  const { file, tensors } = modelTensorsF32(fileBytes);
  return write(file, tensors, fixedChoice(tensors, type), name ?? file.name);
}

/** Mean KL(p_ref || p) over positions, from two logit blocks [n][V]. */
export function meanKL(ref: Float32Array, got: Float32Array, V: number): number {
  const n = ref.length / V;
  let total = 0;
  for (let i = 0; i < n; i++) {
    const o = i * V;
    let mr = -Infinity,
      mg = -Infinity;
    for (let v = 0; v < V; v++) {
      mr = Math.max(mr, ref[o + v]);
      mg = Math.max(mg, got[o + v]);
    }
    let sr = 0,
      sg = 0;
    for (let v = 0; v < V; v++) {
      sr += Math.exp(ref[o + v] - mr);
      sg += Math.exp(got[o + v] - mg);
    }
    const lr = Math.log(sr) + mr,
      lg = Math.log(sg) + mg;
    let kl = 0;
    for (let v = 0; v < V; v++) {
      const lpr = ref[o + v] - lr;
      kl += Math.exp(lpr) * (lpr - (got[o + v] - lg));
    }
    total += kl;
  }
  return total / n;
}

/**
 * Quantizes a model file. 'mixed' measures, for each quantizable matrix, how much the model's
 * output distribution moves (mean KL divergence from the unquantized model over calibration
 * tokens) when that matrix alone is stored as Q4_0; matrices whose shift is above the mean of all
 * of them are stored as Q8_0, the rest as Q4_0. With maxBytes, the file's size decides instead:
 * every matrix starts at Q4_0, and matrices are raised to Q8_0 in the order of their shift per
 * added byte (the most harmful per byte first), each only if the file still fits.
 */
export async function quantizeModel(
  fileBytes: Uint8Array,
  type: QuantChoice,
  opts: {
    load?: (bytes: Uint8Array) => Promise<IteraModel>;
    calibration?: number[];
    onProgress?: (done: number, total: number) => void;
    /** the small tensors' type beside Q8_0 / Q4_0 / mixed matrices (default F32) */
    small?: SmallType;
    /** mixed only: the largest file allowed, in bytes (instead of the mean rule) */
    maxBytes?: number;
  } = {},
): Promise<QuantizeResult> {
  const { file, tensors } = modelTensorsF32(fileBytes);
  const small = opts.small ?? 'F32';
  if (opts.maxBytes !== undefined && type !== 'mixed')
    throw new IteraError('a size budget (maxBytes) applies to mixed quantization only', 'QUANT_MIXED');
  if (type !== 'mixed') {
    const choices = fixedChoice(tensors, type, small);
    return { bytes: write(file, tensors, choices), choices, notes: [] };
  }
  if (!opts.load || !opts.calibration)
    throw new IteraError('mixed quantization needs the runtime and calibration tokens', 'QUANT_MIXED');
  const base = fixedChoice(tensors, 'F32');
  const refModel = await opts.load(write(file, tensors, base));
  const ids = opts.calibration.slice(0, file.config.maxSeqLength);
  const ref = refModel.logits(ids);
  refModel.dispose();
  const q4 = fixedChoice(tensors, 'Q4_0', small);
  const candidates = q4.filter((c) => c.type === 'Q4_0').map((c) => c.name);
  const sens = new Map<string, number>();
  let done = 0;
  for (const name of candidates) {
    const choices = base.map((c) => (c.name === name ? { name, type: 'Q4_0' as QuantType } : c));
    const m = await opts.load(write(file, tensors, choices));
    sens.set(name, meanKL(ref, m.logits(ids), file.config.vocabSize));
    m.dispose();
    opts.onProgress?.(++done, candidates.length);
  }
  if (opts.maxBytes !== undefined) return withinBudget(file, tensors, q4, sens, opts.maxBytes, ids.length);
  const mean = [...sens.values()].reduce((a, b) => a + b, 0) / Math.max(1, sens.size);
  const choices = q4.map((c) => {
    const s = sens.get(c.name);
    if (s === undefined) return c;
    return { name: c.name, type: (s > mean ? 'Q8_0' : 'Q4_0') as QuantType, sensitivity: s };
  });
  const notes = [
    `mixed: each matrix quantized alone to Q4_0 over ${ids.length} calibration tokens; mean KL shift ${mean.toExponential(2)} nats; matrices above the mean are Q8_0, the rest Q4_0`,
  ];
  return { bytes: write(file, tensors, choices), choices, notes };
}

/** mixed under a size budget: from all Q4_0, raise matrices to Q8_0 by KL shift per added byte
 *  while the file fits in maxBytes (a greedy knapsack: a matrix too large for what is left is
 *  passed over, and smaller ones after it may still fit). */
function withinBudget(
  file: ReturnType<typeof readModelFile>,
  tensors: ModelTensor[],
  q4: TensorChoice[],
  sens: Map<string, number>,
  maxBytes: number,
  calibrationTokens: number,
): QuantizeResult {
  let choices = q4.map((c) => (sens.has(c.name) ? { ...c, sensitivity: sens.get(c.name) } : c));
  // the file as written for the choices so far: each candidate is written once, and the last one
  // that fits is the result
  let out = write(file, tensors, choices);
  if (out.byteLength > maxBytes)
    throw new IteraError(
      `the model does not fit in ${maxBytes} bytes even with every matrix at Q4_0 (${out.byteLength} bytes): ` +
        'give a larger budget, or try --small f16',
      'QUANT_BUDGET',
    );
  // a matrix's added bytes at Q8_0: 16 more per block of 32 values (34 against 18)
  const count = new Map(tensors.map((x) => [x.name, x.data.length]));
  const extra = (name: string): number => ((count.get(name) ?? 0) / QK) * 16;
  const order = [...sens.keys()].sort((a, b) => sens.get(b)! / extra(b) - sens.get(a)! / extra(a));
  let raised = 0;
  for (const name of order) {
    const next = choices.map((c) => (c.name === name ? { ...c, type: 'Q8_0' as QuantType } : c));
    const bytes = write(file, tensors, next);
    if (bytes.byteLength > maxBytes) continue;
    choices = next;
    out = bytes;
    raised++;
  }
  const notes = [
    `mixed within ${maxBytes} bytes: each matrix quantized alone to Q4_0 over ${calibrationTokens} calibration tokens; ` +
      `${raised} of ${order.length} matrices raised to Q8_0, the largest KL shift per added byte first; ${out.byteLength} bytes`,
  ];
  return { bytes: out, choices, notes };
}

/** The ggml type name a tensor of the input file is stored as. */
export function storedTypes(fileBytes: Uint8Array): Map<string, number> {
  const f = readModelFile(fileBytes);
  return new Map([...f.tensors].map(([n, t]) => [n, t.type]));
}

export function isFloatType(t: number): boolean {
  return t === GgmlType.F32 || t === GgmlType.F16;
}
