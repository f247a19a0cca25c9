// The selective-scan block's per-position kernels: the causal conv with SiLU, the scan step, and
// the read-out gated by SiLU(g). Each has a fast path (f32x4 lanes where the build has SIMD, and
// straight-line code for the shipped shapes: K = 4, N = 8; `special = false` turns those off so
// the tests can hold them to the general loops) and a plain scalar reference beside it (`_ref`),
// which the scalar build runs and which also finishes the lanes past the last multiple of four.
// The SIMD lanes sum in the reference's order; their activations (silu4, exp4) are within a few
// ulp of the scalar ones (kernels/math.ts), so the SIMD build equals the reference within that.

import { exp4, silu, silu4 } from './math';
import { madd } from './f32';

// @ts-ignore: decorator
@inline function fat(p: usize, i: i32): f32 { return load<f32>(p + (<usize>i << 2)); }
// @ts-ignore: decorator
@inline function fset(p: usize, i: i32, v: f32): void { store<f32>(p + (<usize>i << 2), v); }

/** sv[c] = SiLU(bias[c] + sum_j taps[j][c] * a_{t-K+1+j}[c]); win holds a_{t-K+1}..a_{t-1} as a
 *  ring of K-1 slots of di values whose oldest is slot `ring`. Then a_t replaces the oldest. */
export function convSilu(win: usize, ring: i32, taps: usize, bias: usize, a: usize, sv: usize, di: i32, K: i32, special: bool = true): void {
  let c = 0;
  const slot = <usize>di << 2;
  if (ASC_FEATURE_SIMD && special && K == 4) {
    // the width of every model we ship: the three window slots' addresses taken once
    const w0 = win + <usize>ring * slot, w1 = win + <usize>(ring == 2 ? 0 : ring + 1) * slot, w2 = win + <usize>(ring == 0 ? 2 : ring - 1) * slot;
    const t1 = taps + slot, t2 = t1 + slot, t3 = t2 + slot;
    for (; c + 4 <= di; c += 4) {
      const o = <usize>c << 2;
      let acc = f32x4.add(v128.load(bias + o), f32x4.mul(v128.load(taps + o), v128.load(w0 + o)));
      acc = madd(v128.load(t1 + o), v128.load(w1 + o), acc);
      acc = madd(v128.load(t2 + o), v128.load(w2 + o), acc);
      const at = v128.load(a + o);
      acc = madd(v128.load(t3 + o), at, acc);
      v128.store(sv + o, silu4(acc));
      v128.store(w0 + o, at);
    }
  }
  if (ASC_FEATURE_SIMD) {
    for (; c + 4 <= di; c += 4) {
      const o = <usize>c << 2;
      let acc = v128.load(bias + o);
      let r = ring;
      for (let j = 0; j < K - 1; j++) {
        acc = madd(v128.load(taps + <usize>j * slot + o), v128.load(win + <usize>r * slot + o), acc);
        if (++r == K - 1) r = 0;
      }
      const at = v128.load(a + o);
      acc = madd(v128.load(taps + <usize>(K - 1) * slot + o), at, acc);
      v128.store(sv + o, silu4(acc));
      if (K > 1) v128.store(win + <usize>ring * slot + o, at);
    }
  }
  convSiluLanes(win, ring, taps, bias, a, sv, di, K, c);
}

/** The plain reference of convSilu: every channel one at a time, in the order the SIMD lanes
 *  sum (bias, then the window's taps oldest first, then a_t's tap). */
export function convSilu_ref(win: usize, ring: i32, taps: usize, bias: usize, a: usize, sv: usize, di: i32, K: i32): void {
  convSiluLanes(win, ring, taps, bias, a, sv, di, K, 0);
}

function convSiluLanes(win: usize, ring: i32, taps: usize, bias: usize, a: usize, sv: usize, di: i32, K: i32, c0: i32): void {
  for (let c = c0; c < di; c++) {
    let acc = fat(bias, c);
    let r = ring;
    for (let j = 0; j < K - 1; j++) {
      acc += fat(taps, j * di + c) * fat(win, r * di + c);
      if (++r == K - 1) r = 0;
    }
    acc += fat(taps, (K - 1) * di + c) * fat(a, c);
    fset(sv, c, silu(acc));
    if (K > 1) fset(win, ring * di + c, fat(a, c));
  }
}

