// Quantized matrix kernels: Q8_0, Q4_0 (GGUF's block formats) and I8 (a per-tensor affine int8,
// as PyTorch's dynamic quantization stores it), plus F16 conversion at load. One kernel serves a
// single position (decode) and a batch of positions (prefill): y_p = W x_p for p < P.
//
// A matrix W [rows, cols] is a Mat. The file's blocks are repacked IN PLACE at load into layouts
// chosen so that the SIMD kernels widen weights to int16 with the fewest instructions and every
// integer dot product lands in a lane of its own row (no horizontal sums):
//
// - activations (quantized on the fly, per block of 32, to int16: d = max|x| / 32767,
//   q = round-to-even(x / d)) are stored in order, so that a pair of them is one 32-bit word
//   (broadcast to four lanes with one load);
// - rows go in groups of four. In a group, each block of 32 columns holds, for each pair of
//   columns, the four rows' two values side by side: as int16 lanes [r0 c, r0 c+1, r1 c, r1 c+1,
//   r2 c, r2 c+1, r3 c, r3 c+1], a dot product with the broadcast pair (x_c, x_c+1) adds that pair
//   to the four rows at once;
//   - Q8_0 / I8 (one byte per value): 16-byte chunk j of the block holds column pair 2j in its
//     even bytes (stored q + 128, that is q xor 0x80) and pair 2j + 1 in its odd bytes. Read as
//     int16 lanes, `lane & 0xff` is pair 2j plus 128 and `lane >> 8` (arithmetic) pair 2j + 1: two
//     instructions widen 16 weights; the +128 is taken off once per block (128 times the sum of
//     the block's activations in even chunk positions, `offsetSums`);
//   - Q4_0 (a nibble per value, unsigned, offset 8): 16-byte chunk j holds column pairs 4j..4j+3,
//     pair 4j + n in nibble n of every lane: masks and shifts give four vectors; the offset 8 is
//     taken off once per block (8 times the block's activations);
// - rows past the last whole group of four keep plain row-major blocks (Q8_0 / I8 signed bytes,
//   Q4_0 in GGUF's own nibble order) and run a scalar loop;
// - block scales as f32, per group of four rows block-major ([nb][4], one vector load per block
//   for four rows), rows past the last whole group of four row-major after them (`scaleIndex`).
//
// The integer part of every block's dot product is exact (|sum| < 2^31); only the f32 scaling
// and summation round, by the same operations in the same order in the SIMD kernels and in their
// plain scalar references (`*_ref`), which therefore give the same bits.

import { madd, matvec_f32, matvec2_f32_simd } from './f32';

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
  ns: usize; // relaxed build, Q4_0: u16 sums of each block's 32 nibbles, in scaleIndex order (else 0)
}

/** Scratch for quantized activation vectors (as many as the owner allocated rows for) of up to
 *  `stride` values (a multiple of 32) each: int16 values, f32 block scales, and per block the
 *  offset the stored weights add. */
@unmanaged
export class QScratch {
  xq: usize; // i16 [rows][stride]
  xd: usize; // f32 [rows][stride / 32]
  xs: usize; // i32 [rows][stride / 32]
  stride: i32;
  xb: usize; // relaxed build: the int16 values split into bytes for the Q4_0 kernel (as xq's size)
}

/** Where the scale of row r, block b is, in a matrix of `rows` rows and nb blocks per row. */
// @ts-ignore: decorator
@inline export function scaleIndex(rows: i32, nb: i32, r: i32, b: i32): i32 {
  return r < (rows & ~3) ? (r & ~3) * nb + (b << 2) + (r & 3) : r * nb + b;
}

/** Value k of row r of a laid-out Q8_0 or I8 matrix, signed, the zero point not taken. */
// @ts-ignore: decorator
@inline export function q8At(m: Mat, r: i32, k: i32): i32 {
  if (r >= (m.rows & ~3)) return <i32>load<i8>(m.q + <usize>r * <usize>m.cols + <usize>k);
  const v = <i32>load<u8>(m.q + <usize>(r & ~3) * <usize>m.cols + q8GroupOffset(r & 3, k));
  return ((k >> 1) & 1) == 0 ? v - 128 : <i32><i8>v;
}

