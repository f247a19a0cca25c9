// The relaxed build's self-test (docs/runtime.md, "The relaxed build"). An engine may validate
// relaxed SIMD and still compute an instruction wrongly (Node 20's baseline compiler, Liftoff,
// miscomputes i32x4.relaxed_dot_i8x16_i7x16_add_s), so before a host uses this build it runs
// the very kernels the build uses on fixed inputs whose results are known: small integers,
// whose products and sums are exact, so that fused and unfused multiply-adds give the same bits
// and any other answer is a fault. Returns a bit mask of the failed checks, 0 when all pass.

import { madd, matvec_f32_ref, matvec_f32_simd, matvec2_f32_simd, axpy_f32 } from './kernels/f32';
import { Mat, QScratch, QK, T_Q4_0, repackMatrix, matmul } from './kernels/quant';

export const SELFTEST_MATVEC: i32 = 1; // matvec_f32 (four-row groups) differs from the known sums
export const SELFTEST_MATVEC_TAIL: i32 = 2; // matvec_f32 with row and column tails
export const SELFTEST_MATVEC2: i32 = 4; // matvec2_f32 (two positions)
export const SELFTEST_AXPY: i32 = 8;
export const SELFTEST_MADD: i32 = 16; // one multiply-add is neither a * b + c fused nor unfused
export const SELFTEST_DOT: i32 = 32; // the integer relaxed dot's own sum
export const SELFTEST_Q4: i32 = 64; // the Q4_0 kernel built on it differs from the integer SIMD one

/** Fills [rows, cols] with ((r * 7 + c * 3) % 11) - 5 at W, and x with (c % 5) - 2. */
function fill(W: usize, x: usize, rows: i32, cols: i32): void {
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) store<f32>(W + (<usize>(r * cols + c) << 2), <f32>(((r * 7 + c * 3) % 11) - 5));
  for (let c = 0; c < cols; c++) store<f32>(x + (<usize>c << 2), <f32>((c % 5) - 2));
}

/** sum over r of (r + 1) * y[r]: one number to hold to its known value, plus y against ref. */
function weighted(y: usize, ref: usize, rows: i32): f64 {
  let s: f64 = 0;
  for (let r = 0; r < rows; r++) {
    const v = load<f32>(y + (<usize>r << 2));
    if (v != load<f32>(ref + (<usize>r << 2))) return NaN;
    s += <f64>(r + 1) * <f64>v;
  }
  return s;
}

/** The multiply-add of this engine on one lane: 1 when it fuses (one rounding), 0 when it rounds
 *  the product first, -1 for any other answer. (1 + 2^-12)^2 - (1 + 2^-11) is 2^-24 exactly; the
 *  product rounded to f32 loses that 2^-24. */
export function fusedMadd(): i32 {
  if (!ASC_FEATURE_SIMD) return 0;
  const a: f32 = 1.000244140625;
  const v: f32 = f32x4.extract_lane(madd(f32x4.splat(a), f32x4.splat(a), f32x4.splat(-1.00048828125)), 2);
  if (v == <f32>5.9604644775390625e-8) return 1;
  return v == 0 ? 0 : -1;
}

export function selftest(): i32 {
  if (!ASC_FEATURE_SIMD) return 0;
  let bad = 0;
  const W = heap.alloc(8 * 12 * 4), x = heap.alloc(12 * 4), x1 = heap.alloc(12 * 4);
  const y = heap.alloc(8 * 4), y1 = heap.alloc(8 * 4), ref = heap.alloc(8 * 4), ref1 = heap.alloc(8 * 4);
  fill(W, x, 8, 12);
  matvec_f32_ref(W, x, ref, 8, 12);
  matvec_f32_simd(W, x, y, 8, 12);
  if (weighted(y, ref, 8) != -139) bad |= SELFTEST_MATVEC;
  for (let c = 0; c < 12; c++) store<f32>(x1 + (<usize>c << 2), <f32>(((c * 5) % 7) - 3));
  matvec_f32_ref(W, x1, ref1, 8, 12);
  memory.fill(y, 0, 32);
  matvec2_f32_simd(W, x, x1, y, y1, 8, 12);
  if (weighted(y, ref, 8) != -139 || weighted(y1, ref1, 8) != 146) bad |= SELFTEST_MATVEC2;
  fill(W, x, 5, 7);
  matvec_f32_ref(W, x, ref, 5, 7);
  matvec_f32_simd(W, x, y, 5, 7);
  if (weighted(y, ref, 5) != -104) bad |= SELFTEST_MATVEC_TAIL;
  // y1 += 3 * x over 7 floats (a vector of four, then three scalars)
  for (let c = 0; c < 7; c++) store<f32>(y1 + (<usize>c << 2), <f32>c);
  axpy_f32(3, x, y1, 7);
  let s: f32 = 0;
  for (let c = 0; c < 7; c++) s += <f32>(c + 1) * load<f32>(y1 + (<usize>c << 2));
  if (s != 85) bad |= SELFTEST_AXPY;
  const m: f32 = f32x4.extract_lane(madd(f32x4.splat(2), f32x4.splat(3), f32x4.splat(4)), 1);
  if (m != 10 || fusedMadd() < 0) bad |= SELFTEST_MADD;
  if (dotWrong()) bad |= SELFTEST_DOT;
  if (q4Wrong()) bad |= SELFTEST_Q4;
  heap.free(W); heap.free(x); heap.free(x1); heap.free(y); heap.free(y1); heap.free(ref); heap.free(ref1);
  return bad;
}

