// Quantized matrix-vector kernels: Q8_0, Q4_0 (GGUF's block formats) and I8 (a per-tensor
// affine int8, as PyTorch's dynamic quantization stores it), plus F16 conversion at load.
//
// A matrix W [rows, cols] is a Mat. At load the GGUF blocks are repacked IN PLACE into a layout
// the SIMD kernels like: the quants of a row contiguous (Q8_0/I8: one int8 per value; Q4_0: per
// block 16 bytes, its nibbles rearranged into the lane layout described at the Q4_0 kernel), and
// the block scales as f32 in a separate array [rows, cols/32].
//
// Activations are quantized per block of 32 on the fly to 16 bits (d = max|x| / 32767,
// q = round-to-even(x / d)), so that one i32x4.dot_i16x8_s multiplies eight (weight, activation)
// pairs after the weights are widened to int16; with 16-bit activations the error is the
// weights' alone. The integer part of every block's dot product is exact (|sum| < 2^31); only the
// f32 scaling and summation round. Each kernel has a plain scalar reference (`*_ref`) that
// computes the same sums block by block.

import { matvec_f32 } from './f32';

export const T_F32: i32 = 0;
export const T_F16: i32 = 1;
export const T_Q4_0: i32 = 2;
export const T_Q8_0: i32 = 8;
export const T_I8: i32 = 24;

export const QK: i32 = 32; // values per block

@unmanaged
export class Mat {
  q: usize; // F32: the values; Q8_0/I8: int8 [rows, cols]; Q4_0: nibbles [rows, cols/2]
  s: usize; // f32 block scales [rows, cols/32] (0 for F32)
  type: i32; // T_F32 | T_Q8_0 | T_Q4_0 | T_I8 (F16 is converted to F32 at load)
  rows: i32;
  cols: i32;
  zp: i32; // I8 zero point
}

/** Scratch for a quantized activation vector: int16 values and f32 block scales. */
@unmanaged
export class QScratch {
  xq: usize; // i16 [maxCols]
  xd: usize; // f32 [maxCols / 32]
  xs: usize; // i32 [maxCols / 32] (Q4_0: 8 * each block's sum of xq)
}

// ---- f16 ------------------------------------------------------------------------------------

/** IEEE half to single: exact for every value (subnormals, inf, NaN). */
export function f16ToF32(h: u32): f32 {
  const sign = (h & 0x8000) << 16;
  const exp = (h >> 10) & 0x1f;
  let man = h & 0x3ff;
  if (exp == 0x1f) return reinterpret<f32>(sign | 0x7f800000 | (man << 13));
  if (exp != 0) return reinterpret<f32>(sign | ((exp + 112) << 23) | (man << 13));
  if (man == 0) return reinterpret<f32>(sign);
  // subnormal half: value = man * 2^-24
  const v = <f32>man * <f32>5.9604644775390625e-8;
  return sign != 0 ? -v : v;
}

// ---- Load-time repacking ---------------------------------------------------------------------

/** Repacks GGUF Q8_0 blocks (f16 d + 32 int8) at p in place; scales go to s (f32, one per block). */
export function repackQ8_0(p: usize, s: usize, blocks: i32): void {
  for (let i = 0; i < blocks; i++) {
    const src = p + <usize>i * 34;
    store<f32>(s + (<usize>i << 2), f16ToF32(<u32>load<u16>(src)));
    memory.copy(p + <usize>i * 32, src + 2, 32);
  }
}

// ---- Activation quantization ----------------------------------------------------------------