/** Value k of row r of a laid-out Q4_0 matrix: the nibble, unsigned (0..15, offset 8 not taken). */
// @ts-ignore: decorator
@inline export function q4At(m: Mat, r: i32, k: i32): i32 {
  const half = m.cols >> 1;
  const j = k & 31;
  if (r >= (m.rows & ~3)) {
    const byte = <i32>load<u8>(m.q + <usize>r * <usize>half + <usize>((k >> 5) << 4) + <usize>(j & 15));
    return j < 16 ? byte & 15 : byte >> 4;
  }
  const lane = <i32>load<u16>(m.q + <usize>(r & ~3) * <usize>half + q4GroupOffset(r & 3, k));
  return (lane >> (((j >> 1) & 3) << 2)) & 15;
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

/** Byte offset, in a Q8_0/I8 group of four rows, of row i's value k (see the layout above). */
// @ts-ignore: decorator
@inline function q8GroupOffset(i: i32, k: i32): usize {
  const j = k & 31, cp = j >> 1;
  return <usize>(((k >> 5) << 7) | ((cp >> 1) << 4) | (((i << 1) | (j & 1)) << 1) | (cp & 1));
}

/** Byte offset, in a Q4_0 group of four rows, of the int16 lane holding row i's value k; the
 *  value is nibble (k & 31) >> 1 & 3 of it. */
// @ts-ignore: decorator
@inline function q4GroupOffset(i: i32, k: i32): usize {
  const j = k & 31;
  return <usize>(((k >> 5) << 6) | ((j >> 3) << 4) | (((i << 1) | (j & 1)) << 1));
}

/** Compacts GGUF Q8_0 blocks (f16 d + 32 int8) at p in place to their 32 bytes, row-major; the
 *  scales go to s (f32, one per block, row-major until permuteScales). */
function compactQ8_0(p: usize, s: usize, blocks: i32): void {
  for (let i = 0; i < blocks; i++) {
    const src = p + <usize>i * 34;
    store<f32>(s + (<usize>i << 2), f16ToF32(<u32>load<u16>(src)));
    memory.copy(p + <usize>i * 32, src + 2, 32);
  }
}

/** Compacts GGUF Q4_0 blocks (f16 d + 16 bytes: byte j holds value j low, value j+16 high) at p
 *  in place to their 16 bytes; the scales go to s. */
function compactQ4_0(p: usize, s: usize, blocks: i32): void {
  for (let i = 0; i < blocks; i++) {
    const src = p + <usize>i * 18;
    store<f32>(s + (<usize>i << 2), f16ToF32(<u32>load<u16>(src)));
    memory.copy(p + <usize>i * 16, src + 2, 16);
  }
}

/** Lays out every whole group of four rows of row-major signed bytes [rows, cols] at q (tmp: a
 *  scratch of 4 * cols bytes). */
function groupQ8(q: usize, rows: i32, cols: i32, tmp: usize): void {
  const gBytes = <usize>(4 * cols);
  for (let g = 0; g < (rows & ~3); g += 4) {
    const base = q + <usize>g * <usize>cols;
    memory.copy(tmp, base, gBytes);
    for (let i = 0; i < 4; i++) {
      for (let k = 0; k < cols; k++) {
        const v = load<u8>(tmp + <usize>(i * cols + k));
        store<u8>(base + q8GroupOffset(i, k), ((k >> 1) & 1) == 0 ? v ^ 0x80 : v);
      }
    }
  }
}

/** Lays out every whole group of four rows of compacted Q4_0 blocks [rows, cols / 2 bytes] at q
 *  (tmp: a scratch of 2 * cols bytes). */
function groupQ4(q: usize, rows: i32, cols: i32, tmp: usize): void {
  const half = cols >> 1;
  const gBytes = <usize>(4 * half);
  for (let g = 0; g < (rows & ~3); g += 4) {
    const base = q + <usize>g * <usize>half;
    memory.copy(tmp, base, gBytes);
    memory.fill(base, 0, gBytes);
    for (let i = 0; i < 4; i++) {
      for (let k = 0; k < cols; k++) {
        const j = k & 31;
        const byte = <u32>load<u8>(tmp + <usize>(i * half + ((k >> 5) << 4) + (j & 15)));
        const v = j < 16 ? byte & 15 : byte >> 4;
        const at = base + q4GroupOffset(i, k);
        store<u16>(at, <u16>(<u32>load<u16>(at) | (v << <u32>(((j >> 1) & 3) << 2))));
      }
    }
  }
}

/** ns[scaleIndex(r, b)] = the sum of the 32 nibbles of block b of row r, from compacted Q4_0
 *  blocks [rows, cols / 2 bytes] at q (before groupQ4), as u16 (at most 480). */
function nibbleSums(q: usize, rows: i32, cols: i32, ns: usize): void {
  const nb = cols / QK, half = cols >> 1;
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < nb; b++) {
      const blk = q + <usize>(r * half + (b << 4));
      let sum: u32 = 0;
      for (let j = 0; j < 16; j++) {
        const byte = <u32>load<u8>(blk + <usize>j);
        sum += (byte & 15) + (byte >> 4);
      }
      store<u16>(ns + (<usize>scaleIndex(rows, nb, r, b) << 1), <u16>sum);
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

/** Lays a quantized matrix [rows, cols] out for the kernels, in place, as `groups` equal row
 *  groups (the experts of a stacked tensor, or 1) each laid out as a matrix of its own: Q8_0 and
 *  Q4_0 blocks at q compacted and grouped, their scales written to s; I8 bytes grouped (their
 *  scales are the caller's: one per row group, so their order does not matter). */
export function repackMatrix(type: i32, q: usize, s: usize, rows: i32, cols: i32, groups: i32, ns: usize = 0): void {
  const nb = cols / QK;
  const groupRows = rows / groups;
  const tmp = heap.alloc(<usize>max(16 * nb, 4 * cols));
  if (type == T_Q8_0) compactQ8_0(q, s, rows * nb);
  else if (type == T_Q4_0) compactQ4_0(q, s, rows * nb);
  const rowBytes = type == T_Q4_0 ? cols >> 1 : cols;
  for (let g = 0; g < groups; g++) {
    const q0 = q + <usize>(g * groupRows) * <usize>rowBytes;
    if (ASC_FEATURE_RELAXED_SIMD && type == T_Q4_0 && ns != 0) nibbleSums(q0, groupRows, cols, ns + (<usize>(g * groupRows * nb) << 1));
    if (type == T_Q4_0) groupQ4(q0, groupRows, cols, tmp); else groupQ8(q0, groupRows, cols, tmp);
    if (type != T_I8) permuteScales(s + (<usize>(g * groupRows * nb) << 2), groupRows, nb, tmp);
  }
  heap.free(tmp);
}

// ---- Activation quantization ----------------------------------------------------------------

/** Quantizes x [n] (n a multiple of 32) into int16 values in [-32767, 32767] at xq, in order, and
 *  f32 block scales at xd. */
export function quantizeActivations(x: usize, n: i32, xq: usize, xd: usize): void {
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
        const p = xb + (<usize>j << 2);
        const q0 = i32x4.sub(f32x4.add(f32x4.mul(v128.load(p), idv), magic), bits);
        const q1 = i32x4.sub(f32x4.add(f32x4.mul(v128.load(p, 16), idv), magic), bits);
        v128.store(qb + (<usize>j << 1), i16x8.narrow_i32x4_s(q0, q1));
      }
    } else {
      for (let j = 0; j < QK; j++) {
        store<i16>(qb + (<usize>j << 1), <i16><i32>nearest<f32>(load<f32>(xb + (<usize>j << 2)) * id));
      }
    }
  }
}