/** z[n] = exp(delta * A[n]) * z[n] + delta * bs[n] for the N state values. */
export function scanStep(z: usize, aNeg: usize, bs: usize, delta: f32, N: i32): void {
  let n = 0;
  if (ASC_FEATURE_SIMD) {
    const dv = f32x4.splat(delta);
    for (; n + 4 <= N; n += 4) {
      const o = <usize>n << 2;
      v128.store(z + o, f32x4.add(f32x4.mul(exp4(f32x4.mul(dv, v128.load(aNeg + o))), v128.load(z + o)), f32x4.mul(dv, v128.load(bs + o))));
    }
  }
  scanLanes(z, aNeg, bs, delta, N, n);
}

/** The plain reference of scanStep: one state value at a time. */
export function scanStep_ref(z: usize, aNeg: usize, bs: usize, delta: f32, N: i32): void {
  scanLanes(z, aNeg, bs, delta, N, 0);
}

function scanLanes(z: usize, aNeg: usize, bs: usize, delta: f32, N: i32, n0: i32): void {
  for (let n = n0; n < N; n++) fset(z, n, Mathf.exp(delta * fat(aNeg, n)) * fat(z, n) + delta * fat(bs, n));
}

/** y[c] = (sum_n Ct[n][c] z[n] + D[c] s[c]) * SiLU(g[c]) over n channels, the sum over n in
 *  order. */
export function gateY(y: usize, Ct: usize, z: usize, N: i32, D: usize, s: usize, g: usize, n: i32, special: bool = true): void {
  let c = 0;
  const row = <usize>n << 2;
  if (ASC_FEATURE_SIMD && special && N == 8) {
    // the state size of every model we ship: z's eight values splatted once per call
    const z0 = v128.load32_splat(z), z1 = v128.load32_splat(z, 4), z2 = v128.load32_splat(z, 8), z3 = v128.load32_splat(z, 12);
    const z4 = v128.load32_splat(z, 16), z5 = v128.load32_splat(z, 20), z6 = v128.load32_splat(z, 24), z7 = v128.load32_splat(z, 28);
    for (; c + 4 <= n; c += 4) {
      const p = Ct + (<usize>c << 2);
      let acc = f32x4.mul(v128.load(p), z0);
      acc = madd(v128.load(p + row), z1, acc);
      acc = madd(v128.load(p + 2 * row), z2, acc);
      acc = madd(v128.load(p + 3 * row), z3, acc);
      acc = madd(v128.load(p + 4 * row), z4, acc);
      acc = madd(v128.load(p + 5 * row), z5, acc);
      acc = madd(v128.load(p + 6 * row), z6, acc);
      acc = madd(v128.load(p + 7 * row), z7, acc);
      const o = <usize>c << 2;
      const yc = f32x4.add(acc, f32x4.mul(v128.load(D + o), v128.load(s + o)));
      v128.store(y + o, f32x4.mul(yc, silu4(v128.load(g + o))));
    }
  }
  if (ASC_FEATURE_SIMD) {
    for (; c + 4 <= n; c += 4) {
      const o = <usize>c << 2;
      let acc = f32x4.mul(v128.load(Ct + o), v128.load32_splat(z));
      for (let k = 1; k < N; k++) acc = madd(v128.load(Ct + <usize>k * row + o), v128.load32_splat(z + (<usize>k << 2)), acc);
      const yc = f32x4.add(acc, f32x4.mul(v128.load(D + o), v128.load(s + o)));
      v128.store(y + o, f32x4.mul(yc, silu4(v128.load(g + o))));
    }
  }
  gateLanes(y, Ct, z, N, D, s, g, n, c);
}

/** The plain reference of gateY: one channel at a time, the sum over the state in order. */
export function gateY_ref(y: usize, Ct: usize, z: usize, N: i32, D: usize, s: usize, g: usize, n: i32): void {
  gateLanes(y, Ct, z, N, D, s, g, n, 0);
}

function gateLanes(y: usize, Ct: usize, z: usize, N: i32, D: usize, s: usize, g: usize, n: i32, c0: i32): void {
  for (let c = c0; c < n; c++) {
    let acc = fat(Ct, c) * fat(z, 0);
    for (let k = 1; k < N; k++) acc += fat(Ct, k * n + c) * fat(z, k);
    const yc = acc + fat(D, c) * fat(s, c);
    fset(y, c, yc * silu(fat(g, c)));
  }
}
