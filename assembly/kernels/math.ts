// Elementwise functions and LayerNorm, as ../shared/spec/architecture.md defines them.
// All of them are computed by the module's own code (AssemblyScript's Math is compiled into
// the module, not imported), so every engine gives the same bits.

import { madd } from './f32';

/** erf(x), Abramowitz & Stegun 7.1.26 evaluated in f64: |error| < 1.5e-7 over the real line. */
export function erf(x: f64): f64 {
  const ax = Math.abs(x);
  const t = 1.0 / (1.0 + 0.3275911 * ax);
  const poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  const r = 1.0 - poly * Math.exp(-ax * ax);
  return x < 0 ? -r : r;
}

/** Exact GELU: 0.5 x (1 + erf(x / sqrt 2)). */
// @ts-ignore: decorator
@inline export function gelu(x: f32): f32 {
  const xd = <f64>x;
  return <f32>(0.5 * xd * (1.0 + erf(xd * 0.7071067811865476)));
}

/** SiLU(x) = x * sigmoid(x). */
// @ts-ignore: decorator
@inline export function silu(x: f32): f32 {
  return x / (<f32>1.0 + Mathf.exp(-x));
}

/** softplus(x) = log(1 + exp(x)); x itself where x > 20, as PyTorch does. */
// @ts-ignore: decorator
@inline export function softplus(x: f32): f32 {
  return x > <f32>20.0 ? x : Mathf.log1p(Mathf.exp(x));
}

/** out = (x - mean) / sqrt(var + eps) * w + b over n values, population variance. out may equal x.
 *  The reference sums in f64; the SIMD build sums 4 lanes in f32 (n is small: 64 to a few hundred). */
export function layernorm(x: usize, w: usize, b: usize, out: usize, n: i32, eps: f32): void {
  if (ASC_FEATURE_SIMD) {
    if ((n & 3) == 0) {
      layernorm_simd(x, w, b, out, n, eps);
      return;
    }
  }
  layernorm_ref(x, w, b, out, n, eps);
}

export function layernorm_ref(x: usize, w: usize, b: usize, out: usize, n: i32, eps: f32): void {
  let sum: f64 = 0;
  for (let i = 0; i < n; i++) sum += <f64>load<f32>(x + (<usize>i << 2));
  const mean = sum / <f64>n;
  let sq: f64 = 0;
  for (let i = 0; i < n; i++) {
    const dv = <f64>load<f32>(x + (<usize>i << 2)) - mean;
    sq += dv * dv;
  }
  const inv = 1.0 / Math.sqrt(sq / <f64>n + <f64>eps);
  for (let i = 0; i < n; i++) {
    const o = <usize>i << 2;
    const v = <f32>((<f64>load<f32>(x + o) - mean) * inv);
    store<f32>(out + o, v * load<f32>(w + o) + load<f32>(b + o));
  }
}

function layernorm_simd(x: usize, w: usize, b: usize, out: usize, n: i32, eps: f32): void {
  let acc = f32x4.splat(0);
  for (let i = 0; i < n; i += 4) acc = f32x4.add(acc, v128.load(x + (<usize>i << 2)));
  const mean = ((f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1)) + (f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3))) / <f32>n;
  const mv = f32x4.splat(mean);
  let sq = f32x4.splat(0);
  for (let i = 0; i < n; i += 4) {
    const dv = f32x4.sub(v128.load(x + (<usize>i << 2)), mv);
    sq = f32x4.add(sq, f32x4.mul(dv, dv));
  }
  const v = ((f32x4.extract_lane(sq, 0) + f32x4.extract_lane(sq, 1)) + (f32x4.extract_lane(sq, 2) + f32x4.extract_lane(sq, 3))) / <f32>n;
  const inv = f32x4.splat(<f32>1.0 / Mathf.sqrt(v + eps));
  for (let i = 0; i < n; i += 4) {
    const o = <usize>i << 2;
    const y = f32x4.mul(f32x4.sub(v128.load(x + o), mv), inv);
    v128.store(out + o, f32x4.add(f32x4.mul(y, v128.load(w + o)), v128.load(b + o)));
  }
}

// ---- f32x4 versions (SIMD builds only). Within a few ulp of the scalar ones above; the tests
// hold them to that against the scalar functions. Their polynomial steps p * r + c go through
// madd (kernels/f32.ts): mul then add in the SIMD build (the same bits as before), one fused
// multiply-add in the relaxed build, where each step is a link of a dependent chain and the fused
// one is shorter (about four cycles against five for mul then add on x64).