/** Quantizes P vectors of n values, xstride floats apart, into sc's first P slots. */
export function quantizeRows(x: usize, xstride: i32, n: i32, P: i32, sc: QScratch): void {
  for (let p = 0; p < P; p++) {
    quantizeActivations(x + (<usize>(p * xstride) << 2), n, sc.xq + (<usize>(p * sc.stride) << 1), sc.xd + (<usize>(p * (sc.stride / QK)) << 2));
  }
}

/** sc.xs[p][b] = the offset the stored weights add to block b's integer sum, for P positions:
 *  Q8_0/I8, 128 times the block's activations at even chunk positions (columns with k & 2 == 0);
 *  Q4_0, 8 times all of them. With split (the relaxed build's Q4_0 kernel), also each block's
 *  activations split into bytes at sc.xb (splitBlock), in the same pass. */
function offsetSums(sc: QScratch, nb: i32, P: i32, q4: bool, split: bool): void {
  const w = q4 ? i16x8.splat(8) : i16x8(128, 128, 0, 0, 128, 128, 0, 0);
  for (let p = 0; p < P; p++) {
    const xq = sc.xq + (<usize>(p * sc.stride) << 1);
    const xs = sc.xs + (<usize>(p * (sc.stride / QK)) << 2);
    for (let b = 0; b < nb; b++) {
      const x = xq + (<usize>(b * QK) << 1);
      if (ASC_FEATURE_RELAXED_SIMD && split) splitBlock(x, sc.xb + (x - sc.xq));
      let v = i32x4.dot_i16x8_s(v128.load(x), w);
      v = i32x4.add(v, i32x4.dot_i16x8_s(v128.load(x, 16), w));
      v = i32x4.add(v, i32x4.dot_i16x8_s(v128.load(x, 32), w));
      v = i32x4.add(v, i32x4.dot_i16x8_s(v128.load(x, 48), w));
      store<i32>(xs + (<usize>b << 2), (i32x4.extract_lane(v, 0) + i32x4.extract_lane(v, 1)) + (i32x4.extract_lane(v, 2) + i32x4.extract_lane(v, 3)));
    }
  }
}

/** What every block kernel does before its blocks: the offsets (and, with split, the split
 *  activations) of P positions, and Y's rows of whole groups of four zeroed (the sums accumulate
 *  from +0, as the reference's accumulator does). */
function beginBlocks(m: Mat, sc: QScratch, y: usize, ystride: i32, P: i32, q4: bool, split: bool): void {
  offsetSums(sc, m.cols / QK, P, q4, split);
  const yRow = <usize>ystride << 2, yEnd = <usize>(m.rows & ~3) << 2;
  for (let p = 0; p < P; p++) memory.fill(y + <usize>p * yRow, 0, yEnd);
}

/** What every block kernel does after its blocks: the rows past the last whole group of four, by
 *  the scalar reference, for P positions. */