/** A Q4_0 matrix [13, 64] (three groups of four rows, so both the two-group and the one-group
 *  pass, and a row past them) from fixed nibbles, scale 1, repacked at W; with the nibble sums
 *  (ns != 0) matmul takes the relaxed dot kernel, without them the SIMD build's integer one. */
function q4Mat(W: usize, ns: usize): Mat {
  const rows = 13, cols = 64, nb = cols / QK;
  for (let i = 0; i < rows * nb; i++) {
    const blk = W + <usize>(i * 18);
    store<u16>(blk, 0x3c00);
    for (let j = 0; j < 16; j++) store<u8>(blk + 2 + <usize>j, <u8>((i * 29 + j * 53 + 7) % 256));
  }
  const m = changetype<Mat>(heap.alloc(offsetof<Mat>()));
  m.type = T_Q4_0; m.rows = rows; m.cols = cols; m.q = W; m.zp = 0; m.ns = ns;
  m.s = heap.alloc(<usize>(rows * nb) << 2);
  repackMatrix(T_Q4_0, W, m.s, rows, cols, 1, ns);
  return m;
}

/** Whether the relaxed build's Q4_0 kernel (the integer relaxed dot on split activations) gives
 *  other bits than the SIMD build's integer kernel, in this build, for two positions of values
 *  that use the whole int16 range. Both scale and add in f32 by the same steps, so equal integer
 *  sums give equal bits, on a fused engine or not. */
function q4Wrong(): bool {
  if (!ASC_FEATURE_RELAXED_SIMD) return false;
  const rows = 13, cols = 64, P = 2, nb = cols / QK;
  const W0 = heap.alloc(rows * nb * 18), W1 = heap.alloc(rows * nb * 18), ns = heap.alloc(rows * nb * 2);
  const a = q4Mat(W0, ns), b = q4Mat(W1, 0);
  const x = heap.alloc(P * cols * 4), y0 = heap.alloc(P * rows * 4), y1 = heap.alloc(P * rows * 4);
  for (let i = 0; i < P * cols; i++) store<f32>(x + (<usize>i << 2), <f32>(((i * 37) % 23) - 11) * <f32>0.37);
  const sc = changetype<QScratch>(heap.alloc(offsetof<QScratch>()));
  sc.stride = cols;
  sc.xq = heap.alloc(P * cols * 2); sc.xb = heap.alloc(P * cols * 2);
  sc.xd = heap.alloc(P * nb * 4); sc.xs = heap.alloc(P * nb * 4);
  matmul(a, x, cols, y0, rows, P, sc);
  matmul(b, x, cols, y1, rows, P, sc);
  let wrong = false;
  for (let i = 0; i < P * rows; i++) {
    if (load<u32>(y0 + (<usize>i << 2)) != load<u32>(y1 + (<usize>i << 2))) wrong = true;
  }
  heap.free(sc.xq); heap.free(sc.xb); heap.free(sc.xd); heap.free(sc.xs); heap.free(changetype<usize>(sc));
  heap.free(a.s); heap.free(b.s); heap.free(changetype<usize>(a)); heap.free(changetype<usize>(b));
  heap.free(W0); heap.free(W1); heap.free(ns); heap.free(x); heap.free(y0); heap.free(y1);
  return wrong;
}

/** Whether the relaxed integer dot (i8 times 7-bit, four products per i32 lane, plus an
 *  accumulator) misses the known sum -4384 of 64 fixed products: the instruction alone, before
 *  the Q4_0 kernel built on it is checked against the integer SIMD kernel. */
function dotWrong(): bool {
  if (!ASC_FEATURE_RELAXED_SIMD) return false;
  const a = heap.alloc(64), b = heap.alloc(64);
  for (let i = 0; i < 64; i++) {
    store<i8>(a + <usize>i, <i8>(((i * 37) % 256) - 128));
    store<u8>(b + <usize>i, <u8>((i * 53) % 128));
  }
  let acc = i32x4.splat(0);
  for (let i = 0; i < 64; i += 16) acc = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(a + <usize>i), v128.load(b + <usize>i), acc);
  heap.free(a); heap.free(b);
  const sum = (i32x4.extract_lane(acc, 0) + i32x4.extract_lane(acc, 1)) + (i32x4.extract_lane(acc, 2) + i32x4.extract_lane(acc, 3));
  return sum != -4384;
}