/** Quantizes x [n] (n a multiple of 32) into int16 values in [-32767, 32767] and f32 block scales. */
export function quantizeActivations(x: usize, n: i32, sc: QScratch): void {
  const xq = sc.xq, xd = sc.xd;
  for (let b = 0; b < n; b += QK) {
    const xb = x + (<usize>b << 2);
    let amax: f32 = 0;
    if (ASC_FEATURE_SIMD) {
      // pmax (b < a ? a : b) is one instruction where max's NaN rules cost several; the lanes
      // are reduced in vector registers
      let m = f32x4.pmax(f32x4.abs(v128.load(xb)), f32x4.abs(v128.load(xb, 16)));
      for (let j = 8; j < QK; j += 8) {
        m = f32x4.pmax(m, f32x4.pmax(f32x4.abs(v128.load(xb + (<usize>j << 2))), f32x4.abs(v128.load(xb + (<usize>j << 2), 16))));
      }
      m = f32x4.pmax(m, v128.shuffle<f32>(m, m, 2, 3, 0, 1));
      m = f32x4.pmax(m, v128.shuffle<f32>(m, m, 1, 0, 3, 2));
      amax = f32x4.extract_lane(m, 0);
    } else {
      for (let j = 0; j < QK; j++) amax = max(amax, abs(load<f32>(xb + (<usize>j << 2))));
    }
    const d: f32 = amax / <f32>32767.0;
    const id: f32 = d != 0 ? <f32>1.0 / d : 0;
    store<f32>(xd + (<usize>(b / QK) << 2), d);
    const qb = xq + (<usize>b << 1);
    if (ASC_FEATURE_SIMD) {
      // round to nearest even by adding 1.5 * 2^23: for |v| <= 2^22 the sum's low mantissa bits
      // are round(v) (the FPU's default rounding), read back by subtracting the constant's bits
      const idv = f32x4.splat(id);
      const magic = f32x4.splat(12582912.0);
      const bits = i32x4.splat(0x4B400000);
      for (let j = 0; j < QK; j += 8) {
        const a = i32x4.sub(f32x4.add(f32x4.mul(v128.load(xb + (<usize>j << 2)), idv), magic), bits);
        const c = i32x4.sub(f32x4.add(f32x4.mul(v128.load(xb + (<usize>(j + 4) << 2)), idv), magic), bits);
        v128.store(qb + (<usize>j << 1), i16x8.narrow_i32x4_s(a, c));
      }
    } else {
      for (let j = 0; j < QK; j++) {
        store<i16>(qb + (<usize>j << 1), <i16><i32>nearest<f32>(load<f32>(xb + (<usize>j << 2)) * id));
      }
    }
  }
}

// ---- Q8_0 / I8 -------------------------------------------------------------------------------

/** Reference: y[r] = sum_b W.s[r,b] * x.d[b] * (sum_j q[r, 32b+j] * xq[32b+j]). */
export function matvec_q8_ref(m: Mat, sc: QScratch, y: usize): void {
  const nb = m.cols / QK;
  for (let r = 0; r < m.rows; r++) {
    const wr = m.q + <usize>r * <usize>m.cols;
    let acc: f32 = 0;
    for (let b = 0; b < nb; b++) {
      let isum: i32 = 0;
      for (let j = 0; j < QK; j++) {
        const k = b * QK + j;
        isum += <i32>load<i8>(wr + <usize>k) * <i32>load<i16>(sc.xq + (<usize>k << 1));
      }
      acc += <f32>isum * (load<f32>(m.s + (<usize>(r * nb + b) << 2)) * load<f32>(sc.xd + (<usize>b << 2)));
    }
    store<f32>(y + (<usize>r << 2), acc);
  }
}

/** The block's 32 products of one row, summed into 4 lanes (each weight is widened to int16 by
 *  its load); x0..x3: the block's activations, 8 per vector. */
// @ts-ignore: decorator
@inline function dot32_q8x(w: usize, x0: v128, x1: v128, x2: v128, x3: v128): v128 {
  const w0 = v128.load(w);
  const w1 = v128.load(w, 16);
  let p = i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(w0), x0);
  p = i32x4.add(p, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(w0), x1));
  p = i32x4.add(p, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(w1), x2));
  return i32x4.add(p, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(w1), x3));
}

/** Lane i of the result: the sum of the four lanes of the i-th argument (integer). */
// @ts-ignore: decorator
@inline function hsum4i(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = i32x4.add(i32x4.shuffle(a, b, 0, 4, 1, 5), i32x4.shuffle(a, b, 2, 6, 3, 7));
  const cd = i32x4.add(i32x4.shuffle(c, d, 0, 4, 1, 5), i32x4.shuffle(c, d, 2, 6, 3, 7));
  return i32x4.add(i32x4.shuffle(ab, cd, 0, 1, 4, 5), i32x4.shuffle(ab, cd, 2, 3, 6, 7));
}