function endBlocks(m: Mat, sc: QScratch, y: usize, ystride: i32, P: i32, q4: bool): void {
  const g4 = m.rows & ~3;
  if (g4 == m.rows) return;
  const xqRow = <usize>sc.stride << 1, xdRow = <usize>(sc.stride / QK) << 2, yRow = <usize>ystride << 2;
  for (let p = 0; p < P; p++) rowsRef(m, sc.xq + <usize>p * xqRow, sc.xd + <usize>p * xdRow, y + <usize>p * yRow, g4, q4);
}

/** The relaxed build's Q4_0 kernel multiplies 4-bit weights by bytes, so each int16 activation a
 *  is split into its high byte h = a >> 8 (signed) and its low byte less 128, l = (a & 255) - 128,
 *  a = 256 h + l + 128. One block's 32 values (64 bytes at x) become 64 bytes at o: for each
 *  eight columns c..c+7, the bytes h and l of columns c, c+4, c+1, c+5, then of c+2, c+6, c+3,
 *  c+7, the order in which a chunk of weights holds them (low nibbles, then high ones). */
// @ts-ignore: decorator
@inline function splitBlock(x: usize, o: usize): void {
  const flip = v128(0, 0, 0, 0, -128, -128, -128, -128, 0, 0, 0, 0, -128, -128, -128, -128);
  for (let c: usize = 0; c < 64; c += 16) {
    const v = v128.load(x + c);
    v128.store(o + c, v128.xor(v128.shuffle<u8>(v, v, 1, 9, 3, 11, 0, 8, 2, 10, 5, 13, 7, 15, 4, 12, 6, 14), flip));
  }
}

// ---- The scalar references (and the rows past the last whole group of four) ----------------

/** Rows [r0, rows) of y = W x for one position: y[r] = sum_b W.s[r,b] * x.d[b] * (sum_j w[r,32b+j]
 *  * xq[32b+j]), w the signed (Q8_0, I8 without its zero point) or offset (Q4_0: nibble - 8) value. */
// @ts-ignore: decorator
@inline function rowsRef(m: Mat, xq: usize, xd: usize, y: usize, r0: i32, q4: bool): void {
  const nb = m.cols / QK;
  for (let r = r0; r < m.rows; r++) {
    let acc: f32 = 0;
    for (let b = 0; b < nb; b++) {
      let isum: i32 = 0;
      for (let j = 0; j < QK; j++) {
        const k = b * QK + j;
        isum += (q4 ? q4At(m, r, k) - 8 : q8At(m, r, k)) * <i32>load<i16>(xq + (<usize>k << 1));
      }
      acc += <f32>isum * (load<f32>(m.s + (<usize>scaleIndex(m.rows, nb, r, b) << 2)) * load<f32>(xd + (<usize>b << 2)));
    }
    store<f32>(y + (<usize>r << 2), acc);
  }
}

/** Reference Q8_0 / I8 (zero point not taken) y = W x for one quantized position. */
export function matvec_q8_ref(m: Mat, xq: usize, xd: usize, y: usize): void { rowsRef(m, xq, xd, y, 0, false); }
/** Reference Q4_0 y = W x for one quantized position. */
export function matvec_q4_ref(m: Mat, xq: usize, xd: usize, y: usize): void { rowsRef(m, xq, xd, y, 0, true); }

// ---- The SIMD kernels (Q8_0 / I8 and Q4_0 differ only in how a chunk widens) ----------------

const MASKS = memory.data<u16>([0xff, 15]);

/** a + the dot products of two widened column pairs of four rows with broadcast activations. */
// @ts-ignore: decorator
@inline function pairsX(a: v128, w0: v128, w1: v128, xe: v128, xo: v128): v128 {
  return i32x4.add(a, i32x4.add(i32x4.dot_i16x8_s(w0, xe), i32x4.dot_i16x8_s(w1, xo)));
}

/** pairsX with position x's activations at byte offsets o and o + 4, each pair broadcast. */
// @ts-ignore: decorator
@inline function pairs2(a: v128, w0: v128, w1: v128, x: usize, o: usize): v128 {
  return pairsX(a, w0, w1, v128.load32_splat(x + o), v128.load32_splat(x + o + 4));
}

/** y += (a - xs) * (scales * xd), four rows' block sums in the lanes of a. */
// @ts-ignore: decorator
@inline function addBlock(y: usize, a: v128, xs: usize, xd: usize, scales: v128): void {
  const sum = f32x4.convert_i32x4_s(i32x4.sub(a, v128.load32_splat(xs)));
  v128.store(y, madd(sum, f32x4.mul(scales, v128.load32_splat(xd)), v128.load(y)));
}

