// Token sampling, inside the module: greedy, temperature, top-k, top-p, a seeded PRNG.
//
// Every rule is deterministic: candidates are ranked by logit, highest first, and equal logits
// by the lower token id; the PRNG is xorshift64* on a 64-bit state seeded through splitmix64.
// A NaN logit ranks as -Infinity (it can never be drawn unless every logit is NaN).

import { Session } from './model';

// @ts-ignore: decorator
@inline function logitAt(p: usize, i: i32): f32 {
  const v = load<f32>(p + (<usize>i << 2));
  return v != v ? -Infinity : v;
}

// @ts-ignore: decorator
@inline function idxAt(p: usize, i: i32): i32 { return load<i32>(p + (<usize>i << 2)); }
// @ts-ignore: decorator
@inline function idxSet(p: usize, i: i32, v: i32): void { store<i32>(p + (<usize>i << 2), v); }

/** Token a ranks before token b. */
// @ts-ignore: decorator
@inline function before(lg: usize, a: i32, b: i32): bool {
  const la = logitAt(lg, a), lb = logitAt(lg, b);
  return la > lb || (la == lb && a < b);
}

export function seedRng(s: Session, lo: u32, hi: u32): void {
  // splitmix64 of the seed: nearby seeds give unrelated streams, and the state is never 0
  let x = ((<u64>hi) << 32) | <u64>lo;
  x += 0x9E3779B97F4A7C15;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EB;
  x = x ^ (x >> 31);
  s.rng = x == 0 ? 0x2545F4914F6CDD1D : x;
}

/** Uniform in [0, 1) with 24 random bits. */
export function nextUniform(s: Session): f32 {
  let x = s.rng;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  s.rng = x;
  const r = x * 0x2545F4914F6CDD1D;
  return <f32>(r >> 40) * (<f32>1.0 / <f32>16777216.0);
}

/** The first index of the largest logit (NaN ranks as -Infinity). */
export function argmax(lg: usize, n: i32): i32 {
  let i = 0;
  let bv: f32 = -Infinity;
  if (ASC_FEATURE_SIMD) {
    // pmax keeps the accumulator where the new lane is NaN
    let acc = f32x4.splat(-Infinity);
    for (; i + 4 <= n; i += 4) acc = f32x4.pmax(acc, v128.load(lg + (<usize>i << 2)));
    bv = max(max(f32x4.extract_lane(acc, 0), f32x4.extract_lane(acc, 1)), max(f32x4.extract_lane(acc, 2), f32x4.extract_lane(acc, 3)));
  }
  for (; i < n; i++) {
    const v = logitAt(lg, i);
    if (v > bv) bv = v;
  }
  let j = 0;
  if (ASC_FEATURE_SIMD) {
    // skip four lanes at a time to the first group holding bv
    const bvv = f32x4.splat(bv);
    while (j + 4 <= n && !v128.any_true(f32x4.eq(v128.load(lg + (<usize>j << 2)), bvv))) j += 4;
  }
  for (; j < n; j++) if (load<f32>(lg + (<usize>j << 2)) == bv) return j;
  return 0; // every logit is NaN (or -Infinity)
}

// A binary heap over token ids whose root is the candidate that ranks LAST.
function siftDown(lg: usize, h: usize, n: i32, i: i32): void {
  while (true) {
    const l = 2 * i + 1;
    if (l >= n) return;
    let w = l;
    const r = l + 1;
    if (r < n && before(lg, idxAt(h, w), idxAt(h, r))) w = r; // w: the child that ranks later
    const hi = idxAt(h, i), hw = idxAt(h, w);
    if (!before(lg, hi, hw)) return;
    idxSet(h, i, hw);
    idxSet(h, w, hi);
    i = w;
  }
}

/** Sorts h[0..n) best first (heap sort: deterministic, O(n log n), no allocation). */
function sortBestFirst(lg: usize, h: usize, n: i32): void {
  for (let i = (n >> 1) - 1; i >= 0; i--) siftDown(lg, h, n, i);
  for (let end = n - 1; end > 0; end--) {
    const t = idxAt(h, 0);
    idxSet(h, 0, idxAt(h, end));
    idxSet(h, end, t);
    siftDown(lg, h, end, 0);
  }
}

/** Draws the next token from s.logits with the session's sampling parameters. */
export function sampleToken(s: Session): i32 {
  const V = s.model.V;
  const lg = s.logits;
  if (s.temperature == 0) return argmax(lg, V);

  const idx = s.idx, probs = s.probs;
  const invT: f32 = <f32>1.0 / s.temperature;
  let n = V;
  let sorted = false;
  if (s.topk > 0 && s.topk < V) {
    // keep the k best in a heap whose root ranks last, then sort them
    const k = s.topk;
    for (let i = 0; i < k; i++) idxSet(idx, i, i);
    for (let i = (k >> 1) - 1; i >= 0; i--) siftDown(lg, idx, k, i);
    for (let i = k; i < V; i++) {
      if (before(lg, i, idxAt(idx, 0))) {
        idxSet(idx, 0, i);
        siftDown(lg, idx, k, 0);
      }
    }
    sortBestFirst(lg, idx, k);
    n = k;
    sorted = true;
  } else {
    for (let i = 0; i < V; i++) idxSet(idx, i, i);
  }

  // unnormalised probabilities of the candidates, relative to the best one
  let top: f32 = -Infinity;
  for (let i = 0; i < n; i++) top = max(top, logitAt(lg, idxAt(idx, i)));
  let total: f32 = 0;
  for (let i = 0; i < n; i++) {
    const e = Mathf.exp((logitAt(lg, idxAt(idx, i)) - top) * invT);
    store<f32>(probs + (<usize>i << 2), e);
    total += e;
  }

  if (s.topp < 1) {
    if (!sorted) {
      // a token under (1 - p) / (n - 1) of the mass cannot be in the nucleus: drop those first
      const cut = min<f32>(<f32>1.0, (<f32>1.0 - s.topp) / <f32>(n - 1) * total); // the best (1.0) stays
      let m = 0;
      for (let i = 0; i < n; i++) {
        if (load<f32>(probs + (<usize>i << 2)) >= cut) idxSet(idx, m++, idxAt(idx, i));
      }
      sortBestFirst(lg, idx, m);
      for (let i = 0; i < m; i++) {
        store<f32>(probs + (<usize>i << 2), Mathf.exp((logitAt(lg, idxAt(idx, i)) - top) * invT));
      }
      n = m;
    }
    // the smallest prefix whose mass reaches p of the total
    const target = s.topp * total;
    let cum: f32 = 0;
    let keep = n;
    for (let i = 0; i < n; i++) {
      cum += load<f32>(probs + (<usize>i << 2));
      if (cum >= target) { keep = i + 1; break; }
    }
    n = keep;
    total = cum;
  }

  const r = nextUniform(s) * total;
  let acc: f32 = 0;
  for (let i = 0; i < n; i++) {
    acc += load<f32>(probs + (<usize>i << 2));
    if (r < acc) return idxAt(idx, i);
  }
  return idxAt(idx, n - 1); // rounding left r at the very top
}