/** The scales of rows r..r+3 for block b, times the activation block's scale xd. */
// @ts-ignore: decorator
@inline function scales4(sb: usize, snb: usize, xd: f32): v128 {
  let v = f32x4.splat(load<f32>(sb));
  v = f32x4.replace_lane(v, 1, load<f32>(sb + snb));
  v = f32x4.replace_lane(v, 2, load<f32>(sb + 2 * snb));
  v = f32x4.replace_lane(v, 3, load<f32>(sb + 3 * snb));
  return f32x4.mul(v, f32x4.splat(xd));
}

/** Four rows at a time: each block's integer sums of the four rows are reduced to one vector
 *  (lane = row) before the one conversion and scaling; leftover rows one at a time. */
export function matvec_q8_simd(m: Mat, sc: QScratch, y: usize): void {
  const nb = m.cols / QK;
  const cols = <usize>m.cols;
  const snb = <usize>nb << 2;
  let r = 0;
  for (; r + 4 <= m.rows; r += 4) {
    const w0 = m.q + <usize>r * cols;
    const s0 = m.s + (<usize>(r * nb) << 2);
    let acc = f32x4.splat(0);
    for (let b = 0; b < nb; b++) {
      const xq = sc.xq + (<usize>(b * QK) << 1);
      const off = w0 + <usize>(b * QK);
      const x0 = v128.load(xq), x1 = v128.load(xq, 16), x2 = v128.load(xq, 32), x3 = v128.load(xq, 48);
      const h = hsum4i(dot32_q8x(off, x0, x1, x2, x3), dot32_q8x(off + cols, x0, x1, x2, x3),
        dot32_q8x(off + 2 * cols, x0, x1, x2, x3), dot32_q8x(off + 3 * cols, x0, x1, x2, x3));
      acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(h), scales4(s0 + (<usize>b << 2), snb, load<f32>(sc.xd + (<usize>b << 2)))));
    }
    v128.store(y + (<usize>r << 2), acc);
  }
  for (; r < m.rows; r++) {
    const wr = m.q + <usize>r * cols;
    let acc: f32 = 0;
    for (let b = 0; b < nb; b++) {
      const xq = sc.xq + (<usize>(b * QK) << 1);
      const p = dot32_q8x(wr + <usize>(b * QK), v128.load(xq), v128.load(xq, 16), v128.load(xq, 32), v128.load(xq, 48));
      const isum = (i32x4.extract_lane(p, 0) + i32x4.extract_lane(p, 1)) + (i32x4.extract_lane(p, 2) + i32x4.extract_lane(p, 3));
      acc += <f32>isum * (load<f32>(m.s + (<usize>(r * nb + b) << 2)) * load<f32>(sc.xd + (<usize>b << 2)));
    }
    store<f32>(y + (<usize>r << 2), acc);
  }
}

// ---- Q4_0 ------------------------------------------------------------------------------------
//
// At load each block's 16 bytes of nibbles are rearranged so that int16 lane i (i = 0..7) holds
// the block's values i, 8+i, 16+i and 24+i in its four nibbles, lowest first. Masks and shifts of
// one vector then give four int16 vectors of values 0..7, 8..15, 16..23 and 24..31 in order, with
// no byte shuffles; the offset of 8 is taken off the block's integer sum once (8 * sum of the
// block's activations).

/** Value j (0..31, unsigned 0..15) of a repacked Q4_0 block. */
// @ts-ignore: decorator
@inline export function q4At(block: usize, j: i32): i32 {
  return (<i32>load<u16>(block + (<usize>(j & 7) << 1)) >> ((j >> 3) << 2)) & 15;
}

/** Repacks GGUF Q4_0 blocks (f16 d + 16 bytes: byte j holds value j low, value j+16 high) at p in
 *  place into 16-byte blocks of the lane layout above; scales go to s. */
