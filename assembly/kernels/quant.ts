// Quantized matrix-vector kernels: Q8_0, Q4_0 (GGUF's block formats) and I8 (a per-tensor
// affine int8, as PyTorch's dynamic quantization stores it), plus F16 conversion at load.
//
// A matrix W [rows, cols] is a Mat. The file's blocks are repacked IN PLACE at load into layouts
// chosen so that the SIMD kernels widen weights to int16 with the fewest instructions:
//
// - activations (quantized on the fly, per block of 32, to int16: d = max|x| / 32767,
//   q = round-to-even(x / d)) are stored per 16-value chunk as its 8 even-indexed values, then
//   its 8 odd-indexed ones (`xqIndex`);
// - Q8_0 / I8 quants: one byte per value, row-major, the even-indexed bytes stored as q + 128
//   (q xor 0x80). Read as int16 lanes, `lane & 0xff` is then an even value plus 128 and
//   `lane >> 8` (arithmetic) the odd value: two instructions widen 16 weights, and the +128 is
//   taken off each block's sum once per vector (128 * the block's even activations);
// - Q4_0: per block 8 int16 lanes, lane i holding values 2i, 2i+1, 16+2i, 17+2i in its four
//   nibbles (unsigned, offset 8): masks and shifts give the four vectors in activation order;
// - block scales as f32, per group of four rows block-major ([nb][4], one vector load per block
//   for four rows), rows past the last whole group of four row-major after them (`scaleIndex`).
//
// The integer part of every block's dot product is exact (|sum| < 2^31); only the f32 scaling
// and summation round, by the same operations in the same order in the SIMD kernels and in their
// plain scalar references (`*_ref`), which therefore give the same bits.

import { matvec_f32 } from './f32';

export const T_F32: i32 = 0;
export const T_F16: i32 = 1;
export const T_Q4_0: i32 = 2;
export const T_Q8_0: i32 = 8;
export const T_I8: i32 = 24;

export const QK: i32 = 32; // values per block

@unmanaged
export class Mat {
  q: usize; // F32: the values; Q8_0/I8: bytes [rows, cols]; Q4_0: nibbles [rows, cols/2]
  s: usize; // f32 block scales, rows * cols/32 of them, see scaleIndex (0 for F32)
  type: i32; // T_F32 | T_Q8_0 | T_Q4_0 | T_I8 (F16 is converted to F32 at load)
  rows: i32;
  cols: i32;
  zp: i32; // I8 zero point
}

/** Scratch for a quantized activation vector: int16 values and f32 block scales. */
@unmanaged
export class QScratch {
  xq: usize; // i16 [maxCols], in xqIndex order
  xd: usize; // f32 [maxCols / 32]
  xs: usize; // i32 [maxCols / 32]: the weights' offset times the block's activations, per type
}

/** Where value k of a quantized activation vector is stored (in int16 units). */
// @ts-ignore: decorator
@inline export function xqIndex(k: i32): i32 {
  return (k & ~15) | ((k & 1) << 3) | ((k & 15) >> 1);
}

/** Where the scale of row r, block b is, in a matrix of `rows` rows and nb blocks per row. */
// @ts-ignore: decorator
@inline export function scaleIndex(rows: i32, nb: i32, r: i32, b: i32): i32 {
  return r < (rows & ~3) ? (r & ~3) * nb + (b << 2) + (r & 3) : r * nb + b;
}

/** Value k (signed) of row r of a Q8_0 or I8 matrix, the zero point not taken. */
// @ts-ignore: decorator
@inline export function q8At(row: usize, k: i32): i32 {
  const v = <i32>load<u8>(row + <usize>k);
  return (k & 1) == 0 ? v - 128 : <i32><i8>v;
}