/** Y[p] = W X[p] for P quantized positions (sc), Y rows ystride floats apart. Block by block over
 *  the groups of four rows, whose sums for one position accumulate in one vector (lane = row):
 *  Q8_0 / I8 two positions and two groups at a time (a chunk of weights widened once for both
 *  positions), the position left (and every Q4_0 position) one at a time, two groups of rows
 *  sharing each broadcast pair of activations. Then each block's sums are converted, scaled and
 *  added to Y. The loops stay rolled: unrolling them (chunks, or the one-position case) measured
 *  30-45% slower, V8 spilling registers. Inlined with a constant q4. */
// @ts-ignore: decorator
@inline function matmulBlocks(m: Mat, sc: QScratch, y: usize, ystride: i32, P: i32, q4: bool): void {
  const nb = m.cols / QK;
  const blockBytes: usize = q4 ? 64 : 128; // one block of a group of four rows
  const groupBytes: usize = q4 ? <usize>(m.cols << 1) : <usize>(m.cols << 2);
  const groupScales = <usize>nb << 4;
  const g4 = m.rows & ~3;
  const xqRow = <usize>sc.stride << 1, xdRow = <usize>(sc.stride / QK) << 2, yRow = <usize>ystride << 2;
  const yEnd = <usize>g4 << 2;
  beginBlocks(m, sc, y, ystride, P, q4, false);
  // the masks read from memory: V8 rebuilds a v128.const in three instructions at every use
  const lo = v128.load16_splat(MASKS), m15 = v128.load16_splat(MASKS, 2);
  for (let b = 0; b < nb; b++) {
    const xb = <usize>b << 6, sb = <usize>b << 2;
    let p = 0;
    // Q8_0 / I8: two positions by two groups of rows per pass (each widened chunk serves two
    // positions, each broadcast pair two groups): 20% faster than four positions by one group.
    // Q4_0 runs its positions one by one: four positions by one group measured 25% slower than
    // that, and two by two no faster (its chunks widen to four vectors; V8 spills registers).
    for (; !q4 && p + 2 <= P; p += 2) {
      const x0 = sc.xq + <usize>p * xqRow + xb, x1 = x0 + xqRow;
      const d0 = sc.xd + <usize>p * xdRow + sb, s0 = sc.xs + <usize>p * xdRow + sb;
      const y0 = y + <usize>p * yRow;
      let w = m.q + <usize>b * blockBytes, sp = m.s + (<usize>b << 4);
      let yo: usize = 0;
      for (; yo + 32 <= yEnd; yo += 32) {
        let a0 = i32x4.splat(0), a1 = a0, c0 = a0, c1 = a0;
        const w1 = w + groupBytes;
        for (let j: usize = 0; j < 128; j += 16) {
          const v = v128.load(w + j), u = v128.load(w1 + j);
          const ve = v128.and(v, lo), vo = i16x8.shr_s(v, 8), ue = v128.and(u, lo), uo = i16x8.shr_s(u, 8);
          let xe = v128.load32_splat(x0 + (j >> 1)), xo = v128.load32_splat(x0 + (j >> 1) + 4);
          a0 = pairsX(a0, ve, vo, xe, xo);
          c0 = pairsX(c0, ue, uo, xe, xo);
          xe = v128.load32_splat(x1 + (j >> 1)); xo = v128.load32_splat(x1 + (j >> 1) + 4);
          a1 = pairsX(a1, ve, vo, xe, xo);
          c1 = pairsX(c1, ue, uo, xe, xo);
        }
        const sv = v128.load(sp), su = v128.load(sp + groupScales);
        addBlock(y0 + yo, a0, s0, d0, sv);
        addBlock(y0 + yo + 16, c0, s0, d0, su);
        addBlock(y0 + yRow + yo, a1, s0 + xdRow, d0 + xdRow, sv);
        addBlock(y0 + yRow + yo + 16, c1, s0 + xdRow, d0 + xdRow, su);
        w += groupBytes << 1;
        sp += groupScales << 1;
      }
      if (yo < yEnd) {
        let a0 = i32x4.splat(0), a1 = a0;
        for (let j: usize = 0; j < 128; j += 16) {
          const v = v128.load(w + j);
          const e = v128.and(v, lo), o = i16x8.shr_s(v, 8);
          a0 = pairs2(a0, e, o, x0, j >> 1);
          a1 = pairs2(a1, e, o, x1, j >> 1);
        }
        const sv = v128.load(sp);
        addBlock(y0 + yo, a0, s0, d0, sv);
        addBlock(y0 + yRow + yo, a1, s0 + xdRow, d0 + xdRow, sv);
      }
    }
    for (; p < P; p++) {
      // one position: two groups of four rows at a time, sharing the broadcast activations
      const x0 = sc.xq + <usize>p * xqRow + xb;
      const d0 = sc.xd + <usize>p * xdRow + sb, s0 = sc.xs + <usize>p * xdRow + sb;
      const y0 = y + <usize>p * yRow;
      let w = m.q + <usize>b * blockBytes, sp = m.s + (<usize>b << 4);
      let yo: usize = 0;
      for (; yo + 32 <= yEnd; yo += 32) {
        let a0 = i32x4.splat(0), a1 = a0;
        const w1 = w + groupBytes;
        if (q4) {
          for (let j: usize = 0; j < 64; j += 16) {
            const v = v128.load(w + j), u = v128.load(w1 + j);
            let xe = v128.load32_splat(x0 + j), xo = v128.load32_splat(x0 + j + 4);
            a0 = pairsX(a0, v128.and(v, m15), v128.and(i16x8.shr_u(v, 4), m15), xe, xo);
            a1 = pairsX(a1, v128.and(u, m15), v128.and(i16x8.shr_u(u, 4), m15), xe, xo);
            xe = v128.load32_splat(x0 + j + 8); xo = v128.load32_splat(x0 + j + 12);
            a0 = pairsX(a0, v128.and(i16x8.shr_u(v, 8), m15), i16x8.shr_u(v, 12), xe, xo);
            a1 = pairsX(a1, v128.and(i16x8.shr_u(u, 8), m15), i16x8.shr_u(u, 12), xe, xo);
          }
        } else {
          for (let j: usize = 0; j < 128; j += 16) {
            const v = v128.load(w + j), u = v128.load(w1 + j);
            const xe = v128.load32_splat(x0 + (j >> 1)), xo = v128.load32_splat(x0 + (j >> 1) + 4);
            a0 = pairsX(a0, v128.and(v, lo), i16x8.shr_s(v, 8), xe, xo);
            a1 = pairsX(a1, v128.and(u, lo), i16x8.shr_s(u, 8), xe, xo);
          }
        }
        addBlock(y0 + yo, a0, s0, d0, v128.load(sp));
        addBlock(y0 + yo + 16, a1, s0, d0, v128.load(sp + groupScales));
        w += groupBytes << 1;
        sp += groupScales << 1;
      }
      if (yo < yEnd) {
        let a0 = i32x4.splat(0);
        if (q4) {
          for (let j: usize = 0; j < 64; j += 16) {
            const v = v128.load(w + j);
            a0 = pairs2(a0, v128.and(v, m15), v128.and(i16x8.shr_u(v, 4), m15), x0, j);
            a0 = pairs2(a0, v128.and(i16x8.shr_u(v, 8), m15), i16x8.shr_u(v, 12), x0, j + 8);
          }
        } else {
          for (let j: usize = 0; j < 128; j += 16) {
            const v = v128.load(w + j);
            a0 = pairs2(a0, v128.and(v, lo), i16x8.shr_s(v, 8), x0, j >> 1);
          }
        }
        addBlock(y0 + yo, a0, s0, d0, v128.load(sp));
      }
    }
  }
  endBlocks(m, sc, y, ystride, P, q4);
}

