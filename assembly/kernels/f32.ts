// FP32 matrix-vector kernels.
//
// Layout: a Linear weight W of shape [rows, cols] is row-major, as PyTorch stores it:
// W[r][c] at W + (r * cols + c) * 4. y = W x computes rows outputs from cols inputs.
//
// Each kernel has a plain scalar reference (`*_ref`) beside the SIMD version; the SIMD
// version is compiled only where the build enables SIMD (ASC_FEATURE_SIMD), so the scalar
// fallback build (for engines without SIMD, e.g. JavaScriptCore without its JIT) runs the
// reference. Tests compare the two through the exported test hooks in index.ts.
//
// The default build uses baseline SIMD only: f32x4 mul then add (no fused or relaxed ops), so
// every engine computes the same bits. The opt-in relaxed build (asconfig target `relaxed`)
// turns each multiply-add of the SIMD kernels into f32x4.relaxed_madd through `madd` below: one
// instruction, fused (one rounding) where the engine's CPU has FMA, else mul then add, so its
// bits may differ between hosts (docs/runtime.md).

/** a * b + c in four lanes: f32x4.relaxed_madd in the relaxed build, else mul then add (the same
 *  bits as `f32x4.add(c, f32x4.mul(a, b))`: IEEE addition is commutative). */
// @ts-ignore: decorator
@inline export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

/** y[r] = sum_c W[r][c] * x[c], summed left to right. The reference for every f32 matvec. */
export function matvec_f32_ref(W: usize, x: usize, y: usize, rows: i32, cols: i32): void {
  for (let r = 0; r < rows; r++) {
    const row = W + (<usize>r * <usize>cols << 2);
    let acc: f32 = 0;
    for (let c = 0; c < cols; c++) {
      acc += load<f32>(row + (<usize>c << 2)) * load<f32>(x + (<usize>c << 2));
    }
    store<f32>(y + (<usize>r << 2), acc);
  }
}

// @ts-ignore: decorator
@inline function hsum4(a: v128, b: v128, c: v128, d: v128): v128 {
  // [sum a, sum b, sum c, sum d]
  const ab = f32x4.add(f32x4.shuffle(a, b, 0, 4, 1, 5), f32x4.shuffle(a, b, 2, 6, 3, 7));
  const cd = f32x4.add(f32x4.shuffle(c, d, 0, 4, 1, 5), f32x4.shuffle(c, d, 2, 6, 3, 7));
  return f32x4.add(f32x4.shuffle(ab, cd, 0, 1, 4, 5), f32x4.shuffle(ab, cd, 2, 3, 6, 7));
}

/** SIMD y = W x: four rows at a time, four lanes of the inner dimension per step, one accumulator
 *  per row (four independent add chains; two per row spilled registers in V8's code and measured
 *  13% slower), the four rows' lanes summed at the end. */
export function matvec_f32_simd(W: usize, x: usize, y: usize, rows: i32, cols: i32): void {
  const c4 = cols & ~3;
  const stride = <usize>cols << 2;
  let r = 0;
  if (ASC_FEATURE_RELAXED_SIMD) r = rows8(W, x, y, rows, cols);
  for (; r + 4 <= rows; r += 4) {
    const w0 = W + <usize>r * stride;
    const w1 = w0 + stride;
    const w2 = w1 + stride;
    const w3 = w2 + stride;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    for (let c = 0; c < c4; c += 4) {
      const o = <usize>c << 2;
      const xa = v128.load(x + o);
      a0 = madd(v128.load(w0 + o), xa, a0);
      a1 = madd(v128.load(w1 + o), xa, a1);
      a2 = madd(v128.load(w2 + o), xa, a2);
      a3 = madd(v128.load(w3 + o), xa, a3);
    }
    let out = hsum4(a0, a1, a2, a3);
    if (c4 < cols) out = f32x4.add(out, tail4(w0, w1, w2, w3, x, c4, cols));
    v128.store(y + (<usize>r << 2), out);
  }
  for (; r < rows; r++) {
    const wr = W + <usize>r * stride;
    let a = f32x4.splat(0);
    for (let c = 0; c < c4; c += 4) {
      const o = <usize>c << 2;
      a = madd(v128.load(wr + o), v128.load(x + o), a);
    }
    let s = f32x4.extract_lane(a, 0) + f32x4.extract_lane(a, 1) + (f32x4.extract_lane(a, 2) + f32x4.extract_lane(a, 3));
    for (let c = c4; c < cols; c++) {
      const o = <usize>c << 2;
      s += load<f32>(wr + o) * load<f32>(x + o);
    }
    store<f32>(y + (<usize>r << 2), s);
  }
}

/** y = W x for the first rows & ~7 rows (returned; the caller finishes the rest): eight rows at a
 *  time, one accumulator each, each row's lanes summed as matvec_f32_simd's four-row steps sum
 *  them. In the relaxed build each accumulator step is a fused multiply-add, whose latency (about
 *  four cycles on x64, against two to three for an add) bounds a chain: on the AMD EPYC we measure
 *  on, four independent chains of f32x4.relaxed_madd ran at 17 G multiply-adds/s, eight at 30 and
 *  ten at 31 (mul + add: 34 with four). One load of x serves eight rows. The eight row pointers
 *  are taken once: computing them from one base at every step measured 5-10% slower. The SIMD
 *  build keeps four rows: eight (the same bits) measured 6-10% faster there on Node 24 but 4-7%
 *  slower on Node 20 (V8 11.3), and the default build serves every engine alike. */
