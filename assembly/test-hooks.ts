// Test hooks: the kernels and their scalar references, exported for the tests that tie them
// together (host/test/kernels.test.ts, quant.test.ts). Compiled only into the test builds
// (build/itera.test.wasm, build/itera-scalar.test.wasm: the release and scalar builds' flags with
// this file as a second entry); the release modules do not carry them.

import { matvec_f32_ref, matvec_f32_simd, matvec2_f32_simd } from './kernels/f32';
import { Mat, QScratch, QK, T_Q4_0, T_I8, repackMatrix, quantizeRows, matvec_q8_ref, matvec_q4_ref, matmul, zeroPointFix, matRow, matRow_ref } from './kernels/quant';
import { erf, exp4, silu4, softplus4, softplusMean, softplusMean_ref, gelu4, silu, softplus, gelu } from './kernels/math';
import { Session } from './model';
import { drawBlocks } from './sampling';
import { convSilu, convSilu_ref, gateY, gateY_ref, scanStep, scanStep_ref } from './kernels/ssm';

export function test_matvec_f32_ref(W: usize, x: usize, y: usize, rows: i32, cols: i32): void { matvec_f32_ref(W, x, y, rows, cols); }
export function test_matvec_f32(W: usize, x: usize, y: usize, rows: i32, cols: i32): void {
  if (ASC_FEATURE_SIMD) matvec_f32_simd(W, x, y, rows, cols); else matvec_f32_ref(W, x, y, rows, cols);
}
/** Two positions at once (the prompt path): y0 = W x0, y1 = W x1. */
export function test_matvec2_f32(W: usize, x0: usize, x1: usize, y0: usize, y1: usize, rows: i32, cols: i32): void {
  if (ASC_FEATURE_SIMD) matvec2_f32_simd(W, x0, x1, y0, y1, rows, cols);
  else { matvec_f32_ref(W, x0, y0, rows, cols); matvec_f32_ref(W, x1, y1, rows, cols); }
}
export function test_erf(x: f64): f64 { return erf(x); }
/** Elementwise hooks: f(x[i]) for n floats, by the SIMD function (4 lanes at a time) where the build
 *  has it, else by the scalar one; which: 0 exp, 1 SiLU, 2 softplus, 3 GELU. Scalar references below. */
export function test_elementwise(which: i32, x: usize, y: usize, n: i32): void {
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    for (; i + 4 <= n; i += 4) {
      const o = <usize>i << 2;
      const v = v128.load(x + o);
      v128.store(y + o, which == 0 ? exp4(v) : which == 1 ? silu4(v) : which == 2 ? softplus4(v) : gelu4(v));
    }
  }
  test_elementwise_ref(which, x + (<usize>i << 2), y + (<usize>i << 2), n - i);
}
export function test_elementwise_ref(which: i32, x: usize, y: usize, n: i32): void {
  for (let i = 0; i < n; i++) {
    const o = <usize>i << 2;
    const v = load<f32>(x + o);
    store<f32>(y + o, which == 0 ? Mathf.exp(v) : which == 1 ? silu(v) : which == 2 ? softplus(v) : gelu(v));
  }
}

/** mean_i softplus(x[i] + b[i]): the build's path (useRef 0) or the scalar one. */
export function test_softplus_mean(x: usize, b: usize, n: i32, useRef: i32): f32 {
  return useRef != 0 ? softplusMean_ref(x, b, n) : softplusMean(x, b, n);
}

/** The hooks' matrix: W (GGUF Q8_0 / Q4_0 blocks, or int8 for I8 with scale 1 and zero point zp)
 *  repacked in place into a Mat; free with freeHookMat. */
function hookMat(type: i32, W: usize, rows: i32, cols: i32, zp: i32, sums: bool = true): Mat {
  const nb = cols / QK;
  const m = changetype<Mat>(heap.alloc(offsetof<Mat>()));
  m.type = type; m.rows = rows; m.cols = cols; m.q = W; m.zp = zp;
  m.s = heap.alloc(<usize>(rows * nb) << 2);
  m.ns = ASC_FEATURE_RELAXED_SIMD && type == T_Q4_0 && sums ? heap.alloc(<usize>(rows * nb) << 1) : 0;
  repackMatrix(type, W, m.s, rows, cols, 1, m.ns);
  if (type == T_I8) for (let i = 0; i < rows * nb; i++) store<f32>(m.s + (<usize>i << 2), 1);
  return m;
}
function freeHookMat(m: Mat): void { if (m.ns != 0) heap.free(m.ns); heap.free(m.s); heap.free(changetype<usize>(m)); }