/** The relaxed build's Q4_0 kernel: matmulBlocks' one-position loop with
 *  `i32x4.relaxed_dot_i8x16_i7x16_add_s`, which multiplies 16 signed bytes by 16 bytes in
 *  [0, 127] (here the nibbles, 0..15, exactly on every engine) and adds four products into each
 *  lane. A row's lane of a chunk holds four of its nibbles (see splitBlock for which columns), so
 *  that the dots with the split activations h and l give, per block, sum(h n) and sum(l n), and
 *  sum(a (n - 8)) = 256 sum(h n) + sum(l n) + 128 sum(n) - 8 sum(a): m.ns holds sum(n), sc.xs
 *  8 sum(a). Every integer is the SIMD build's, so the sums are too, bit for bit. */
function matmulQ4Dot(m: Mat, sc: QScratch, y: usize, ystride: i32, P: i32): void {
  const nb = m.cols / QK;
  const groupBytes = <usize>(m.cols << 1);
  const groupScales = <usize>nb << 4, groupSums = <usize>nb << 3;
  const g4 = m.rows & ~3;
  const xqRow = <usize>sc.stride << 1, xdRow = <usize>(sc.stride / QK) << 2, yRow = <usize>ystride << 2;
  const yEnd = <usize>g4 << 2;
  beginBlocks(m, sc, y, ystride, P, true, true);
  const m15 = v128.load8_splat(MASKS, 2);
  for (let b = 0; b < nb; b++) {
    const xb = <usize>b << 6, sb = <usize>b << 2;
    for (let p = 0; p < P; p++) {
      const x0 = sc.xb + <usize>p * xqRow + xb;
      const d0 = sc.xd + <usize>p * xdRow + sb, s0 = sc.xs + <usize>p * xdRow + sb;
      const y0 = y + <usize>p * yRow;
      let w = m.q + (<usize>b << 6), sp = m.s + (<usize>b << 4), np = m.ns + (<usize>b << 3);
      let yo: usize = 0;
      for (; yo + 32 <= yEnd; yo += 32) {
        let h0 = i32x4.splat(0), l0 = h0, h1 = h0, l1 = h0;
        const w1 = w + groupBytes;
        for (let j: usize = 0; j < 64; j += 16) {
          const v = v128.load(w + j), u = v128.load(w1 + j);
          const vl = v128.and(v, m15), ul = v128.and(u, m15);
          let xh = v128.load32_splat(x0 + j), xl = v128.load32_splat(x0 + j + 4);
          h0 = i32x4.relaxed_dot_i8x16_i7x16_add_s(xh, vl, h0);
          l0 = i32x4.relaxed_dot_i8x16_i7x16_add_s(xl, vl, l0);
          h1 = i32x4.relaxed_dot_i8x16_i7x16_add_s(xh, ul, h1);
          l1 = i32x4.relaxed_dot_i8x16_i7x16_add_s(xl, ul, l1);
          const vh = v128.and(i16x8.shr_u(v, 4), m15), uh = v128.and(i16x8.shr_u(u, 4), m15);
          xh = v128.load32_splat(x0 + j + 8); xl = v128.load32_splat(x0 + j + 12);
          h0 = i32x4.relaxed_dot_i8x16_i7x16_add_s(xh, vh, h0);
          l0 = i32x4.relaxed_dot_i8x16_i7x16_add_s(xl, vh, l0);
          h1 = i32x4.relaxed_dot_i8x16_i7x16_add_s(xh, uh, h1);
          l1 = i32x4.relaxed_dot_i8x16_i7x16_add_s(xl, uh, l1);
        }
        addBlock(y0 + yo, dotSums(h0, l0, np), s0, d0, v128.load(sp));
        addBlock(y0 + yo + 16, dotSums(h1, l1, np + groupSums), s0, d0, v128.load(sp + groupScales));
        w += groupBytes << 1;
        sp += groupScales << 1;
        np += groupSums << 1;
      }
      if (yo < yEnd) {
        let h0 = i32x4.splat(0), l0 = h0;
        for (let j: usize = 0; j < 64; j += 16) {
          const v = v128.load(w + j);
          const vl = v128.and(v, m15), vh = v128.and(i16x8.shr_u(v, 4), m15);
          h0 = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(x0 + j), vl, h0);
          l0 = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(x0 + j + 4), vl, l0);
          h0 = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(x0 + j + 8), vh, h0);
          l0 = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(x0 + j + 12), vh, l0);
        }
        addBlock(y0 + yo, dotSums(h0, l0, np), s0, d0, v128.load(sp));
      }
    }
  }
  endBlocks(m, sc, y, ystride, P, true);
}