// The vector constants of the functions below, read from memory: V8 (Node 20) rebuilds a
// v128.const in three instructions at every use inside a loop, where a splatting load is one.
// The values are the same f32 constants, so the results are the same bits.
const KV = memory.data<f32>([
  -87.3, 88.3, 1.4426950408889634, 12582912.0, // 0 clamp low, 1 clamp high, 2 log2(e), 3 1.5 * 2^23
  0.693145751953125, 1.428606765330187e-6, // 4, 5: ln 2 split so that n * LN2_HI is exact for |n| < 2^11
  1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, // 6..11: Taylor coefficients, 1
  1.4142135623730951, 0.6931471805599453, 2.0, 0.0, 20.0, // 12 sqrt 2, 13 ln 2, 14 two, 15 zero, 16 softplus threshold
  1.0 / 9.0, 1.0 / 7.0, 1.0 / 5.0, 1.0 / 3.0, // 17..20: atanh series
  0.7071067811865476, 0.3275911, 1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592, // 21..27: erf (A&S 7.1.26)
  -0.0 // 28: the sign bit
]);
const KI = memory.data<i32>([127]); // the exponent bias
const K_LO = 0, K_HI = 1, K_LOG2E = 2, K_MAGIC = 3, K_LN2_HI = 4, K_LN2_LO = 5, K_C6 = 6, K_C5 = 7, K_C4 = 8, K_C3 = 9,
  K_HALF = 10, K_ONE = 11, K_SQRT2 = 12, K_LN2 = 13, K_TWO = 14, K_ZERO = 15, K_SP_MAX = 16, K_I9 = 17, K_I7 = 18,
  K_I5 = 19, K_I3 = 20, K_SQRT1_2 = 21, K_ERF_P = 22, K_ERF_A5 = 23, K_ERF_A4 = 24, K_ERF_A3 = 25, K_ERF_A2 = 26,
  K_ERF_A1 = 27, K_SIGN = 28;

/** Constant i of KV in every lane. */
// @ts-ignore: decorator
@inline function kv(i: i32): v128 { return v128.load32_splat(KV + (<usize>i << 2)); }

/** e^x for 4 lanes: x = n ln2 + r, |r| <= ln2 / 2, e^r by a degree-6 Taylor polynomial, 2^n
 *  by building the exponent bits. Inputs are clamped to [-87.3, 88.3]: no inf, no subnormals. */
// @ts-ignore: decorator
@inline export function exp4(x: v128): v128 {
  // pmin/pmax give min/max's results here (the bounds are neither NaN nor zero) in one
  // instruction each; round-to-nearest-even by adding 1.5 * 2^23 also leaves n's bits in the
  // low mantissa for the scale
  const xc = f32x4.pmin(f32x4.pmax(x, kv(K_LO)), kv(K_HI));
  const t = madd(xc, kv(K_LOG2E), kv(K_MAGIC));
  const n = f32x4.sub(t, kv(K_MAGIC));
  const r = f32x4.sub(f32x4.sub(xc, f32x4.mul(n, kv(K_LN2_HI))), f32x4.mul(n, kv(K_LN2_LO)));
  let p = kv(K_C6);
  p = madd(p, r, kv(K_C5));
  p = madd(p, r, kv(K_C4));
  p = madd(p, r, kv(K_C3));
  p = madd(p, r, kv(K_HALF));
  p = madd(p, r, kv(K_ONE));
  p = madd(p, r, kv(K_ONE));
  // t's bits are 0x4B400000 + n; shifting left by 23 keeps only the low 9 bits of n + 127
  const scale = i32x4.shl(i32x4.add(t, v128.load32_splat(KI)), 23);
  return f32x4.mul(p, scale);
}

/** log(y) for 4 lanes with y in (1, 2]: y = 2^k m, m in [sqrt(1/2), sqrt(2)), log m = 2 atanh(s)
 *  with s = (m - 1) / (m + 1) as an odd series to s^9. */
// @ts-ignore: decorator
@inline function log12(y: v128): v128 {
  const big = f32x4.gt(y, kv(K_SQRT2));
  const m = v128.bitselect(f32x4.mul(y, kv(K_HALF)), y, big);
  const k = v128.and(big, kv(K_LN2)); // k ln2, k in {0, 1}
  const s = f32x4.div(f32x4.sub(m, kv(K_ONE)), f32x4.add(m, kv(K_ONE)));
  const s2 = f32x4.mul(s, s);
  let q = kv(K_I9);
  q = madd(q, s2, kv(K_I7));
  q = madd(q, s2, kv(K_I5));
  q = madd(q, s2, kv(K_I3));
  q = madd(q, s2, kv(K_ONE));
  return f32x4.add(k, f32x4.mul(f32x4.mul(s, q), kv(K_TWO)));
}

/** SiLU for 4 lanes. */
// @ts-ignore: decorator
@inline export function silu4(x: v128): v128 {
  return f32x4.div(x, f32x4.add(kv(K_ONE), exp4(f32x4.neg(x))));
}