/** Embedding-row hook: W as for test_matvec_quant (repacked in place, scales 1 for I8); out
 *  receives every row as f32, [rows, cols], by matRow (useRef 0) or its reference (1). */
export function test_mat_rows(type: i32, W: usize, rows: i32, cols: i32, out: usize, useRef: i32, zp: i32): void {
  const m = hookMat(type, W, rows, cols, zp);
  for (let r = 0; r < rows; r++) {
    const o = out + (<usize>(r * cols) << 2);
    if (useRef) matRow_ref(m, r, o); else matRow(m, r, o);
  }
  freeHookMat(m);
}

/** Quantized matrix hook: W holds GGUF blocks (Q8_0 or Q4_0) or int8 (I8, scale 1, zero point
 *  zp) for [rows, cols]; it is repacked in place (call once per copy). x holds P vectors of cols
 *  values, y receives P vectors of rows. useRef 1 runs the scalar reference one position at a
 *  time, 0 the build's kernel on all P at once, 2 the same without the nibble sums (so that the
 *  relaxed build's Q4_0 falls back to the SIMD build's integer kernel: its f32 steps are the relaxed
 *  dot kernel's, so equal bits mean equal integer sums). */
export function test_matvec_quant(type: i32, W: usize, rows: i32, cols: i32, x: usize, y: usize, useRef: i32, zp: i32, P: i32): void {
  const nb = cols / QK;
  const m = hookMat(type, W, rows, cols, zp, useRef != 2);
  const sc = changetype<QScratch>(heap.alloc(offsetof<QScratch>()));
  sc.stride = cols;
  sc.xq = heap.alloc(<usize>(P * cols) << 1);
  sc.xd = heap.alloc(<usize>(P * nb) << 2);
  sc.xs = heap.alloc(<usize>(P * nb) << 2);
  sc.xb = ASC_FEATURE_RELAXED_SIMD ? heap.alloc(<usize>(P * cols) << 1) : 0;
  if (useRef == 1) {
    quantizeRows(x, cols, cols, P, sc);
    for (let p = 0; p < P; p++) {
      const xq = sc.xq + (<usize>(p * cols) << 1), xd = sc.xd + (<usize>(p * nb) << 2), yp = y + (<usize>(p * rows) << 2);
      if (type == T_Q4_0) matvec_q4_ref(m, xq, xd, yp); else matvec_q8_ref(m, xq, xd, yp);
      if (type == T_I8 && zp != 0) zeroPointFix(m, xq, xd, yp);
    }
  } else {
    matmul(m, x, cols, y, rows, P, sc);
  }
  if (sc.xb != 0) heap.free(sc.xb);
  heap.free(sc.xq); heap.free(sc.xd); heap.free(sc.xs); heap.free(changetype<usize>(sc)); freeHookMat(m);
}

/** The conv step (kernels/ssm.ts) on a ring window: mode 0 the build's path, 1 the build's path
 *  without the K = 4 straight-line code, 2 the scalar reference. Updates win in place. */
export function test_conv_silu(win: usize, ring: i32, taps: usize, bias: usize, a: usize, sv: usize, di: i32, K: i32, mode: i32): void {
  if (mode == 2) convSilu_ref(win, ring, taps, bias, a, sv, di, K);
  else convSilu(win, ring, taps, bias, a, sv, di, K, mode == 0);
}
/** The scan step on z in place: useRef 0 the build's path, 1 the scalar reference. */
export function test_scan_step(z: usize, aNeg: usize, bs: usize, delta: f32, N: i32, useRef: i32): void {
  if (useRef != 0) scanStep_ref(z, aNeg, bs, delta, N); else scanStep(z, aNeg, bs, delta, N);
}
/** The gated read-out: mode 0 the build's path, 1 without the N = 8 code, 2 the scalar reference. */
export function test_gate_y(y: usize, Ct: usize, z: usize, N: i32, D: usize, s: usize, g: usize, n: i32, mode: i32): void {
  if (mode == 2) gateY_ref(y, Ct, z, N, D, s, g, n);
  else gateY(y, Ct, z, N, D, s, g, n, mode == 0);
}


/** The sampler's weights (i32 per token) after a draw without top-k: the buffer sample() left. */
export function test_sampler_weights(s: usize): usize { return changetype<Session>(s).probs; }
/** Version 3's block walk over the weights and block sums the last draw without top-p left. */
export function test_draw_blocks(s: usize, r: f64): i32 {
  const ss = changetype<Session>(s);
  return drawBlocks(ss.probs, ss.idx, ss.model.V, <u64>r);
}