export function repackQ4_0(p: usize, s: usize, blocks: i32): void {
  for (let i = 0; i < blocks; i++) {
    const src = p + <usize>i * 18;
    store<f32>(s + (<usize>i << 2), f16ToF32(<u32>load<u16>(src)));
    // read the 16 bytes before writing: the destination overlaps the source
    const lo = load<u64>(src + 2), hi = load<u64>(src + 10);
    const dst = p + <usize>i * 16;
    for (let l = 0; l < 8; l++) {
      const a = <u32>((lo >> (<u64>l << 3)) & 0xff); // byte l: values l, l+16
      const b = <u32>((hi >> (<u64>l << 3)) & 0xff); // byte 8+l: values 8+l, 24+l
      store<u16>(dst + (<usize>l << 1), <u16>((a & 15) | ((b & 15) << 4) | ((a >> 4) << 8) | ((b >> 4) << 12)));
    }
  }
}

/** Reference: y[r] = sum_b W.s[r,b] * x.d[b] * (sum_j (q[r,32b+j] - 8) * xq[32b+j]). */
export function matvec_q4_ref(m: Mat, sc: QScratch, y: usize): void {
  const nb = m.cols / QK;
  for (let r = 0; r < m.rows; r++) {
    const wr = m.q + <usize>r * <usize>(m.cols >> 1);
    let acc: f32 = 0;
    for (let b = 0; b < nb; b++) {
      let isum: i32 = 0;
      const wb = wr + <usize>(b * 16);
      const xb = sc.xq + (<usize>(b * QK) << 1);
      for (let j = 0; j < QK; j++) isum += (q4At(wb, j) - 8) * <i32>load<i16>(xb + (<usize>j << 1));
      acc += <f32>isum * (load<f32>(m.s + (<usize>(r * nb + b) << 2)) * load<f32>(sc.xd + (<usize>b << 2)));
    }
    store<f32>(y + (<usize>r << 2), acc);
  }
}

/** sum_j q[j] * x[j] of one block (q unsigned, the offset not yet taken), in 4 lanes. */
// @ts-ignore: decorator
@inline function dot32_q4x(w: usize, x0: v128, x1: v128, x2: v128, x3: v128): v128 {
  const v = v128.load(w);
  const mask = i16x8.splat(15);
  let p = i32x4.dot_i16x8_s(v128.and(v, mask), x0);
  p = i32x4.add(p, i32x4.dot_i16x8_s(v128.and(i16x8.shr_u(v, 4), mask), x1));
  p = i32x4.add(p, i32x4.dot_i16x8_s(v128.and(i16x8.shr_u(v, 8), mask), x2));
  return i32x4.add(p, i32x4.dot_i16x8_s(i16x8.shr_u(v, 12), x3));
}

/** 8 * (the sum of the block's 32 quantized activations). */
// @ts-ignore: decorator
@inline function offsetSum(xq: usize): i32 {
  const ones = i16x8.splat(1);
  let p = i32x4.dot_i16x8_s(v128.load(xq), ones);
  p = i32x4.add(p, i32x4.dot_i16x8_s(v128.load(xq, 16), ones));
  p = i32x4.add(p, i32x4.dot_i16x8_s(v128.load(xq, 32), ones));
  p = i32x4.add(p, i32x4.dot_i16x8_s(v128.load(xq, 48), ones));
  return ((i32x4.extract_lane(p, 0) + i32x4.extract_lane(p, 1)) + (i32x4.extract_lane(p, 2) + i32x4.extract_lane(p, 3))) << 3;
}

