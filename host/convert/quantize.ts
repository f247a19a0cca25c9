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

/** Q4_0 blocks the plain way: d = m / -8 where m is the value of largest magnitude (so it maps to
 *  nibble 0, i.e. -8), n = clamp(round(x / d) + 8, 0, 15). The reference for `quantizeQ4_0`. */
export function quantizeQ4_0MaxAbs(x: Float32Array): Uint8Array {
  return quantizeQ4_0Blocks(x, false);
}

/** Q4_0 blocks with the scale chosen per block to minimise the squared error, in the same format
 *  (any Q4_0 reader decodes them): the plain scale m / -8 is one candidate, so no block is worse
 *  than `quantizeQ4_0MaxAbs`'s. See `q4BlockScale`. */
export function quantizeQ4_0(x: Float32Array): Uint8Array {
  return quantizeQ4_0Blocks(x, true);
}

function quantizeQ4_0Blocks(x: Float32Array, search: boolean): Uint8Array {
  if (x.length % QK !== 0)
    throw new IteraError(`Q4_0 needs a multiple of ${QK} values, got ${x.length}`, 'QUANT_BAD_LENGTH');
  const nb = x.length / QK;
  const out = new Uint8Array(nb * 18);
  const dv = new DataView(out.buffer);
  for (let b = 0; b < nb; b++) {
    const block = x.subarray(b * QK, (b + 1) * QK);
    const d16 = search ? q4BlockScale(block) : f32ToF16(signedMax(block) / -8);
    const d = f16ToF32(d16); // quantize against the scale as stored
    dv.setUint16(b * 18, d16, true);
    const n = (j: number) => q4Nibble(block[j]!, d);
    for (let j = 0; j < 16; j++) out[b * 18 + 2 + j] = n(j) | (n(j + 16) << 4);
  }
  return out;
}

function signedMax(block: Float32Array): number {
  let m = 0;
  for (let j = 0; j < block.length; j++) if (Math.abs(block[j]!) > Math.abs(m)) m = block[j]!;
  return m;
}

function q4Nibble(v: number, d: number): number {
  return d !== 0 ? Math.max(0, Math.min(15, Math.round(v / d) + 8)) : 8;
}

/** A block stored with scale d (already f16-rounded): its squared error, and the sums a least-
 *  squares refit of d for the same nibbles needs (sum x q, sum q q, q = nibble - 8). */
function q4Fit(block: Float32Array, d: number): { err: number; xq: number; qq: number } {
  let err = 0,
    xq = 0,
    qq = 0;
  for (let j = 0; j < block.length; j++) {
    const x = block[j]!;
    const q = q4Nibble(x, d) - 8;
    const r = x - d * q;
    err += r * r;
    xq += x * q;
    qq += q * q;
  }
  return { err, xq, qq };
}

/** The f16 scale of least squared error among: m / t for t in -8 .. -6 and 6 .. 7.5 in steps of
 *  1/8 (m the signed largest value; a positive t puts m at the top nibble instead of the bottom),
 *  each followed by one least-squares refit d = sum(x q) / sum(q q) for the nibbles it chose.
 *  Deterministic: the first candidate of least error wins, the plain m / -8 being the first. */
export function q4BlockScale(block: Float32Array): number {
  const m = signedMax(block);
  let best = f32ToF16(m / -8);
  if (m === 0) return best;
  let bestErr = q4Fit(block, f16ToF32(best)).err;
  /** Scores a candidate; returns its fit (null when the scale is unusable). */
  const consider = (d16: number) => {
    const d = f16ToF32(d16);
    if (!Number.isFinite(d) || d === 0) return null;
    const fit = q4Fit(block, d);
    if (fit.err < bestErr) {
      bestErr = fit.err;
      best = d16;
    }
    return fit;
  };
  for (let i = 0; i < 30; i++) {
    // t = -8 .. -6 (17 values), then 6 .. 7.5 (13 values), in steps of 1/8
    const t = i <= 16 ? -8 + i / 8 : 6 + (i - 17) / 8;
    const fit = consider(f32ToF16(m / t));
    if (fit && fit.qq > 0) consider(f32ToF16(fit.xq / fit.qq));
  }
  return best;
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