/** 256 h + l + 128 sum(n) for four rows (sum(n) the u16s at np). */
// @ts-ignore: decorator
@inline function dotSums(h: v128, l: v128, np: usize): v128 {
  return i32x4.add(i32x4.add(i32x4.shl(h, 8), l), i32x4.shl(v128.load16x4_u(np), 7));
}

export function matmul_q8_simd(m: Mat, sc: QScratch, y: usize, ystride: i32, P: i32): void { matmulBlocks(m, sc, y, ystride, P, false); }
export function matmul_q4_simd(m: Mat, sc: QScratch, y: usize, ystride: i32, P: i32): void {
  if (ASC_FEATURE_RELAXED_SIMD && m.ns != 0 && sc.xb != 0) matmulQ4Dot(m, sc, y, ystride, P);
  else matmulBlocks(m, sc, y, ystride, P, true);
}

// ---- Dispatch ------------------------------------------------------------------------------

/** Y[p] = W X[p] for P positions (X rows xstride floats apart, Y rows ystride), any matrix type.
 *  Quantized types quantize X into sc first, unless `have` says sc already holds these P vectors
 *  quantized (by an earlier call on the same X). Returns whether sc holds X quantized after the
 *  call. */
export function matmul(m: Mat, x: usize, xstride: i32, y: usize, ystride: i32, P: i32, sc: QScratch, have: bool = false): bool {
  const t = m.type;
  const yRow = <usize>ystride << 2;
  if (t == T_F32) {
    let p = 0;
    if (ASC_FEATURE_SIMD) {
      const xRow = <usize>xstride << 2;
      for (; p + 2 <= P; p += 2) {
        const xp = x + <usize>p * xRow, yp = y + <usize>p * yRow;
        matvec2_f32_simd(m.q, xp, xp + xRow, yp, yp + yRow, m.rows, m.cols);
      }
    }
    for (; p < P; p++) matvec_f32(m.q, x + (<usize>(p * xstride) << 2), y + <usize>p * yRow, m.rows, m.cols);
    return have;
  }
  if (!have) quantizeRows(x, xstride, m.cols, P, sc);
  const xqRow = <usize>sc.stride << 1, xdRow = <usize>(sc.stride / QK) << 2;
  const q4 = t == T_Q4_0;
  if (ASC_FEATURE_SIMD) {
    if (q4) matmul_q4_simd(m, sc, y, ystride, P); else matmul_q8_simd(m, sc, y, ystride, P);
  } else {
    for (let p = 0; p < P; p++) {
      if (q4) matvec_q4_ref(m, sc.xq + <usize>p * xqRow, sc.xd + <usize>p * xdRow, y + <usize>p * yRow);
      else matvec_q8_ref(m, sc.xq + <usize>p * xqRow, sc.xd + <usize>p * xdRow, y + <usize>p * yRow);
    }
  }
  if (t == T_I8 && m.zp != 0) {
    for (let p = 0; p < P; p++) zeroPointFix(m, sc.xq + <usize>p * xqRow, sc.xd + <usize>p * xdRow, y + <usize>p * yRow);
  }
  return true;
}

