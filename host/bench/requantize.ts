// A model file re-stored in another type, in memory, for `itera bench --quant`, by the same
// policy as `itera quantize` (host/quant/quantize.ts; docs/quantization.md).

import { readModelFile } from '../runtime/model-file.js';
import { IteraError } from '../runtime/types.js';
import { quantizeFixed } from '../quant/quantize.js';
import type { QuantType } from '../runtime/quant.js';

export function requantize(bytes: Uint8Array, type: string): Uint8Array {
  const t = type.toUpperCase();
  if (t !== 'F32' && t !== 'F16' && t !== 'Q8_0' && t !== 'Q4_0')
    throw new IteraError(`cannot store the model as ${type}: the types are F32, F16, Q8_0, Q4_0`, 'BENCH_QUANT');
  const name = readModelFile(bytes).name;
  try {
    return quantizeFixed(bytes, t as QuantType, `${name}-${t.toLowerCase()}`);
  } catch (e) {
    throw new IteraError(`cannot store the model as ${type}: ${(e as Error).message}`, 'BENCH_QUANT');
  }
}