export function matvec_q4_simd(m: Mat, sc: QScratch, y: usize): void {
  const nb = m.cols / QK;
  const rowBytes = <usize>(m.cols >> 1);
  const snb = <usize>nb << 2;
  // the offset's share of every row's block sums, once per vector
  for (let b = 0; b < nb; b++) store<i32>(sc.xs + (<usize>b << 2), offsetSum(sc.xq + (<usize>(b * QK) << 1)));
  let r = 0;
  for (; r + 4 <= m.rows; r += 4) {
    const w0 = m.q + <usize>r * rowBytes;
    const s0 = m.s + (<usize>(r * nb) << 2);
    let acc = f32x4.splat(0);
    for (let b = 0; b < nb; b++) {
      const xq = sc.xq + (<usize>(b * QK) << 1);
      const off = w0 + <usize>(b * 16);
      const x0 = v128.load(xq), x1 = v128.load(xq, 16), x2 = v128.load(xq, 32), x3 = v128.load(xq, 48);
      const h = hsum4i(dot32_q4x(off, x0, x1, x2, x3), dot32_q4x(off + rowBytes, x0, x1, x2, x3),
        dot32_q4x(off + 2 * rowBytes, x0, x1, x2, x3), dot32_q4x(off + 3 * rowBytes, x0, x1, x2, x3));
      const isum = i32x4.sub(h, i32x4.splat(load<i32>(sc.xs + (<usize>b << 2))));
      acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(isum), scales4(s0 + (<usize>b << 2), snb, load<f32>(sc.xd + (<usize>b << 2)))));
    }
    v128.store(y + (<usize>r << 2), acc);
  }
  for (; r < m.rows; r++) {
    const wr = m.q + <usize>r * rowBytes;
    let acc: f32 = 0;
    for (let b = 0; b < nb; b++) {
      const xq = sc.xq + (<usize>(b * QK) << 1);
      const p = dot32_q4x(wr + <usize>(b * 16), v128.load(xq), v128.load(xq, 16), v128.load(xq, 32), v128.load(xq, 48));
      const isum = (i32x4.extract_lane(p, 0) + i32x4.extract_lane(p, 1)) + (i32x4.extract_lane(p, 2) + i32x4.extract_lane(p, 3)) - load<i32>(sc.xs + (<usize>b << 2));
      acc += <f32>isum * (load<f32>(m.s + (<usize>(r * nb + b) << 2)) * load<f32>(sc.xd + (<usize>b << 2)));
    }
    store<f32>(y + (<usize>r << 2), acc);
  }
}

// ---- Dispatch ------------------------------------------------------------------------------

/** y = W x for any matrix type; quantized types quantize x into sc first. */
export function matvec(m: Mat, x: usize, y: usize, sc: QScratch): void {
  const t = m.type;
  if (t == T_F32) {
    matvec_f32(m.q, x, y, m.rows, m.cols);
    return;
  }
  quantizeActivations(x, m.cols, sc);
  if (t == T_Q4_0) {
    if (ASC_FEATURE_SIMD) matvec_q4_simd(m, sc, y); else matvec_q4_ref(m, sc, y);
    return;
  }
  if (ASC_FEATURE_SIMD) matvec_q8_simd(m, sc, y); else matvec_q8_ref(m, sc, y);
  if (t == T_I8 && m.zp != 0) {
    // real = scale * (q - zp): subtract zp * scale * sum(x), with x as quantized
    let sx: f32 = 0;
    const nb = m.cols / QK;
    for (let b = 0; b < nb; b++) {
      let isum: i32 = 0;
      for (let j = 0; j < QK; j++) isum += <i32>load<i16>(sc.xq + (<usize>(b * QK + j) << 1));
      sx += <f32>isum * load<f32>(sc.xd + (<usize>b << 2));
    }
    const corr = <f32>m.zp * load<f32>(m.s) * sx;
    for (let r = 0; r < m.rows; r++) store<f32>(y + (<usize>r << 2), load<f32>(y + (<usize>r << 2)) - corr);
  }
}

/** out[0..cols) = row r of W as f32 (for the embedding lookup). */
export function matRow(m: Mat, r: i32, out: usize): void {
  const cols = m.cols;
  if (m.type == T_F32) {
    memory.copy(out, m.q + (<usize>r * <usize>cols << 2), <usize>cols << 2);
    return;
  }
  const nb = cols / QK;
  for (let b = 0; b < nb; b++) {
    const d = load<f32>(m.s + (<usize>(r * nb + b) << 2));
    for (let j = 0; j < QK; j++) {
      const k = b * QK + j;
      let q: i32;
      if (m.type == T_Q4_0) {
        q = q4At(m.q + <usize>r * <usize>(cols >> 1) + <usize>(b * 16), j) - 8;
      } else {
        q = <i32>load<i8>(m.q + <usize>r * <usize>cols + <usize>k) - m.zp;
      }
      store<f32>(out + (<usize>k << 2), d * <f32>q);
    }
  }
}