/** Value j (0..31, unsigned 0..15, offset 8 not taken) of a repacked Q4_0 block. */
// @ts-ignore: decorator
@inline export function q4At(block: usize, j: i32): i32 {
  const i = (j & 15) >> 1; // the lane
  const nib = (j & 1) | ((j >> 4) << 1); // the nibble
  return (<i32>load<u16>(block + (<usize>i << 1)) >> (nib << 2)) & 15;
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

/** Flips the top bit of every even-indexed byte of n bytes (n even): q -> q + 128 there. */
function offsetEvenBytes(p: usize, n: usize): void {
  for (let i: usize = 0; i < n; i += 2) store<u8>(p + i, load<u8>(p + i) ^ 0x80);
}

/** Repacks GGUF Q8_0 blocks (f16 d + 32 int8) at p in place; scales go to s (f32, one per block,
 *  row-major until permuteScales). */
function repackQ8_0(p: usize, s: usize, blocks: i32): void {
  for (let i = 0; i < blocks; i++) {
    const src = p + <usize>i * 34;
    store<f32>(s + (<usize>i << 2), f16ToF32(<u32>load<u16>(src)));
    memory.copy(p + <usize>i * 32, src + 2, 32);
  }
  offsetEvenBytes(p, <usize>blocks * 32);
}

/** Repacks GGUF Q4_0 blocks (f16 d + 16 bytes: byte j holds value j low, value j+16 high) at p in
 *  place into 16-byte blocks of the lane layout above; scales go to s. */
function repackQ4_0(p: usize, s: usize, blocks: i32): void {
  for (let i = 0; i < blocks; i++) {
    const src = p + <usize>i * 18;
    store<f32>(s + (<usize>i << 2), f16ToF32(<u32>load<u16>(src)));
    // read the 16 bytes before writing: the destination overlaps the source
    const lo = load<u64>(src + 2), hi = load<u64>(src + 10);
    const dst = p + <usize>i * 16;
    for (let l = 0; l < 8; l++) {
      // values 2l and 2l+1 are bytes 2l and 2l+1 (low nibbles); 16+2l and 17+2l their high ones
      const bytes = <u32>((l < 4 ? lo >> (<u64>l << 4) : hi >> (<u64>(l - 4) << 4)) & 0xffff);
      const a = bytes & 0xff, b = bytes >> 8;
      store<u16>(dst + (<usize>l << 1), <u16>((a & 15) | ((b & 15) << 4) | ((a >> 4) << 8) | ((b >> 4) << 12)));
    }
  }
}

/** Reorders the row-major scales [rows, nb] at s into scaleIndex order, in place (tmp: a
 *  scratch of 16 * nb bytes). */
function permuteScales(s: usize, rows: i32, nb: i32, tmp: usize): void {
  const g4 = rows & ~3;
  const group = <usize>(4 * nb) << 2;
  for (let r = 0; r < g4; r += 4) {
    const base = s + (<usize>(r * nb) << 2);
    memory.copy(tmp, base, group);
    for (let i = 0; i < 4; i++) {
      for (let b = 0; b < nb; b++) store<f32>(base + (<usize>((b << 2) + i) << 2), load<f32>(tmp + (<usize>(i * nb + b) << 2)));
    }
  }
}

/** Lays a quantized matrix [rows, cols] out for the kernels, in place: Q8_0 / Q4_0 blocks at q are
 *  repacked and their scales written to s, grouped per four rows within each of `groups` equal
 *  row groups (the experts of a stacked tensor, or 1); I8 bytes get their even-indexed bytes
 *  offset (their scales are the caller's: one per row group, so their order does not matter). */
export function repackMatrix(type: i32, q: usize, s: usize, rows: i32, cols: i32, groups: i32): void {
  if (type == T_I8) {
    offsetEvenBytes(q, <usize>rows * <usize>cols);
    return;
  }
  const nb = cols / QK;
  if (type == T_Q8_0) repackQ8_0(q, s, rows * nb);
  else repackQ4_0(q, s, rows * nb);
  const groupRows = rows / groups;
  const tmp = heap.alloc(<usize>(16 * nb));
  for (let g = 0; g < groups; g++) permuteScales(s + (<usize>(g * groupRows * nb) << 2), groupRows, nb, tmp);
  heap.free(tmp);
}

// ---- Activation quantization ----------------------------------------------------------------

/** Quantizes x [n] (n a multiple of 32) into int16 values in [-32767, 32767] (xqIndex order) and
 *  f32 block scales. */
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
      for (let j = 0; j < QK; j += 16) {
        const p = xb + (<usize>j << 2);
        const v0 = v128.load(p), v1 = v128.load(p, 16), v2 = v128.load(p, 32), v3 = v128.load(p, 48);
        // even-indexed values, then odd-indexed ones
        const e0 = i32x4.sub(f32x4.add(f32x4.mul(v128.shuffle<f32>(v0, v1, 0, 2, 4, 6), idv), magic), bits);
        const e1 = i32x4.sub(f32x4.add(f32x4.mul(v128.shuffle<f32>(v2, v3, 0, 2, 4, 6), idv), magic), bits);
        const o0 = i32x4.sub(f32x4.add(f32x4.mul(v128.shuffle<f32>(v0, v1, 1, 3, 5, 7), idv), magic), bits);
        const o1 = i32x4.sub(f32x4.add(f32x4.mul(v128.shuffle<f32>(v2, v3, 1, 3, 5, 7), idv), magic), bits);
        v128.store(qb + (<usize>j << 1), i16x8.narrow_i32x4_s(e0, e1));
        v128.store(qb + (<usize>j << 1), i16x8.narrow_i32x4_s(o0, o1), 16);
      }
    } else {
      for (let j = 0; j < QK; j++) {
        store<i16>(qb + (<usize>xqIndex(j) << 1), <i16><i32>nearest<f32>(load<f32>(xb + (<usize>j << 2)) * id));
      }
    }
  }
}