/** softplus for 4 lanes: max(x, 0) + log(1 + e^-|x|), and x itself where x > 20. */
// @ts-ignore: decorator
@inline export function softplus4(x: v128): v128 {
  const e = exp4(f32x4.neg(f32x4.abs(x)));
  const sp = f32x4.add(f32x4.pmax(x, kv(K_ZERO)), log12(f32x4.add(kv(K_ONE), e)));
  return v128.bitselect(x, sp, f32x4.gt(x, kv(K_SP_MAX)));
}

/** mean over i < n of softplus(x[i] + b[i]) (SIMD builds, n a multiple of 4). softplus(v) is
 *  max(v, 0) + log(1 + e^-|v|) (v itself where v > 20, as softplus4, which this gives without a
 *  test); the logs are summed as the
 *  log of a product: each factor is in (1, 2], so 64 steps of 4 lanes multiply to at most 2^64,
 *  and one log per lane every 64 steps replaces a log (and its division) per value. */
function softplusMean4(x: usize, b: usize, n: i32): f32 {
  let lin = f32x4.splat(0);
  let logs = f32x4.splat(0);
  let prod = kv(K_ONE);
  let steps = 0;
  for (let i = 0; i < n; i += 4) {
    const o = <usize>i << 2;
    const v = f32x4.add(v128.load(x + o), v128.load(b + o));
    // no test for v > 20 is needed: there max(v, 0) is v, and e^-v < 2^-28 leaves 1 + e^-v at
    // exactly 1, so the sums and the product are the bits softplus4's choice of v would give
    lin = f32x4.add(lin, f32x4.pmax(v, kv(K_ZERO)));
    prod = f32x4.mul(prod, f32x4.add(kv(K_ONE), exp4(f32x4.neg(f32x4.abs(v)))));
    if (++steps == 64) { logs = f32x4.add(logs, logPos4(prod)); prod = kv(K_ONE); steps = 0; }
  }
  const t = f32x4.add(f32x4.add(lin, logs), logPos4(prod));
  return ((f32x4.extract_lane(t, 0) + f32x4.extract_lane(t, 1)) + (f32x4.extract_lane(t, 2) + f32x4.extract_lane(t, 3))) / <f32>n;
}

/** mean over i < n of softplus(x[i] + b[i]): the SIMD sum above where the build has it and n is a
 *  multiple of 4, else the reference. */
export function softplusMean(x: usize, b: usize, n: i32): f32 {
  if (ASC_FEATURE_SIMD && (n & 3) == 0) return softplusMean4(x, b, n);
  return softplusMean_ref(x, b, n);
}

/** Reference: the plain sum of the scalar softplus, divided by n. */
export function softplusMean_ref(x: usize, b: usize, n: i32): f32 {
  let sum: f32 = 0;
  for (let i = 0; i < n; i++) sum += softplus(load<f32>(x + (<usize>i << 2)) + load<f32>(b + (<usize>i << 2)));
  return sum / <f32>n;
}

/** log(y) for 4 lanes of normal y >= 1: y = 2^e m with m in [1, 2), e ln 2 + log(m). */
// @ts-ignore: decorator
@inline function logPos4(y: v128): v128 {
  const e = i32x4.sub(i32x4.shr_u(y, 23), v128.load32_splat(KI));
  const m = v128.or(v128.and(y, i32x4.splat(0x7fffff)), kv(K_ONE));
  return f32x4.add(f32x4.mul(f32x4.convert_i32x4_s(e), kv(K_LN2)), log12(m));
}

/** Exact-GELU for 4 lanes: 0.5 x (1 + erf(x / sqrt 2)) with the same erf approximation as the
 *  scalar one, in f32. */
// @ts-ignore: decorator
@inline export function gelu4(x: v128): v128 {
  const z = f32x4.mul(x, kv(K_SQRT1_2));
  const az = f32x4.abs(z);
  const t = f32x4.div(kv(K_ONE), f32x4.add(kv(K_ONE), f32x4.mul(az, kv(K_ERF_P))));
  let p = kv(K_ERF_A5);
  p = madd(p, t, kv(K_ERF_A4));
  p = madd(p, t, kv(K_ERF_A3));
  p = madd(p, t, kv(K_ERF_A2));
  p = madd(p, t, kv(K_ERF_A1));
  p = f32x4.mul(p, t);
  const e = f32x4.sub(kv(K_ONE), f32x4.mul(p, exp4(f32x4.neg(f32x4.mul(az, az)))));
  // erf(z) carries the sign of z: flip the sign bit of e where z < 0
  const erfz = v128.xor(e, v128.and(z, kv(K_SIGN)));
  return f32x4.mul(f32x4.mul(x, kv(K_HALF)), f32x4.add(kv(K_ONE), erfz));
}

/** y[i] = GELU(y[i]) for n floats. */
export function gelu_inplace(y: usize, n: i32): void {
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    for (; i + 4 <= n; i += 4) {
      const o = <usize>i << 2;
      v128.store(y + o, gelu4(v128.load(y + o)));
    }
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(y + o, gelu(load<f32>(y + o)));
  }
}
