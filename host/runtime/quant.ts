// GGUF's quantized block formats as the runtime reads them, exactly as the GGUF spec lays them out,
// so that other GGUF tools read our files:
//   Q8_0: blocks of 32 values: f16 scale d, then 32 int8 q;          value = d * q        (34 bytes)
//   Q4_0: blocks of 32 values: f16 scale d, then 16 bytes of nibbles; value = d * (n - 8) (18 bytes)
//         byte j holds value j in its low nibble and value j + 16 in its high nibble.
//   I8:   one int8 per value with a per-tensor affine scale and zero point (PyTorch's dynamic
//         INT8): value = scale * (q - zero_point); scale and zero point live in the metadata.
// Blocks run along the row (the innermost dimension), so a row's length must be a multiple of 32.
// Quantizing (writing blocks) is host/convert/quantize.ts.

import { f16ToF32 } from './f16.js';
import { GgmlType } from './gguf.js';
import { IteraError } from './types.js';

export const QK = 32;
export type QuantType = 'F32' | 'F16' | 'Q8_0' | 'Q4_0';

export function dequantizeQ8_0(bytes: Uint8Array, n: number): Float32Array {
  const out = new Float32Array(n);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let b = 0; b < n / QK; b++) {
    const d = f16ToF32(dv.getUint16(b * 34, true));
    for (let j = 0; j < QK; j++) out[b * QK + j] = d * dv.getInt8(b * 34 + 2 + j);
  }
  return out;
}

export function dequantizeQ4_0(bytes: Uint8Array, n: number): Float32Array {
  const out = new Float32Array(n);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let b = 0; b < n / QK; b++) {
    const d = f16ToF32(dv.getUint16(b * 18, true));
    for (let j = 0; j < 16; j++) {
      const byte = bytes[b * 18 + 2 + j];
      out[b * QK + j] = d * ((byte & 15) - 8);
      out[b * QK + j + 16] = d * ((byte >> 4) - 8);
    }
  }
  return out;
}

export function dequantizeI8(bytes: Uint8Array, n: number, scale: number, zeroPoint: number): Float32Array {
  const out = new Float32Array(n);
  const q = new Int8Array(bytes.buffer, bytes.byteOffset, n);
  for (let i = 0; i < n; i++) out[i] = scale * (q[i] - zeroPoint);
  return out;
}

/** Checks every block scale of a quantized tensor: finite, and zero only for a block whose
 *  values are all zero (the one case where a zero scale is what a quantizer writes). */
export function checkBlockScales(name: string, type: number, bytes: Uint8Array): void {
  const size = type === GgmlType.Q8_0 ? 34 : type === GgmlType.Q4_0 ? 18 : 0;
  if (size === 0) return;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let b = 0; b * size < bytes.length; b++) {
    const d = f16ToF32(dv.getUint16(b * size, true));
    if (!Number.isFinite(d)) {
      throw new IteraError(
        `tensor '${name}': block ${b} has a non-finite scale (${d}): the file is corrupt`,
        'QUANT_BAD_SCALE',
      );
    }
    if (d === 0) {
      for (let j = 2; j < size; j++) {
        const v = bytes[b * size + j];
        const zero = type === GgmlType.Q8_0 ? v === 0 : v === 0x88;
        if (!zero)
          throw new IteraError(
            `tensor '${name}': block ${b} has a zero scale but non-zero values: the file is corrupt`,
            'QUANT_BAD_SCALE',
          );
      }
    }
  }
}

// ---- Which tensors get quantized ------------------------------------------------------------

/** The matrices that take the chosen type (by model-file name): every weight matrix and both
 *  embeddings. Norms, biases, A_log, D and the conv taps stay F32: tiny, and they set the scan's
 *  dynamics. ssm_c's rows (N values) are shorter than a block: when the model is quantized it is
 *  stored transposed as Q8_0 (`ssm_c_t`, rows of di values) where di is whole blocks, else F16
 *  (quantFallback). */
export function isQuantizable(name: string): boolean {
  return (
    name === 'token_embd.weight' ||
    name === 'output.weight' ||
    name === 'position_embd.weight' ||
    /^blk\.\d+\.(ssm_in\.weight|ssm_b|ssm_dt\.weight|ssm_out\.weight|ffn_gate_inp\.weight|ffn_up(_exps)?\.weight|ffn_down(_exps)?\.weight)$/.test(
      name,
    )
  );
}

/** Tensors that may be stored transposed under the name + '_t' (so that a quantized form has
 *  rows of whole blocks): ssm_c. */
export function isTransposable(name: string): boolean {
  return /^blk\.\d+\.ssm_c$/.test(name);
}

/** [rows, cols] values, row-major, transposed to [cols, rows]. */
export function transpose2d(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c]!;
  return out;
}