/** Quantized activation k of vector xq. */
// @ts-ignore: decorator
@inline function xqAt(xq: usize, k: i32): i32 {
  return <i32>load<i16>(xq + (<usize>xqIndex(k) << 1));
}

/** The sum of a block's 32 quantized activations at p, the even-indexed ones weighted by `even`
 *  and the odd-indexed ones by `odd` (per lane). */
// @ts-ignore: decorator
@inline function blockSum(p: usize, even: v128, odd: v128): i32 {
  let v = i32x4.dot_i16x8_s(v128.load(p), even);
  v = i32x4.add(v, i32x4.dot_i16x8_s(v128.load(p, 16), odd));
  v = i32x4.add(v, i32x4.dot_i16x8_s(v128.load(p, 32), even));
  v = i32x4.add(v, i32x4.dot_i16x8_s(v128.load(p, 48), odd));
  return (i32x4.extract_lane(v, 0) + i32x4.extract_lane(v, 1)) + (i32x4.extract_lane(v, 2) + i32x4.extract_lane(v, 3));
}

/** sc.xs[b] = the offset the stored weights add to block b's integer sum: Q8_0/I8, 128 times
 *  the block's even-indexed activations; Q4_0, 8 times all of them. */
function offsetSums(sc: QScratch, nb: i32, q4: bool): void {
  const even = i16x8.splat(q4 ? 8 : 128);
  const odd = i16x8.splat(q4 ? 8 : 0);
  for (let b = 0; b < nb; b++) store<i32>(sc.xs + (<usize>b << 2), blockSum(sc.xq + (<usize>(b * QK) << 1), even, odd));
}

/** Lane i of the result: the sum of the four lanes of the i-th argument (integer). */
// @ts-ignore: decorator
@inline function hsum4i(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = i32x4.add(i32x4.shuffle(a, b, 0, 4, 1, 5), i32x4.shuffle(a, b, 2, 6, 3, 7));
  const cd = i32x4.add(i32x4.shuffle(c, d, 0, 4, 1, 5), i32x4.shuffle(c, d, 2, 6, 3, 7));
  return i32x4.add(i32x4.shuffle(ab, cd, 0, 1, 4, 5), i32x4.shuffle(ab, cd, 2, 3, 6, 7));
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
      for (let j = 0; j < QK; j++) isum += q8At(wr, b * QK + j) * xqAt(sc.xq, b * QK + j);
      acc += <f32>isum * (load<f32>(m.s + (<usize>scaleIndex(m.rows, nb, r, b) << 2)) * load<f32>(sc.xd + (<usize>b << 2)));
    }
    store<f32>(y + (<usize>r << 2), acc);
  }
}