/** y = W x for one position (see matmul). */
export function matvec(m: Mat, x: usize, y: usize, sc: QScratch, have: bool = false): bool {
  return matmul(m, x, 0, y, 0, 1, sc, have);
}

/** I8 with a zero point: real = scale * (q - zp), so subtract zp * scale * sum(x), with x as
 *  quantized, from every row. */
export function zeroPointFix(m: Mat, xq: usize, xd: usize, y: usize): void {
  let sx: f32 = 0;
  const nb = m.cols / QK;
  for (let b = 0; b < nb; b++) {
    let isum: i32 = 0;
    for (let j = 0; j < QK; j++) isum += <i32>load<i16>(xq + (<usize>(b * QK + j) << 1));
    sx += <f32>isum * load<f32>(xd + (<usize>b << 2));
  }
  const corr = <f32>m.zp * load<f32>(m.s) * sx;
  for (let r = 0; r < m.rows; r++) store<f32>(y + (<usize>r << 2), load<f32>(y + (<usize>r << 2)) - corr);
}

/** out[0..cols) = row r of W as f32 (for the embedding lookup). */
export function matRow(m: Mat, r: i32, out: usize): void {
  const cols = m.cols;
  if (m.type == T_F32) {
    memory.copy(out, m.q + (<usize>r * <usize>cols << 2), <usize>cols << 2);
    return;
  }
  const nb = cols / QK;
  const q4 = m.type == T_Q4_0;
  const grouped = r < (m.rows & ~3);
  // in a group, row i's two values of a column pair are int16 lanes 2i and 2i + 1 of each chunk
  const lanes = m.q + <usize>(r & ~3) * <usize>(q4 ? cols >> 1 : cols) + <usize>((r & 3) << 2);
  for (let b = 0; b < nb; b++) {
    const d = load<f32>(m.s + (<usize>scaleIndex(m.rows, nb, r, b) << 2));
    const o = out + (<usize>(b * QK) << 2);
    if (grouped && q4) {
      // chunk c: column pairs 4c + n in nibble n
      const blk = lanes + (<usize>b << 6);
      for (let c = 0; c < 4; c++) {
        const l0 = <i32>load<u16>(blk + (<usize>c << 4)), l1 = <i32>load<u16>(blk + (<usize>c << 4), 2);
        for (let n = 0; n < 4; n++) {
          const k = <usize>((c << 3) + (n << 1)) << 2;
          store<f32>(o + k, d * <f32>(((l0 >> (n << 2)) & 15) - 8));
          store<f32>(o + k, d * <f32>(((l1 >> (n << 2)) & 15) - 8), 4);
        }
      }
    } else if (grouped) {
      // chunk c: column pair 2c in the low bytes (offset 128), 2c + 1 in the high ones
      const blk = lanes + (<usize>b << 7);
      const zp = m.zp;
      for (let c = 0; c < 8; c++) {
        const l0 = <i32>load<u16>(blk + (<usize>c << 4)), l1 = <i32>load<u16>(blk + (<usize>c << 4), 2);
        const k = <usize>(c << 2) << 2;
        store<f32>(o + k, d * <f32>((l0 & 0xff) - 128 - zp));
        store<f32>(o + k, d * <f32>((l1 & 0xff) - 128 - zp), 4);
        store<f32>(o + k, d * <f32>(<i32><i8>(l0 >> 8) - zp), 8);
        store<f32>(o + k, d * <f32>(<i32><i8>(l1 >> 8) - zp), 12);
      }
    } else {
      rowBlockRef(m, r, b, d, o);
    }
  }
}

/** Block b of row r of a quantized W as f32 (scale d) by the plain accessors. */
// @ts-ignore: decorator
@inline function rowBlockRef(m: Mat, r: i32, b: i32, d: f32, o: usize): void {
  for (let j = 0; j < QK; j++) {
    const k = b * QK + j;
    const q = m.type == T_Q4_0 ? q4At(m, r, k) - 8 : q8At(m, r, k) - m.zp;
    store<f32>(o + (<usize>j << 2), d * <f32>q);
  }
}

/** Reference for matRow of a quantized W: every value by the plain accessors. */
export function matRow_ref(m: Mat, r: i32, out: usize): void {
  const nb = m.cols / QK;
  for (let b = 0; b < nb; b++) {
    rowBlockRef(m, r, b, load<f32>(m.s + (<usize>scaleIndex(m.rows, nb, r, b) << 2)), out + (<usize>(b * QK) << 2));
  }
}