function rows8(W: usize, x: usize, y: usize, rows: i32, cols: i32): i32 {
  const c4 = cols & ~3;
  const stride = <usize>cols << 2;
  let r = 0;
  for (; r + 8 <= rows; r += 8) {
    const w0 = W + <usize>r * stride;
    const w4 = w0 + (stride << 2);
    const w1 = w0 + stride, w2 = w1 + stride, w3 = w2 + stride, w5 = w4 + stride, w6 = w5 + stride, w7 = w6 + stride;
    let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    for (let o: usize = 0, e = <usize>c4 << 2; o < e; o += 16) {
      const xa = v128.load(x + o);
      a0 = madd(v128.load(w0 + o), xa, a0);
      a1 = madd(v128.load(w1 + o), xa, a1);
      a2 = madd(v128.load(w2 + o), xa, a2);
      a3 = madd(v128.load(w3 + o), xa, a3);
      a4 = madd(v128.load(w4 + o), xa, a4);
      a5 = madd(v128.load(w5 + o), xa, a5);
      a6 = madd(v128.load(w6 + o), xa, a6);
      a7 = madd(v128.load(w7 + o), xa, a7);
    }
    let lo = hsum4(a0, a1, a2, a3), hi = hsum4(a4, a5, a6, a7);
    if (c4 < cols) {
      lo = f32x4.add(lo, tail4(w0, w1, w2, w3, x, c4, cols));
      hi = f32x4.add(hi, tail4(w4, w5, w6, w7, x, c4, cols));
    }
    v128.store(y + (<usize>r << 2), lo);
    v128.store(y + (<usize>r << 2), hi, 16);
  }
  return r;
}

/** The column tail [c4, cols) of rows w0..w3 as four lanes, each summed left to right. */
// @ts-ignore: decorator
@inline function tail4(w0: usize, w1: usize, w2: usize, w3: usize, x: usize, c4: i32, cols: i32): v128 {
  let t0: f32 = 0, t1: f32 = 0, t2: f32 = 0, t3: f32 = 0;
  for (let c = c4; c < cols; c++) {
    const o = <usize>c << 2;
    const xs = load<f32>(x + o);
    t0 += load<f32>(w0 + o) * xs;
    t1 += load<f32>(w1 + o) * xs;
    t2 += load<f32>(w2 + o) * xs;
    t3 += load<f32>(w3 + o) * xs;
  }
  return f32x4(t0, t1, t2, t3);
}

/** SIMD y0 = W x0 and y1 = W x1 (two positions of a prompt): the same four-row steps as
 *  matvec_f32_simd, each position's four accumulators the same add chains in the same order (so
 *  the same bits), eight chains in flight instead of four: the add latency, which bounds one
 *  position, is hidden, and each weight vector is loaded once for both. */
export function matvec2_f32_simd(W: usize, x0: usize, x1: usize, y0: usize, y1: usize, rows: i32, cols: i32): void {
  const c4 = cols & ~3;
  if (c4 < cols) {
    // rows with a scalar tail: one position at a time
    matvec_f32_simd(W, x0, y0, rows, cols);
    matvec_f32_simd(W, x1, y1, rows, cols);
    return;
  }
  const stride = <usize>cols << 2;
  let r = 0;
  for (; r + 4 <= rows; r += 4) {
    const w0 = W + <usize>r * stride;
    const w1 = w0 + stride;
    const w2 = w1 + stride;
    const w3 = w2 + stride;
    let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
    let b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    for (let c = 0; c < c4; c += 4) {
      const o = <usize>c << 2;
      const xa = v128.load(x0 + o), xb = v128.load(x1 + o);
      let w = v128.load(w0 + o);
      a0 = madd(w, xa, a0);
      b0 = madd(w, xb, b0);
      w = v128.load(w1 + o);
      a1 = madd(w, xa, a1);
      b1 = madd(w, xb, b1);
      w = v128.load(w2 + o);
      a2 = madd(w, xa, a2);
      b2 = madd(w, xb, b2);
      w = v128.load(w3 + o);
      a3 = madd(w, xa, a3);
      b3 = madd(w, xb, b3);
    }
    v128.store(y0 + (<usize>r << 2), hsum4(a0, a1, a2, a3));
    v128.store(y1 + (<usize>r << 2), hsum4(b0, b1, b2, b3));
  }
  if (r < rows) {
    const tail = <usize>r * stride, yt = <usize>r << 2;
    matvec_f32_simd(W + tail, x0, y0 + yt, rows - r, cols);
    matvec_f32_simd(W + tail, x1, y1 + yt, rows - r, cols);
  }
}

/** The f32 matvec the model uses: SIMD where the build has it, else the reference. */
// @ts-ignore: decorator
@inline export function matvec_f32(W: usize, x: usize, y: usize, rows: i32, cols: i32): void {
  if (ASC_FEATURE_SIMD) {
    matvec_f32_simd(W, x, y, rows, cols);
  } else {
    matvec_f32_ref(W, x, y, rows, cols);
  }
}

/** y[i] += a * x[i] for n floats. */
export function axpy_f32(a: f32, x: usize, y: usize, n: i32): void {
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    const av = f32x4.splat(a);
    for (; i + 4 <= n; i += 4) {
      const o = <usize>i << 2;
      v128.store(y + o, madd(av, v128.load(x + o), v128.load(y + o)));
    }
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(y + o, load<f32>(y + o) + a * load<f32>(x + o));
  }
}

/** y[i] += x[i] for n floats. */
export function add_f32(x: usize, y: usize, n: i32): void {
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    for (; i + 4 <= n; i += 4) {
      const o = <usize>i << 2;
      v128.store(y + o, f32x4.add(v128.load(y + o), v128.load(x + o)));
    }
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(y + o, load<f32>(y + o) + load<f32>(x + o));
  }
}