/** One row's block: sum_j stored[j] * x[j] (the offset not yet taken), in 4 lanes; x0..x3: the
 *  block's activations (even and odd of values 0..15, even and odd of 16..31). */
// @ts-ignore: decorator
@inline function dot32_q8x(w: usize, x0: v128, x1: v128, x2: v128, x3: v128): v128 {
  const v0 = v128.load(w), v1 = v128.load(w, 16);
  const lo = i16x8.splat(0xff);
  let p = i32x4.dot_i16x8_s(v128.and(v0, lo), x0);
  p = i32x4.add(p, i32x4.dot_i16x8_s(i16x8.shr_s(v0, 8), x1));
  p = i32x4.add(p, i32x4.dot_i16x8_s(v128.and(v1, lo), x2));
  return i32x4.add(p, i32x4.dot_i16x8_s(i16x8.shr_s(v1, 8), x3));
}

// ---- Q4_0 ------------------------------------------------------------------------------------

/** Reference: y[r] = sum_b W.s[r,b] * x.d[b] * (sum_j (q[r,32b+j] - 8) * xq[32b+j]). */
export function matvec_q4_ref(m: Mat, sc: QScratch, y: usize): void {
  const nb = m.cols / QK;
  for (let r = 0; r < m.rows; r++) {
    const wr = m.q + <usize>r * <usize>(m.cols >> 1);
    let acc: f32 = 0;
    for (let b = 0; b < nb; b++) {
      let isum: i32 = 0;
      const wb = wr + <usize>(b * 16);
      for (let j = 0; j < QK; j++) isum += (q4At(wb, j) - 8) * xqAt(sc.xq, b * QK + j);
      acc += <f32>isum * (load<f32>(m.s + (<usize>scaleIndex(m.rows, nb, r, b) << 2)) * load<f32>(sc.xd + (<usize>b << 2)));
    }
    store<f32>(y + (<usize>r << 2), acc);
  }
}

/** One row's block: sum_j q[j] * x[j] (q unsigned, the offset not yet taken), in 4 lanes. */
// @ts-ignore: decorator
@inline function dot32_q4x(w: usize, x0: v128, x1: v128, x2: v128, x3: v128): v128 {
  const v = v128.load(w);
  const mask = i16x8.splat(15);
  let p = i32x4.dot_i16x8_s(v128.and(v, mask), x0);
  p = i32x4.add(p, i32x4.dot_i16x8_s(v128.and(i16x8.shr_u(v, 4), mask), x1));
  p = i32x4.add(p, i32x4.dot_i16x8_s(v128.and(i16x8.shr_u(v, 8), mask), x2));
  return i32x4.add(p, i32x4.dot_i16x8_s(i16x8.shr_u(v, 12), x3));
}

// ---- The SIMD kernels (Q8_0 / I8 and Q4_0 differ only in the per-block dot product) ---------

/** Four rows at a time: each block's integer sums of the four rows are reduced to one vector
 *  (lane = row), the offset taken off, then converted, scaled and added to y. The loop runs block
 *  by block over all the rows (the block's activations stay in registers, y takes the sums), which
 *  V8 compiles with fewer spills than rows outside and blocks inside. Leftover rows one by one.
 *  Inlined with a constant q4, so each kernel has only its own dot product. */
