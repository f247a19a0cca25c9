// Quantizing model tensors into GGUF's block formats (host/runtime/quant.ts describes them and
// reads them back), and which type a tensor is stored as.

import { f16ToF32, f32ToF16 } from '../runtime/f16.js';
import { IteraError } from '../runtime/types.js';
import { GgmlType } from '../runtime/gguf.js';
import { QK, isTransposable, type QuantType } from '../runtime/quant.js';

export const QUANT_TYPE_IDS: Record<QuantType, number> = {
  F32: GgmlType.F32,
  F16: GgmlType.F16,
  Q8_0: GgmlType.Q8_0,
  Q4_0: GgmlType.Q4_0,
};

/** Q8_0 blocks of values (length a multiple of 32): d = max|x| / 127, q = round(x / d). */
export function quantizeQ8_0(x: Float32Array): Uint8Array {
  if (x.length % QK !== 0)
    throw new IteraError(`Q8_0 needs a multiple of ${QK} values, got ${x.length}`, 'QUANT_BAD_LENGTH');
  const nb = x.length / QK;
  const out = new Uint8Array(nb * 34);
  const dv = new DataView(out.buffer);
  for (let b = 0; b < nb; b++) {
    let amax = 0;
    for (let j = 0; j < QK; j++) amax = Math.max(amax, Math.abs(x[b * QK + j]));
    const d16 = f32ToF16(amax / 127);
    const d = f16ToF32(d16); // quantize against the scale as stored
    dv.setUint16(b * 34, d16, true);
    const id = d !== 0 ? 1 / d : 0;
    for (let j = 0; j < QK; j++) {
      const q = Math.max(-127, Math.min(127, Math.round(x[b * QK + j] * id)));
      dv.setInt8(b * 34 + 2 + j, q);
    }
  }
  return out;
}

/** Q4_0 blocks: d = m / -8 where m is the value of largest magnitude (so it maps to nibble 0,
 *  i.e. -8), n = clamp(round(x / d) + 8, 0, 15). */
export function quantizeQ4_0(x: Float32Array): Uint8Array {
  if (x.length % QK !== 0)
    throw new IteraError(`Q4_0 needs a multiple of ${QK} values, got ${x.length}`, 'QUANT_BAD_LENGTH');
  const nb = x.length / QK;
  const out = new Uint8Array(nb * 18);
  const dv = new DataView(out.buffer);
  for (let b = 0; b < nb; b++) {
    let m = 0;
    for (let j = 0; j < QK; j++) {
      const v = x[b * QK + j];
      if (Math.abs(v) > Math.abs(m)) m = v;
    }
    const d16 = f32ToF16(m / -8);
    const d = f16ToF32(d16);
    dv.setUint16(b * 18, d16, true);
    const id = d !== 0 ? 1 / d : 0;
    const n = (j: number) => Math.max(0, Math.min(15, Math.round(x[b * QK + j] * id) + 8));
    for (let j = 0; j < 16; j++) out[b * 18 + 2 + j] = n(j) | (n(j + 16) << 4);
  }
  return out;
}

/** What a matrix whose rows are not whole blocks is stored as when the model is quantized: ssm_c
 *  ([di, N]) as Q8_0 stored transposed when di is whole blocks (8 bits even in a Q4_0 model: it
 *  is small and feeds every output of the scan), else F16; anything else F32. */
export function quantFallback(name: string, shape?: readonly number[]): 'F16' | 'F32' | 'Q8_0' {
  if (!isTransposable(name)) return 'F32';
  return shape !== undefined && shape.length === 2 && shape[0]! % QK === 0 ? 'Q8_0' : 'F16';
}

/** Bytes a tensor takes in a type. */
export function quantBytes(type: QuantType, n: number): number {
  switch (type) {
    case 'F32':
      return n * 4;
    case 'F16':
      return n * 2;
    case 'Q8_0':
      return (n / QK) * 34;
    case 'Q4_0':
      return (n / QK) * 18;
  }
}