// @ts-ignore: decorator
@inline function matvecBlocks(m: Mat, sc: QScratch, y: usize, q4: bool): void {
  const nb = m.cols / QK;
  const rowBytes: usize = q4 ? <usize>(m.cols >> 1) : <usize>m.cols;
  const blockBytes: usize = q4 ? 16 : 32;
  offsetSums(sc, nb, q4);
  const g4 = m.rows & ~3;
  // y accumulates from +0, as the reference's accumulator does
  memory.fill(y, 0, <usize>g4 << 2);
  const groupScales = <usize>nb << 4; // bytes of one group's scales
  for (let b = 0; b < nb; b++) {
    const xq = sc.xq + (<usize>(b * QK) << 1);
    const x0 = v128.load(xq), x1 = v128.load(xq, 16), x2 = v128.load(xq, 32), x3 = v128.load(xq, 48);
    const xs = i32x4.splat(load<i32>(sc.xs + (<usize>b << 2)));
    const xd = f32x4.splat(load<f32>(sc.xd + (<usize>b << 2)));
    let w = m.q + <usize>b * blockBytes;
    let sp = m.s + (<usize>b << 4);
    let yp = y;
    const yEnd = y + (<usize>g4 << 2);
    while (yp < yEnd) {
      const h = q4
        ? hsum4i(dot32_q4x(w, x0, x1, x2, x3), dot32_q4x(w + rowBytes, x0, x1, x2, x3), dot32_q4x(w + 2 * rowBytes, x0, x1, x2, x3), dot32_q4x(w + 3 * rowBytes, x0, x1, x2, x3))
        : hsum4i(dot32_q8x(w, x0, x1, x2, x3), dot32_q8x(w + rowBytes, x0, x1, x2, x3), dot32_q8x(w + 2 * rowBytes, x0, x1, x2, x3), dot32_q8x(w + 3 * rowBytes, x0, x1, x2, x3));
      const v = f32x4.mul(f32x4.convert_i32x4_s(i32x4.sub(h, xs)), f32x4.mul(v128.load(sp), xd));
      v128.store(yp, f32x4.add(v128.load(yp), v));
      w += rowBytes << 2;
      sp += groupScales;
      yp += 16;
    }
  }
  for (let r = g4; r < m.rows; r++) {
    const wr = m.q + <usize>r * rowBytes;
    let acc: f32 = 0;
    for (let b = 0; b < nb; b++) {
      const xq = sc.xq + (<usize>(b * QK) << 1);
      const x0 = v128.load(xq), x1 = v128.load(xq, 16), x2 = v128.load(xq, 32), x3 = v128.load(xq, 48);
      const wb = wr + <usize>b * blockBytes;
      const p = q4 ? dot32_q4x(wb, x0, x1, x2, x3) : dot32_q8x(wb, x0, x1, x2, x3);
      const isum = (i32x4.extract_lane(p, 0) + i32x4.extract_lane(p, 1)) + (i32x4.extract_lane(p, 2) + i32x4.extract_lane(p, 3)) - load<i32>(sc.xs + (<usize>b << 2));
      acc += <f32>isum * (load<f32>(m.s + (<usize>scaleIndex(m.rows, nb, r, b) << 2)) * load<f32>(sc.xd + (<usize>b << 2)));
    }
    store<f32>(y + (<usize>r << 2), acc);
  }
}

export function matvec_q8_simd(m: Mat, sc: QScratch, y: usize): void { matvecBlocks(m, sc, y, false); }
export function matvec_q4_simd(m: Mat, sc: QScratch, y: usize): void { matvecBlocks(m, sc, y, true); }

// ---- Dispatch ------------------------------------------------------------------------------

/** y = W x for any matrix type; quantized types quantize x into sc first, unless `have` says sc
 *  already holds x quantized (by an earlier call on the same x). Returns whether sc holds x
 *  quantized after the call. */
export function matvec(m: Mat, x: usize, y: usize, sc: QScratch, have: bool = false): bool {
  const t = m.type;
  if (t == T_F32) {
    matvec_f32(m.q, x, y, m.rows, m.cols);
    return have;
  }
  if (!have) quantizeActivations(x, m.cols, sc);
  if (t == T_Q4_0) {
    if (ASC_FEATURE_SIMD) matvec_q4_simd(m, sc, y); else matvec_q4_ref(m, sc, y);
    return true;
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
  return true;
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
    const d = load<f32>(m.s + (<usize>scaleIndex(m.rows, nb, r, b) << 2));
    for (let j = 0; j < QK; j++) {
      const k = b * QK + j;
      const q = m.type == T_Q4_0
        ? q4At(m.q + <usize>r * <usize>(cols >> 1) + <usize>(b * 16), j) - 8
        : q8At(m.q + <usize>r * <usize>cols, k) - m.zp;
      store<f32>(out + (<usize>k << 2), d * <f32>q);
    }
  }
}
