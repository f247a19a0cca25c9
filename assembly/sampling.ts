// Token sampling, inside the module: greedy, temperature, top-k, top-p, a seeded PRNG.
//
// Every rule is deterministic: candidates are ranked by logit, highest first, and equal logits
// by the lower token id; the PRNG is xorshift64* on a 64-bit state seeded through splitmix64.
// A NaN logit ranks as -Infinity (it can never be drawn unless every logit is NaN).
//
// Three samplers (docs/runtime.md, "Sampling"): version 1, the first (f32 probabilities,
// candidates sorted by a heap), and version 2, whose weights are integers, so that every sum is
// exact whatever order the SIMD code adds in (the same tokens in every build, with no full sort),
// both kept for the tokens old seeds gave; version 3, the default, version 2 made cheaper: its
// weights convert by an addition, top-p's threshold lies on a grid, and a draw with top-p is
// decided by rejection rather than by finding the threshold first (host/test/sampler-reference.ts
// is the plain definition of versions 2 and 3).

import { Session } from './model';
import { SAMPLER_V1, SAMPLER_V3 } from './abi';

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

/** 24 random bits (xorshift64*'s top bits). */
export function nextBits24(s: Session): u32 {
  let x = s.rng;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  s.rng = x;
  return <u32>((x * 0x2545F4914F6CDD1D) >> 40);
}

/** Uniform in [0, 1) with 24 random bits. */
export function nextUniform(s: Session): f32 {
  return <f32>nextBits24(s) * (<f32>1.0 / <f32>16777216.0);
}

/** The largest logit (NaN ranks as -Infinity; -Infinity when every logit is NaN). */
function maxLogit(lg: usize, n: i32): f32 {
  let i = 0;
  let bv: f32 = -Infinity;
  if (ASC_FEATURE_SIMD) {
    // pmax keeps the accumulator where the new lane is NaN; four accumulators, so that the loop
    // is not one chain of dependent maxima
    let acc = f32x4.splat(-Infinity), a1 = acc, a2 = acc, a3 = acc;
    for (; i + 16 <= n; i += 16) {
      const p = lg + (<usize>i << 2);
      acc = f32x4.pmax(acc, v128.load(p));
      a1 = f32x4.pmax(a1, v128.load(p, 16));
      a2 = f32x4.pmax(a2, v128.load(p, 32));
      a3 = f32x4.pmax(a3, v128.load(p, 48));
    }
    for (; i + 4 <= n; i += 4) acc = f32x4.pmax(acc, v128.load(lg + (<usize>i << 2)));
    acc = f32x4.pmax(f32x4.pmax(acc, a1), f32x4.pmax(a2, a3));
    bv = max(max(f32x4.extract_lane(acc, 0), f32x4.extract_lane(acc, 1)), max(f32x4.extract_lane(acc, 2), f32x4.extract_lane(acc, 3)));
  }
  for (; i < n; i++) {
    const v = logitAt(lg, i);
    if (v > bv) bv = v;
  }
  return bv;
}

/** The first index of the largest logit (NaN ranks as -Infinity). */
export function argmax(lg: usize, n: i32): i32 {
  const bv = maxLogit(lg, n);
  let j = 0;
  if (ASC_FEATURE_SIMD) {
    // skip four lanes at a time to the first group holding bv
    setVs(0, f32x4.splat(bv));
    while (j + 4 <= n && !v128.any_true(f32x4.eq(v128.load(lg + (<usize>j << 2)), vs(0)))) j += 4;
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

/** Draws the next token from s.logits with the session's sampler and its parameters. */
export function sampleToken(s: Session): i32 {
  if (s.temperature == 0) return argmax(s.logits, s.model.V);
  return s.sampler == SAMPLER_V1 ? sampleV1(s) : intSampler(s);
}

/** Versions 2 and 3 (temperature > 0): k = (1 / T) * log2 e, top-k's k (0: off) and the largest
 *  logit (with each group's largest, for a small top-k), then the version's own work. */
function intSampler(s: Session): i32 {
  const V = s.model.V, lg = s.logits;
  const k: f32 = (<f32>1.0 / s.temperature) * LOG2E;
  const topk = s.topk > 0 && s.topk < V ? s.topk : 0;
  const m = topk > 0 && topk <= V >> 5 ? groupMax(lg, V, s.idx) : maxLogit(lg, V);
  // an infinite largest logit (or every logit NaN), or a temperature so small that k overflows:
  // the draw is the argmax
  if (!(m > -Infinity && m < Infinity && k < Infinity)) return argmax(lg, V);
  return s.sampler == SAMPLER_V3 ? sampleV3(s, k, topk, m) : sampleV2(s, k, topk, m);
}

/** Sampler version 1 (temperature > 0). */
function sampleV1(s: Session): i32 {
  const V = s.model.V;
  const lg = s.logits;

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

// ---- Sampler version 2 ------------------------------------------------------------------------
//
// With m the largest logit and T the temperature, token i's weight is the integer q[i], about
// 2^24 * exp((x[i] - m) / T), computed in f32 exactly as weight1 below (2^y by splitting y into
// a whole n and f in [-1/2, 1/2], and 2^f by its Taylor polynomial of degree 4: relative error
// under 1e-4), for the tokens top-k keeps (all when it is off); 0 for the others and for NaN
// logits. The best token weighs 2^24; a token under about 2^-24 of its probability weighs 0 and
// is never drawn. Top-p keeps every token with q >= tau, tau the largest weight whose tokens hold
// at least p * (sum of q) of the mass (that product in f64; equal weights are in or out
// together). The draw: R, 24 random bits; r = floor(R * M / 2^24) with M the kept mass; the
// token is the first, by id, at which the running sum of kept weights passes r. Sums of integers
// are exact, so the SIMD build's order of adding gives the scalar build's result.

const LOG2E: f32 = 1.4426950408889634;
const YMIN: f32 = -30.0; // y is clamped here: 2^-30 * 2^24 truncates to 0 (and -Infinity too)
const YZERO: f32 = -25.0; // every y below it gives weight 0: four such are skipped
const MAGIC: f32 = 12582912.0; // 1.5 * 2^23: adding it rounds to a whole number
const C1: f32 = 0.6931471805599453; // ln 2
const C2: f32 = 0.2402265069591007; // ln^2 2 / 2
const C3: f32 = 0.05550410866482158; // ln^3 2 / 6
const C4: f32 = 0.009618129107628477; // ln^4 2 / 24

/** One token's weight from y = (x - m) * k (k = (1 / T) * log2 e), the same f32 operations as
 *  each lane of weight4. */
// @ts-ignore: decorator
@inline function weight1(y: f32): i32 {
  if (y != y) return 0;
  const yc = y < YMIN ? YMIN : y; // f32x4.pmax(y, YMIN)
  const t = yc + MAGIC;
  const n = t - MAGIC;
  const f = yc - n;
  const p = (((C4 * f + C3) * f + C2) * f + C1) * f + <f32>1.0;
  // t's bits are those of 1.5 * 2^23 plus n: adding 151 and shifting left by 23 leaves n + 151
  // in the exponent field, 2^(n + 24)
  return <i32>(p * reinterpret<f32>((reinterpret<i32>(t) + 151) << 23));
}

// The vector constants below, read from memory: V8 (Node 20) rebuilds a v128 constant in three
// instructions at every use inside a loop, where a splatting load is one (kernels/math.ts too).
const SK = memory.data<f32>([YMIN, MAGIC, C4, C3, C2, C1, 1.0, YZERO, -Infinity]);
const SKI = memory.data<i32>([151, 4]);
const K_YMIN = 0, K_MAGIC = 1, K_C4 = 2, K_C3 = 3, K_C2 = 4, K_C1 = 5, K_ONE = 6, K_YZERO = 7, K_NEGINF = 8;
// @ts-ignore: decorator
@inline function sk(i: i32): v128 { return v128.load32_splat(SK + (<usize>i << 2)); }

// A loop's own vectors (splats of its parameters), kept in memory and read inside the loop: V8
// splats a parameter again at every iteration otherwise (a shuffle each, which limited cutOf),
// where a load folds into the instruction that uses it.
const VS = memory.data(8 << 4, 16);
// @ts-ignore: decorator
@inline function vs(j: i32): v128 { return v128.load(VS + (<usize>j << 4)); }
// @ts-ignore: decorator
@inline function setVs(j: i32, v: v128): void { v128.store(VS + (<usize>j << 4), v); }

/** weight1 for four lanes (a NaN lane gives 0: truncation of NaN). */
// @ts-ignore: decorator
@inline function weight4(y: v128): v128 {
  const yc = f32x4.pmax(y, sk(K_YMIN));
  const t = f32x4.add(yc, sk(K_MAGIC));
  const n = f32x4.sub(t, sk(K_MAGIC));
  const f = f32x4.sub(yc, n);
  let p = f32x4.add(f32x4.mul(sk(K_C4), f), sk(K_C3));
  p = f32x4.add(f32x4.mul(p, f), sk(K_C2));
  p = f32x4.add(f32x4.mul(p, f), sk(K_C1));
  p = f32x4.add(f32x4.mul(p, f), sk(K_ONE));
  return i32x4.trunc_sat_f32x4_s(f32x4.mul(p, i32x4.shl(i32x4.add(t, v128.load32_splat(SKI)), 23)));
}

// Sampler version 3's weights: version 2's at a quarter of the scale, rounded instead of
// truncated, from a polynomial of degree 3 (least squares in the relative error: under 1.2e-4),
// so that the f32 -> i32 conversion is an addition (the weights stay below 2^23). Its top-p and
// its draw: nucleusGrid and sampleV3.
const D1: f32 = 0.69336869;
const D2: f32 = 0.24221838;
const D3: f32 = 0.05459283;
const TWO23: f32 = 8388608.0; // 2^23: a whole number below it, added to it, is in the low bits
const SK3 = memory.data<f32>([D3, D2, D1, TWO23]);
const K3_D3 = 0, K3_D2 = 1, K3_D1 = 2, K3_TWO23 = 3;
// @ts-ignore: decorator
@inline function sk3(i: i32): v128 { return v128.load32_splat(SK3 + (<usize>i << 2)); }
const SKI3 = memory.data<i32>([149]);

/** Version 3's weight from y, the same f32 operations as each lane of weight4v3: about
 *  2^22 * 2^y, 2^22 for y = 0, 0 for NaN and y below about -23. */
// @ts-ignore: decorator
@inline function weight1v3(y: f32): i32 {
  const yc = YMIN < y ? y : YMIN; // f32x4.pmax(YMIN, y): NaN gives YMIN
  const t = yc + MAGIC;
  const n = t - MAGIC;
  const f = yc - n;
  const p = ((D3 * f + D2) * f + D1) * f + <f32>1.0;
  // 2^(n + 22) from t's bits, as in weight1
  const w = p * reinterpret<f32>((reinterpret<i32>(t) + 149) << 23);
  return reinterpret<i32>(w + TWO23) - reinterpret<i32>(TWO23);
}

/** weight1v3 for four lanes, given its constants (splats of YMIN, MAGIC, D3, D2, D1, 1, 149 and
 *  TWO23): a hot loop reads them into locals once, which V8 then keeps in registers. */
// @ts-ignore: decorator
@inline function weight4v3k(y: v128, cy: v128, cg: v128, c3: v128, c2: v128, c1: v128, c0: v128, ce: v128, ct: v128): v128 {
  const yc = f32x4.pmax(cy, y);
  const t = f32x4.add(yc, cg);
  const f = f32x4.sub(yc, f32x4.sub(t, cg));
  let p = f32x4.add(f32x4.mul(c3, f), c2);
  p = f32x4.add(f32x4.mul(p, f), c1);
  p = f32x4.add(f32x4.mul(p, f), c0);
  const w = f32x4.mul(p, i32x4.shl(i32x4.add(t, ce), 23));
  return i32x4.sub(f32x4.add(w, ct), ct);
}

/** A token's weight in version 2 or 3. */
// @ts-ignore: decorator
@inline function weightOf(y: f32, v3: bool): i32 { return v3 ? weight1v3(y) : weight1(y); }

/** Offers token i to the top-k heap (root: the candidate that ranks last). */
// @ts-ignore: decorator
@inline function offer(lg: usize, h: usize, k: i32, i: i32): void {
  if (before(lg, i, idxAt(h, 0))) {
    idxSet(h, 0, i);
    siftDown(lg, h, k, 0);
  }
}

/** The k-th best token (0 < k < V): the last one top-k keeps. m is the largest logit (finite). */
function topkLast(s: Session, k: i32, m: f32): i32 {
  const lg = s.logits, h = s.idx, V = s.model.V;
  // a cut c with at least k logits >= c: no logit below it can be among the k best. Counted for
  // c = m - 1, m - 2, m - 4, m - 8 in one pass, then m - 16 ... m - 128 in another, then once more
  // at three points between the cut found and the one above it (fewer tokens for the heap); if
  // none is found, c = -Infinity and every token is offered
  let c: f32 = -Infinity, above: f32 = m;
  for (let d: f32 = 1; d <= 16; d *= 16) {
    c = cutOf(lg, V, k, m - d, m - 2 * d, m - 4 * d, m - 8 * d);
    if (c > -Infinity) {
      if (c != m - d) above = c + (c - m) * <f32>-0.5; // the threshold tried just before c
      break;
    }
    above = m - 8 * d;
  }
  if (c > -Infinity) {
    const step = (above - c) * <f32>0.25;
    const r = cutOf(lg, V, k, above - step, above - 2 * step, above - 3 * step, c);
    if (r > -Infinity) c = r;
  }
  // gather the tokens at or above c (n >= k of them) into h; the heap is the first k of them,
  // and the rest are offered to it
  let n = 0, i = 0;
  if (c == -Infinity) {
    for (; i < V; i++) idxSet(h, i, i);
    n = V;
  } else {
    if (ASC_FEATURE_SIMD) {
      setVs(0, f32x4.splat(c));
      for (; i + 4 <= V; i += 4) {
        if (v128.any_true(f32x4.ge(v128.load(lg + (<usize>i << 2)), vs(0)))) {
          for (let j = i; j < i + 4; j++) if (load<f32>(lg + (<usize>j << 2)) >= c) idxSet(h, n++, j);
        }
      }
    }
    for (; i < V; i++) if (load<f32>(lg + (<usize>i << 2)) >= c) idxSet(h, n++, i);
  }
  for (let j = (k >> 1) - 1; j >= 0; j--) siftDown(lg, h, k, j);
  for (let j = k; j < n; j++) offer(lg, h, k, idxAt(h, j));
  return idxAt(h, 0);
}

// Top-k with few kept tokens (k <= V / 32) starts from the largest logit of each group of 16
// tokens: if at least k groups' largest logits are >= c, at least k tokens are, and c is a cut.
// The cut is searched among the V / 16 group maxima instead of all V logits, and only the groups
// whose largest logit reaches it are read for the candidates.
const GROUP = 16;

/** The largest logit, as maxLogit gives it, and each group's largest logit into gm (NaN ranks as
 *  -Infinity; the last group may have fewer tokens). */
function groupMax(lg: usize, V: i32, gm: usize): f32 {
  let bv: f32 = -Infinity;
  let g = 0;
  if (ASC_FEATURE_SIMD) {
    for (; (g + 1) * GROUP <= V; g++) {
      const p = lg + (<usize>(g * GROUP) << 2);
      // pmax keeps the accumulator where the new lane is NaN
      let a = f32x4.pmax(sk(K_NEGINF), v128.load(p));
      a = f32x4.pmax(a, v128.load(p, 16));
      a = f32x4.pmax(a, v128.load(p, 32));
      a = f32x4.pmax(a, v128.load(p, 48));
      a = f32x4.pmax(a, i8x16.shuffle(a, a, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7));
      a = f32x4.pmax(a, i8x16.shuffle(a, a, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11));
      const v = f32x4.extract_lane(a, 0);
      store<f32>(gm + (<usize>g << 2), v);
      bv = max(bv, v);
    }
  }
  for (; g * GROUP < V; g++) {
    let v: f32 = -Infinity;
    for (let i = g * GROUP; i < min(V, (g + 1) * GROUP); i++) v = max(v, logitAt(lg, i));
    store<f32>(gm + (<usize>g << 2), v);
    bv = max(bv, v);
  }
  return bv;
}

/** topkLast for 0 < k <= V / 32, after groupMax wrote the group maxima to s.idx, leaving the
 *  ids top-k keeps in s.idx[0 .. k) in id order; -1 where this search does not apply (then
 *  topkLast). */
function topkLastGroups(s: Session, k: i32, m: f32): i32 {
  const lg = s.logits, h = s.idx, x = s.probs, V = s.model.V;
  const G = (V + GROUP - 1) / GROUP;
  const gm = h;
  // the cut among the group maxima, as topkLast finds it among the logits
  let c: f32 = -Infinity, above: f32 = m;
  for (let d: f32 = 1; d <= 16; d *= 16) {
    c = cutOf(gm, G, k, m - d, m - 2 * d, m - 4 * d, m - 8 * d);
    if (c > -Infinity) {
      if (c != m - d) above = c + (c - m) * <f32>-0.5;
      break;
    }
    above = m - 8 * d;
  }
  if (c == -Infinity) return -1;
  const step = (above - c) * <f32>0.25;
  const r = cutOf(gm, G, k, above - step, above - 2 * step, above - 3 * step, c);
  if (r > -Infinity) c = r;
  // the groups that reach c; their tokens' ids go to h after the group maxima (room for them is
  // needed), their logits to x
  let groups = 0;
  for (let g = 0; g < G; g++) groups += <i32>(load<f32>(gm + (<usize>g << 2)) >= c);
  if (G + groups * GROUP > V) return -1;
  if (load<u32>(SEL + 16) == 0) fillSel();
  const ids = h + (<usize>G << 2);
  let n = 0;
  for (let g = 0; g < G; g++) {
    if (load<f32>(gm + (<usize>g << 2)) < c) continue;
    let i = g * GROUP;
    const end = min(V, i + GROUP);
    if (ASC_FEATURE_SIMD) {
      setVs(0, f32x4.splat(c));
      let iv = i32x4.add(i32x4.splat(i), i32x4(0, 1, 2, 3));
      for (; i + 4 <= end; i += 4) {
        const v = v128.load(lg + (<usize>i << 2));
        const b = i32x4.bitmask(f32x4.ge(v, vs(0)));
        const sh = v128.load(SEL + (<usize>b << 4));
        v128.store(ids + (<usize>n << 2), i8x16.swizzle(iv, sh));
        v128.store(x + (<usize>n << 2), i8x16.swizzle(v, sh));
        n += popcnt(b);
        iv = i32x4.add(iv, v128.load32_splat(SKI + 4));
      }
    }
    for (; i < end; i++) {
      const v = load<f32>(lg + (<usize>i << 2));
      idxSet(ids, n, i);
      store<f32>(x + (<usize>n << 2), v);
      n += <i32>(v >= c);
    }
  }
  // the k-th largest of these n logits, xk, by narrowing [lo, hi): at least k are >= lo, fewer
  // than k are >= hi (counts at three points between, four at a time, where the logits are)
  let lo = c, hi = m;
  let nlo = n, nhi = countAtLeast(x, n, m);
  let xk = m;
  if (nhi < k) {
    while (true) {
      if (nlo - nhi <= 8) {
        xk = kthIn(x, n, lo, hi, k - nhi);
        break;
      }
      const d = (hi - lo) * <f32>0.25;
      const t0 = lo + d, t1 = lo + 2 * d, t2 = hi - d;
      if (!(t0 > lo && t2 < hi)) {
        xk = lo; // no float between: every logit in [lo, hi) is lo
        break;
      }
      cutOf(x, n, k, t2, t1, t0, lo);
      if (cutN0 >= k) { lo = t2; nlo = cutN0; }
      else if (cutN1 >= k) { lo = t1; nlo = cutN1; hi = t2; nhi = cutN0; }
      else if (cutN2 >= k) { lo = t0; nlo = cutN2; hi = t1; nhi = cutN1; }
      else { hi = t0; nhi = cutN2; }
    }
  }
  // the kept: every logit above xk, and the first (by id) of those equal to it up to k; their ids
  // to the front of h, the last of them returned
  let greater = 0;
  for (let j = 0; j < n; j++) greater += <i32>(load<f32>(x + (<usize>j << 2)) > xk);
  let need = k - greater, last = 0, f = 0;
  for (let j = 0; j < n; j++) {
    const v = load<f32>(x + (<usize>j << 2));
    const id = idxAt(ids, j);
    const eq = <i32>(v == xk) & <i32>(need > 0);
    if (eq) last = id;
    need -= eq;
    idxSet(h, f, id);
    f += <i32>(v > xk) | eq;
  }
  return last;
}

/** How many of the n values at x are >= t. */
function countAtLeast(x: usize, n: i32, t: f32): i32 {
  let c = 0;
  for (let j = 0; j < n; j++) c += <i32>(load<f32>(x + (<usize>j << 2)) >= t);
  return c;
}

/** The r-th largest (r >= 1, counted with repeats) of the values at x in [lo, hi); there are
 *  at least r and at most a few of them. */
function kthIn(x: usize, n: i32, lo: f32, hi: f32, r: i32): f32 {
  // the candidates, sorted highest first, in VS (at most 8 of them plus slack)
  let m = 0;
  const buf = VS;
  for (let j = 0; j < n; j++) {
    const v = load<f32>(x + (<usize>j << 2));
    if (v >= lo && v < hi) {
      let i = m++;
      for (; i > 0 && load<f32>(buf + (<usize>(i - 1) << 2)) < v; i--) store<f32>(buf + (<usize>i << 2), load<f32>(buf + (<usize>(i - 1) << 2)));
      store<f32>(buf + (<usize>i << 2), v);
    }
  }
  return load<f32>(buf + (<usize>(r - 1) << 2));
}

/** The first of c0 > c1 > c2 > c3 with at least k logits at or above it (NaN is not), or
 *  -Infinity. */
function cutOf(lg: usize, V: i32, k: i32, c0: f32, c1: f32, c2: f32, c3: f32): f32 {
  let n0 = 0, n1 = 0, n2 = 0, n3 = 0, i = 0;
  if (ASC_FEATURE_SIMD) {
    setVs(0, f32x4.splat(c0)); setVs(1, f32x4.splat(c1)); setVs(2, f32x4.splat(c2)); setVs(3, f32x4.splat(c3));
    let a0 = i32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
    for (; i + 4 <= V; i += 4) {
      const x = v128.load(lg + (<usize>i << 2));
      a0 = i32x4.sub(a0, f32x4.ge(x, vs(0)));
      a1 = i32x4.sub(a1, f32x4.ge(x, vs(1)));
      a2 = i32x4.sub(a2, f32x4.ge(x, vs(2)));
      a3 = i32x4.sub(a3, f32x4.ge(x, vs(3)));
    }
    n0 = lanes(a0); n1 = lanes(a1); n2 = lanes(a2); n3 = lanes(a3);
  }
  for (; i < V; i++) {
    const x = load<f32>(lg + (<usize>i << 2));
    if (x >= c0) n0++;
    if (x >= c1) n1++;
    if (x >= c2) n2++;
    if (x >= c3) n3++;
  }
  cutN0 = n0; cutN1 = n1; cutN2 = n2;
  return n0 >= k ? c0 : n1 >= k ? c1 : n2 >= k ? c2 : n3 >= k ? c3 : -Infinity;
}
/** The counts of the last cutOf at c0, c1, c2. */
let cutN0 = 0, cutN1 = 0, cutN2 = 0;

// @ts-ignore: decorator
@inline function lanes(v: v128): i32 {
  return (i32x4.extract_lane(v, 0) + i32x4.extract_lane(v, 1)) + (i32x4.extract_lane(v, 2) + i32x4.extract_lane(v, 3));
}

// @ts-ignore: decorator
@inline function hsum(v: v128): u64 {
  return (<u64><u32>i32x4.extract_lane(v, 0) + <u64><u32>i32x4.extract_lane(v, 1)) +
    (<u64><u32>i32x4.extract_lane(v, 2) + <u64><u32>i32x4.extract_lane(v, 3));
}

/** Writes every token's weight q (i32, over s.probs) and returns their sum; k = (1 / T) * log2 e.
 *  Top-k keeps the tokens ranking no later than (kx, kid): x > kx, or x == kx and id <= kid
 *  (masked false: every token). */
function weights(s: Session, m: f32, k: f32, masked: bool, kx: f32, kid: i32): u64 {
  const lg = s.logits, q = s.probs, V = s.model.V;
  let total: u64 = 0;
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    setVs(0, f32x4.splat(m)); setVs(1, f32x4.splat(k)); setVs(2, f32x4.splat(kx)); setVs(3, i32x4.splat(kid));
    // chunks of at most 64 vectors: a lane then holds at most 64 weights of at most 2^24
    while (i + 4 <= V) {
      const end = min(V & ~3, i + 256);
      let acc = i32x4.splat(0);
      if (masked) {
        let ids = i32x4.add(i32x4.splat(i), i32x4(0, 1, 2, 3));
        for (; i < end; i += 4) {
          const o = <usize>i << 2;
          const x = v128.load(lg + o);
          const y = f32x4.mul(f32x4.sub(x, vs(0)), vs(1));
          let w = i32x4.splat(0);
          if (i32x4.bitmask(f32x4.ge(y, sk(K_YZERO)))) {
            w = v128.and(weight4(y), v128.or(f32x4.gt(x, vs(2)), v128.and(f32x4.eq(x, vs(2)), i32x4.le_s(ids, vs(3)))));
          }
          v128.store(q + o, w);
          acc = i32x4.add(acc, w);
          ids = i32x4.add(ids, v128.load32_splat(SKI + 4));
        }
      } else {
        for (; i < end; i += 4) {
          const o = <usize>i << 2;
          const y = f32x4.mul(f32x4.sub(v128.load(lg + o), vs(0)), vs(1));
          let w = i32x4.splat(0);
          if (i32x4.bitmask(f32x4.ge(y, sk(K_YZERO)))) w = weight4(y);
          v128.store(q + o, w);
          acc = i32x4.add(acc, w);
        }
      }
      total += hsum(acc);
    }
  }
  for (; i < V; i++) {
    const x = load<f32>(lg + (<usize>i << 2));
    const w = !masked || x > kx || (x == kx && i <= kid) ? weight1((x - m) * k) : 0;
    store<i32>(q + (<usize>i << 2), w);
    total += <u64>w;
  }
  return total;
}

// The top-p search. S(t), the mass of the tokens with q >= t, falls as t rises; tau is the largest
// weight with S(tau) >= target. A bracket [lo, hi) holds tau (tau >= lo, S(hi) < target). Each pass
// over the candidates sums their weights at four thresholds inside the bracket (exact integer sums,
// in any order) and narrows it to the interval between two of them; it also moves the weights of a
// range to a list (without branches: the lanes' mask picks a shuffle from SEL), which later passes
// read instead of all V tokens once the bracket lies inside that range. The range is the bracket
// the pass started with, except in the first pass over all V tokens (rangePass), which guesses the
// range [2^2.5, 2^4) times the cut, where tau lies on flat distributions (temperature 1.5, top-p
// 0.99), sums the weights at its two bounds only and keeps those between them; when tau lies above
// it (the usual case on a peaked one: the default model at temperature 0.8, top-p 0.95), one
// cheaper pass (abovePass) moves the weights above it to the list instead. A wrong guess costs one
// more pass, never a different tau. A few candidates left, or a bracket one wide, end it: the
// candidates in the bracket sorted, tau found by adding them from the top.

/** Shuffles for i8x16.swizzle: entry m (16 bytes) moves the i32 lanes whose bit is set in m to
 *  the front, in order (the other bytes are 0x80: zero). Filled on first use. */
const SEL = memory.data(16 << 4, 16);
/** Candidates at most this many end the search by sorting. */
const FEW = 16;
/** Sums of the last bracketPass: the weights >= th0, th1, th2, th3. */
let sum0: u64 = 0, sum1: u64 = 0, sum2: u64 = 0, sum3: u64 = 0;
/** The thresholds of the next pass, th0 <= th1 <= th2 <= th3. */
let th0 = 0, th1 = 0, th2 = 0, th3 = 0;
/** The mass of the tokens top-p keeps, from the last nucleusTau call. */
let nucleusMass: u64 = 0;

function fillSel(): void {
  for (let m = 0; m < 16; m++) {
    let o = 0;
    for (let l = 0; l < 4; l++) {
      if (m & (1 << l)) store<u32>(SEL + (<usize>m << 4) + (<usize>(o++) << 2), 0x03020100 + <u32>l * 0x04040404);
    }
    for (; o < 4; o++) store<u32>(SEL + (<usize>m << 4) + (<usize>o << 2), 0x80808080);
  }
}

/** Stores the lanes of v whose bit is set in k (a bitmask) at out[m..], in order, and returns m
 *  plus their count; the store writes four lanes, so out needs room for three more. */
// @ts-ignore: decorator
@inline function keepLanes(out: usize, m: i32, v: v128, k: i32): i32 {
  v128.store(out + (<usize>m << 2), i8x16.swizzle(v, v128.load(SEL + (<usize>k << 4))));
  return m + <i32>popcnt(k);
}

/** Sums the weights >= th0 .. th3 among src[0..n) into sum0 .. sum3, moves those in [c0, c1) to
 *  out (which may be src: no lane is written before it is read) and returns how many. */
function bracketPass(src: usize, n: i32, c0: i32, c1: i32, out: usize): i32 {
  const t0 = th0, t1 = th1, t2 = th2, t3 = th3;
  let s0: u64 = 0, s1: u64 = 0, s2: u64 = 0, s3: u64 = 0;
  let m = 0, i = 0;
  if (ASC_FEATURE_SIMD) {
    // v >= t as v > t - 1 (t >= 1)
    setVs(0, i32x4.splat(t0 - 1)); setVs(1, i32x4.splat(t1 - 1)); setVs(2, i32x4.splat(t2 - 1)); setVs(3, i32x4.splat(t3 - 1));
    setVs(4, i32x4.splat(c0 - 1)); setVs(5, i32x4.splat(c1));
    // the thresholds in locals, read once (V8 keeps them in registers)
    const v0 = vs(0), v1 = vs(1), v2 = vs(2), v3 = vs(3), v4 = vs(4), v5 = vs(5);
    while (i + 4 <= n) {
      // chunks of at most 64 vectors: a lane then sums at most 64 weights of at most 2^24
      const end = min(n & ~3, i + 256);
      let a0 = i32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
      for (; i < end; i += 4) {
        const v = v128.load(src + (<usize>i << 2));
        a0 = i32x4.add(a0, v128.and(v, i32x4.gt_s(v, v0)));
        a1 = i32x4.add(a1, v128.and(v, i32x4.gt_s(v, v1)));
        a2 = i32x4.add(a2, v128.and(v, i32x4.gt_s(v, v2)));
        a3 = i32x4.add(a3, v128.and(v, i32x4.gt_s(v, v3)));
        m = keepLanes(out, m, v, i32x4.bitmask(v128.and(i32x4.gt_s(v, v4), i32x4.gt_s(v5, v))));
      }
      s0 += hsum(a0); s1 += hsum(a1); s2 += hsum(a2); s3 += hsum(a3);
    }
  }
  for (; i < n; i++) {
    const v = load<i32>(src + (<usize>i << 2));
    if (v >= t0) s0 += <u64>v;
    if (v >= t1) s1 += <u64>v;
    if (v >= t2) s2 += <u64>v;
    if (v >= t3) s3 += <u64>v;
    if (v >= c0 && v < c1) store<i32>(out + (<usize>(m++) << 2), v);
  }
  sum0 = s0; sum1 = s1; sum2 = s2; sum3 = s3;
  return m;
}

/** The guessing pass: sums the weights >= c1 among src[0..n) into sum3, moves those in [c0, c1)
 *  to out and returns how many (their sum: sumIn). Half of bracketPass's work per token: the
 *  four thresholds inside the range are then summed over the list alone. */
function rangePass(src: usize, n: i32, c0: i32, c1: i32, out: usize): i32 {
  let above: u64 = 0, inside: u64 = 0;
  let m = 0, i = 0;
  if (ASC_FEATURE_SIMD) {
    setVs(4, i32x4.splat(c0 - 1)); setVs(5, i32x4.splat(c1 - 1));
    const v4 = vs(4), v5 = vs(5);
    while (i + 4 <= n) {
      // chunks of at most 64 vectors: a lane then sums at most 64 weights of at most 2^24
      const end = min(n & ~3, i + 256);
      let a = i32x4.splat(0), b = a;
      for (; i < end; i += 4) {
        const v = v128.load(src + (<usize>i << 2));
        const hi = i32x4.gt_s(v, v5);
        const inr = v128.andnot(i32x4.gt_s(v, v4), hi);
        a = i32x4.add(a, v128.and(v, hi));
        b = i32x4.add(b, v128.and(v, inr));
        m = keepLanes(out, m, v, i32x4.bitmask(inr));
      }
      above += hsum(a); inside += hsum(b);
    }
  }
  for (; i < n; i++) {
    const v = load<i32>(src + (<usize>i << 2));
    if (v >= c1) above += <u64>v;
    else if (v >= c0) {
      inside += <u64>v;
      store<i32>(out + (<usize>(m++) << 2), v);
    }
  }
  sum3 = above; sumIn = inside;
  return m;
}
/** The sum of the weights rangePass moved to its list. */
let sumIn: u64 = 0;

/** Moves the weights >= c among src[0..n) to out and returns how many. */
function abovePass(src: usize, n: i32, c: i32, out: usize): i32 {
  let m = 0, i = 0;
  if (ASC_FEATURE_SIMD) {
    setVs(5, i32x4.splat(c - 1));
    const v5 = vs(5);
    for (; i + 4 <= n; i += 4) {
      const v = v128.load(src + (<usize>i << 2));
      const k = i32x4.bitmask(i32x4.gt_s(v, v5));
      if (k) m = keepLanes(out, m, v, k);
    }
  }
  for (; i < n; i++) {
    const v = load<i32>(src + (<usize>i << 2));
    if (v >= c) store<i32>(out + (<usize>(m++) << 2), v);
  }
  return m;
}

/** Four thresholds th0 <= .. <= th3 in [lo + 1, hi - 1] (hi - lo >= 2) at the fractions j / 5 of
 *  [lo, hi) on a log scale (by the f32 bit patterns, which grow as log2 does). */
function thresholdsIn(lo: i32, hi: i32): void {
  const a = lo + 1, b = hi - 1;
  if (b - a < 4) {
    th0 = a; th1 = min(a + 1, b); th2 = min(a + 2, b); th3 = min(a + 3, b);
    return;
  }
  const ka = <i64>reinterpret<i32>(<f32>lo), kb = <i64>reinterpret<i32>(<f32>hi);
  th0 = splitAt(ka, kb, 1, a, b);
  th1 = max(th0, splitAt(ka, kb, 2, a, b));
  th2 = max(th1, splitAt(ka, kb, 3, a, b));
  th3 = max(th2, splitAt(ka, kb, 4, a, b));
}

// @ts-ignore: decorator
@inline function splitAt(ka: i64, kb: i64, j: i64, a: i32, b: i32): i32 {
  const t = <i32>reinterpret<f32>(<i32>(ka + (kb - ka) * j / 5));
  return min(max(t, a), b);
}

/** tau: the largest weight such that the weights >= it among src[0..n) hold at least target of
 *  the mass; every weight <= cut is known to be below it. full: src is all V tokens' weights
 *  (left as they are); otherwise src is a list of weights that the search may reorder. list: room
 *  for n weights (may be src). Sets nucleusMass. */
function nucleusTau(src: usize, n: i32, target: f64, cut: i32, list: usize, full: bool): i32 {
  // tau in [lo, hi): no weight exceeds 2^24
  return bracketSearch(src, n, target, cut, list, full && cut < 1 << 19, cut + 1, (1 << 24) + 1, false);
}

/** A level of the search: a weight (version 2), or a grid key (version 3, gridOf). */
// @ts-ignore: decorator
@inline function levelOf(l: i32, grid: bool): i32 { return grid ? gridOf(l) : l; }

/** Both versions' search for the level tau (a weight, or a grid key) from the bracket [lo, hi)
 *  of levels with S(lo) >= target > S(hi) = 0, over src; guess: try rangePass's range first. */
function bracketSearch(src: usize, n: i32, target: f64, cut: i32, list: usize, guess: bool, lo: i32, hi: i32, grid: bool): i32 {
  if (load<u32>(SEL + 16) == 0) fillSel();
  let slo: u64 = 0, shi: u64 = 0; // S(lo) (0 while unknown), S(hi)
  let base: u64 = 0; // S(t) = base + (the weights >= t in src) for t in [lo, hi]
  while (true) {
    if (hi - lo == 1 && slo != 0) {
      nucleusMass = slo;
      return levelOf(lo, grid);
    }
    // (a grid bracket one key wide whose S(lo) is missing takes one more pass, below)
    if (n <= FEW || (!grid && hi - lo == 1)) break;
    if (guess) {
      // the range [2^2.5, 2^4) times cut + 1 (lo < c0 < c1 < 2^24, on the grid for version 3):
      // only S(c0) and S(c1) in this pass, and the list of the weights in between
      guess = false;
      const c = cut + 1;
      let k0 = <i32>(<f64>c * 5.656854249492381), k1 = c << 4;
      if (grid) { k0 = gridKey(k0); k1 = gridKey(k1); }
      if (k0 > lo && k1 > k0 && k1 < hi) {
        const c0 = levelOf(k0, grid), c1 = levelOf(k1, grid);
        const m = rangePass(src, n, c0, c1, list);
        const S1 = base + sum3, S0 = S1 + sumIn;
        if (<f64>S1 >= target) {
          // tau >= c1: the search goes on among the weights >= c1 alone
          lo = k1; slo = S1;
          n = abovePass(src, n, c1, list);
          src = list;
        } else if (<f64>S0 >= target) {
          lo = k0; slo = S0; hi = k1; shi = S1;
          src = list; n = m; base = S1;
        } else { hi = k0; shi = S0; }
        continue;
      }
    }
    // four levels in (lo, hi): version 2 at the fifths of its log scale (thresholdsIn), version 3
    // at the fifths of its keys (repeated when it holds fewer; lo itself when one key wide)
    let k0 = lo, k1 = lo, k2 = lo, k3 = lo;
    if (!grid) {
      thresholdsIn(lo, hi);
      k0 = th0; k1 = th1; k2 = th2; k3 = th3;
    } else {
      const w = hi - lo;
      if (w > 1) {
        k0 = lo + max(1, w / 5);
        k1 = min(hi - 1, max(k0, lo + (2 * w) / 5));
        k2 = min(hi - 1, max(k1, lo + (3 * w) / 5));
        k3 = min(hi - 1, max(k2, lo + (4 * w) / 5));
      }
      th0 = gridOf(k0); th1 = gridOf(k1); th2 = gridOf(k2); th3 = gridOf(k3);
    }
    // the list receives every weight in the bracket, [lo, hi); S(hi) is shi
    const m = bracketPass(src, n, levelOf(lo, grid), levelOf(hi, grid), list);
    const sHi = shi;
    const S0 = base + sum0, S1 = base + sum1, S2 = base + sum2, S3 = base + sum3;
    if (<f64>S3 >= target) { lo = k3; slo = S3; }
    else if (<f64>S2 >= target) { lo = k2; slo = S2; hi = k3; shi = S3; }
    else if (<f64>S1 >= target) { lo = k1; slo = S1; hi = k2; shi = S2; }
    else if (<f64>S0 >= target) { lo = k0; slo = S0; hi = k1; shi = S1; }
    else { hi = k0; shi = S0; }
    // the new bracket lies inside the old one, whose weights the list holds
    src = list;
    n = m;
    base = sHi;
  }
  return fewCandidates(src, n, levelOf(lo, grid), levelOf(hi, grid), shi, target, list, grid);
}

/** The end of both searches, with few candidates left: those in [lo, hi) among src[0..n) (every
 *  weight there is), sorted highest first into list and added to S(hi) = shi until the target is
 *  reached at the last weight of a group: equal weights (grid: equal keys) are in or out
 *  together. Returns tau (grid: the smallest weight of the key) and sets nucleusMass. */
function fewCandidates(src: usize, n: i32, lo: i32, hi: i32, shi: u64, target: f64, list: usize, grid: bool): i32 {
  let m = 0;
  for (let i = 0; i < n; i++) {
    const v = load<i32>(src + (<usize>i << 2));
    if (v >= lo && v < hi) store<i32>(list + (<usize>(m++) << 2), v);
  }
  for (let i = 1; i < m; i++) {
    const v = load<i32>(list + (<usize>i << 2));
    let j = i;
    for (; j > 0 && load<i32>(list + (<usize>(j - 1) << 2)) < v; j--) store<i32>(list + (<usize>j << 2), load<i32>(list + (<usize>(j - 1) << 2)));
    store<i32>(list + (<usize>j << 2), v);
  }
  let cum = shi;
  for (let i = 0; i < m; i++) {
    const v = load<i32>(list + (<usize>i << 2));
    cum += <u64>v;
    const g = grid ? gridKey(v) : v;
    if (<f64>cum >= target && (i + 1 == m || (grid ? gridKey(load<i32>(list + (<usize>(i + 1) << 2))) : load<i32>(list + (<usize>(i + 1) << 2))) != g)) {
      nucleusMass = cum;
      return grid ? gridOf(g) : v;
    }
  }
  nucleusMass = cum; // not reached: S(lo) >= target
  return lo;
}

// Version 3's grid: the key of a weight w >= 0 is w itself below 16, and above that 16 steps per
// octave (w's f32 exponent and its top four mantissa bits); gridOf(key) is the smallest weight
// with that key, so w >= gridOf(k) exactly when gridKey(w) >= k.
const KEY16 = 0x41800000 >> 19; // the f32 bits of 16, shifted as gridKey shifts them

// @ts-ignore: decorator
@inline function gridKey(w: i32): i32 { return w < 16 ? w : (reinterpret<i32>(<f32>w) >> 19) - KEY16 + 16; }
// @ts-ignore: decorator
@inline function gridOf(k: i32): i32 { return k < 16 ? k : <i32>reinterpret<f32>((k - 16 + KEY16) << 19); }

/** Version 3's tau: gridOf(K) for the largest key K whose weights (q >= gridOf(K)) among
 *  src[0..n) hold at least target of the mass; nucleusTau's search on the keys, ending when the
 *  bracket is one key wide. Sets nucleusMass. */
function nucleusGrid(src: usize, n: i32, target: f64, cut: i32, list: usize, full: bool): i32 {
  // no weight reaches gridOf(KEY_TOP)
  return bracketSearch(src, n, target, cut, list, full && cut < 1 << 17, gridKey(cut + 1), KEY_TOP, true);
}
const KEY_TOP = (0x4A800000 >> 19) - KEY16 + 16 + 1; // gridKey(2^22) + 1

/** The first token with q >= tau at which the running sum of such weights passes r (< their sum). */
function drawIndex(q: usize, V: i32, tau: i32, r: u64): i32 {
  let cum: u64 = 0;
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    // whole blocks of 64 tokens while the block's kept mass does not reach r
    setVs(0, i32x4.splat(tau - 1));
    const v0 = vs(0);
    for (; i + 64 <= V; i += 64) {
      let acc = i32x4.splat(0);
      for (let j = 0; j < 64; j += 4) {
        const v = v128.load(q + (<usize>(i + j) << 2));
        acc = i32x4.add(acc, v128.and(v, i32x4.gt_s(v, v0)));
      }
      const bs = hsum(acc);
      if (cum + bs > r) break;
      cum += bs;
    }
    // then four tokens at a time while their kept mass does not reach r
    for (; i + 4 <= V; i += 4) {
      const v = v128.load(q + (<usize>i << 2));
      const bs = hsum(v128.and(v, i32x4.gt_s(v, v0)));
      if (cum + bs > r) break;
      cum += bs;
    }
  }
  for (; i < V; i++) {
    const v = load<i32>(q + (<usize>i << 2));
    if (v >= tau) {
      cum += <u64>v;
      if (cum > r) return i;
    }
  }
  return V - 1; // not reached: r is below the kept mass
}

/** A cut below top-p's tau for weights summing to total: tau > (total - target) / V (the tokens
 *  below tau hold more than total - target, and there are at most V of them), and one less than
 *  its floor is safe for rounding. */
// @ts-ignore: decorator
@inline function safeCut(total: u64, target: f64, V: i32): i32 {
  return <i32>max<f64>(0, Math.floor((<f64>total - target) / <f64>V) - 1);
}

/** floor(R * mass / 2^24) for R, the session's next 24 random bits: a point below mass. */
// @ts-ignore: decorator
@inline function drawPoint(s: Session, mass: u64): u64 {
  const R = <u64>nextBits24(s);
  return R * (mass >> 24) + ((R * (mass & 0xFFFFFF)) >> 24);
}

/** After topkLast, with few kept tokens: their weights alone at their ids in q (every other
 *  token's zeroed) and, for top-p, in s.idx[0 .. topk) in place of their ids; returns the sum. */
function sparseWeights(s: Session, topk: i32, m: f32, k: f32, v3: bool): u64 {
  const lg = s.logits, q = s.probs;
  let total: u64 = 0;
  memory.fill(q, 0, <usize>s.model.V << 2);
  for (let j = 0; j < topk; j++) {
    const id = idxAt(s.idx, j);
    const w = weightOf((logitAt(lg, id) - m) * k, v3);
    store<i32>(q + (<usize>id << 2), w);
    idxSet(s.idx, j, w);
    total += <u64>w;
  }
  return total;
}

/** After topkLastGroups: the weights of the k kept tokens, s.idx[0 .. k) in id order, in
 *  q[0 .. k) in that order; returns their sum. */
function keptWeights(s: Session, topk: i32, m: f32, k: f32, v3: bool): u64 {
  const lg = s.logits, q = s.probs, g = s.idx;
  let total: u64 = 0;
  for (let j = 0; j < topk; j++) {
    const w = weightOf((logitAt(lg, idxAt(g, j)) - m) * k, v3);
    store<i32>(q + (<usize>j << 2), w);
    total += <u64>w;
  }
  return total;
}

/** Sampler version 2 (temperature > 0), after intSampler. */
function sampleV2(s: Session, k: f32, topk: i32, m: f32): i32 {
  const V = s.model.V, lg = s.logits, q = s.probs;
  const grouped = topk > 0 && topk <= V >> 5;
  let total: u64 = 0;
  // with few kept tokens, only their weights are worked out (the rest are zeroed)
  const sparse = topk > 0 && topk <= V >> 3;
  if (topk > 0) {
    if (grouped) {
      const last = topkLastGroups(s, topk, m);
      if (last >= 0) return drawKept(s, topk, m, k);
    }
    const last = topkLast(s, topk, m);
    if (sparse) {
      total = sparseWeights(s, topk, m, k, false);
    } else {
      total = weights(s, m, k, true, logitAt(lg, last), last);
    }
  } else {
    total = weights(s, m, k, false, 0, 0);
  }
  let tau = 1;
  let mass = total;
  if (s.topp < 1) {
    const target = <f64>s.topp * <f64>total;
    const cut = safeCut(total, target, V);
    tau = sparse ? nucleusTau(s.idx, topk, target, cut, s.idx, false) : nucleusTau(q, V, target, cut, s.idx, true);
    mass = nucleusMass;
  }
  return drawIndex(q, V, tau, drawPoint(s, mass));
}

/** The draw after topkLastGroups: the k kept tokens are s.idx[0 .. k), in id order; only their
 *  weights are worked out (every other token weighs 0), q[j] for s.idx[j], and the draw walks
 *  them in that order, which is the order by id. */
function drawKept(s: Session, topk: i32, m: f32, k: f32): i32 {
  const q = s.probs, g = s.idx;
  const total = keptWeights(s, topk, m, k, false);
  let tau = 1;
  let mass = total;
  if (s.topp < 1) {
    const target = <f64>s.topp * <f64>total;
    const cut = safeCut(total, target, s.model.V);
    tau = nucleusTau(q, topk, target, cut, q + (<usize>topk << 2), false);
    mass = nucleusMass;
  }
  return idxAt(g, drawIndex(q, topk, tau, drawPoint(s, mass)));
}

// ---- Sampler version 3 ------------------------------------------------------------------------
//
// Weights as version 2 computes them but at 2^22 (weight1v3), and top-p's threshold on a grid
// (nucleusGrid). The draw with top-p is by rejection: a token is drawn from every (top-k-kept)
// weight as without top-p, and taken if top-p keeps it (its weight's grid key is at least that
// of tau, i.e. the tokens whose steps lie above its own hold less than p of the mass); otherwise
// once more; after two refusals, from the kept tokens alone, as version 2 draws. Each refused
// draw has taken its own 24 random bits. The tokens top-p keeps hold at least p of the mass, so
// a draw is refused with probability at most 1 - p, and the three ways together give each kept
// token exactly its share of the kept mass. Deciding one drawn token costs one sum over the
// weights at one threshold, where finding tau costs several passes: the search is left for the
// third draw, needed at most (1 - p)^2 of the time.

/** Blocks of this many tokens have their weights' sums kept for the draw. */
const BLOCK = 64;

/** Version 3's weights: q (s.probs) as weight1v3 gives them (0 for the tokens top-k drops when
 *  masked: those ranking after (kx, kid)), each block of BLOCK tokens' sum in s.idx[0 ..
 *  ceil(V / BLOCK)), and their total. */
function weightsV3(s: Session, m: f32, k: f32, masked: bool, kx: f32, kid: i32): u64 {
  const lg = s.logits, q = s.probs, V = s.model.V, blk = s.idx;
  let total: u64 = 0;
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    setVs(0, f32x4.splat(m)); setVs(1, f32x4.splat(k)); setVs(2, f32x4.splat(kx)); setVs(3, i32x4.splat(kid));
    // the loop's vectors in locals, read once: V8 keeps them in registers
    const cm = vs(0), ck = vs(1), cx = vs(2), cid = vs(3), four = v128.load32_splat(SKI + 4);
    const cy = sk(K_YMIN), cg = sk(K_MAGIC), c3 = sk3(K3_D3), c2 = sk3(K3_D2);
    const c1 = sk3(K3_D1), c0 = sk(K_ONE), ce = v128.load32_splat(SKI3), ct = sk3(K3_TWO23);
    let ids = i32x4(0, 1, 2, 3);
    for (; i + BLOCK <= V; i += BLOCK) {
      let acc = i32x4.splat(0); // a lane sums 16 weights of at most 2^22
      if (masked) {
        for (let j = i; j < i + BLOCK; j += 4) {
          const o = <usize>j << 2;
          const x = v128.load(lg + o);
          const w = weight4v3k(f32x4.mul(f32x4.sub(x, cm), ck), cy, cg, c3, c2, c1, c0, ce, ct);
          const kw = v128.and(w, v128.or(f32x4.gt(x, cx), v128.and(f32x4.eq(x, cx), i32x4.le_s(ids, cid))));
          v128.store(q + o, kw);
          acc = i32x4.add(acc, kw);
          ids = i32x4.add(ids, four);
        }
      } else {
        // no test for lanes that weigh 0: on a language model's logits they are few
        for (let j = i; j < i + BLOCK; j += 4) {
          const o = <usize>j << 2;
          const w = weight4v3k(f32x4.mul(f32x4.sub(v128.load(lg + o), cm), ck), cy, cg, c3, c2, c1, c0, ce, ct);
          v128.store(q + o, w);
          acc = i32x4.add(acc, w);
        }
      }
      const b = hsum(acc);
      store<i32>(blk + (<usize>(i / BLOCK) << 2), <i32>b);
      total += b;
    }
  }
  // the last, partial block (every block in the scalar build), token by token
  for (; i < V; i += BLOCK) {
    const end = min(V, i + BLOCK);
    let b: u64 = 0;
    for (let j = i; j < end; j++) {
      const x = load<f32>(lg + (<usize>j << 2));
      const w = !masked || x > kx || (x == kx && j <= kid) ? weight1v3((x - m) * k) : 0;
      store<i32>(q + (<usize>j << 2), w);
      b += <u64>w;
    }
    store<i32>(blk + (<usize>(i / BLOCK) << 2), <i32>b);
    total += b;
  }
  return total;
}

/** The first token at which the running sum of q passes r (< the total), skipping whole blocks
 *  by the sums weightsV3 left in blk: drawIndex with tau = 1 (the same token), in fewer steps. */
export function drawBlocks(q: usize, blk: usize, V: i32, r: u64): i32 {
  const nb = (V + BLOCK - 1) / BLOCK;
  let cum: u64 = 0;
  let b = 0;
  for (; b < nb - 1; b++) {
    const x = <u64><u32>load<i32>(blk + (<usize>b << 2));
    if (cum + x > r) break;
    cum += x;
  }
  let i = b * BLOCK;
  const end = min(V, i + BLOCK);
  if (ASC_FEATURE_SIMD) {
    for (; i + 4 <= end; i += 4) {
      const bs = hsum(v128.load(q + (<usize>i << 2)));
      if (cum + bs > r) break;
      cum += bs;
    }
  }
  for (; i < end; i++) {
    cum += <u64>load<i32>(q + (<usize>i << 2));
    if (cum > r) return i;
  }
  return end - 1; // not reached: r is below the total
}

/** The sum of the weights >= t (t >= 1) among src[0..n). */
function sumAtLeast(src: usize, n: i32, t: i32): u64 {
  let sum: u64 = 0;
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    const ct = i32x4.splat(t - 1);
    while (i + 4 <= n) {
      // chunks of at most 64 vectors: a lane then sums at most 64 weights of at most 2^22
      const end = min(n & ~3, i + 256);
      let a = i32x4.splat(0), b = a;
      for (; i + 8 <= end; i += 8) {
        const v = v128.load(src + (<usize>i << 2)), u = v128.load(src + (<usize>i << 2), 16);
        a = i32x4.add(a, v128.and(v, i32x4.gt_s(v, ct)));
        b = i32x4.add(b, v128.and(u, i32x4.gt_s(u, ct)));
      }
      for (; i < end; i += 4) {
        const v = v128.load(src + (<usize>i << 2));
        a = i32x4.add(a, v128.and(v, i32x4.gt_s(v, ct)));
      }
      sum += hsum(a) + hsum(b);
    }
  }
  for (; i < n; i++) {
    const v = load<i32>(src + (<usize>i << 2));
    if (v >= t) sum += <u64>v;
  }
  return sum;
}

/** Whether top-p keeps a token of weight w (> 0): the weights a grid step or more above w's
 *  step, among src[0..n) (every weight that counts), hold less than target. */
function keeps(src: usize, n: i32, w: i32, target: f64): bool {
  const key = gridKey(w);
  if (key + 1 >= KEY_TOP) return true; // the best weight's step: no weight lies above it
  return <f64>sumAtLeast(src, n, gridOf(key + 1)) < target;
}

/** Sampler version 3 (temperature > 0), after intSampler. */
function sampleV3(s: Session, k: f32, topk: i32, m: f32): i32 {
  const V = s.model.V, lg = s.logits, q = s.probs;
  const grouped = topk > 0 && topk <= V >> 5;
  if (grouped) {
    const last = topkLastGroups(s, topk, m);
    if (last >= 0) return drawKeptV3(s, topk, m, k);
  }
  let total: u64 = 0;
  if (topk > 0 && topk <= V >> 3) {
    // few kept tokens: only their weights are worked out (the rest are zeroed), and listed in
    // s.idx for top-p
    topkLast(s, topk, m);
    total = sparseWeights(s, topk, m, k, true);
    if (s.topp < 1) {
      const target = <f64>s.topp * <f64>total;
      for (let a = 0; a < 2; a++) {
        const j = drawIndex(q, V, 1, drawPoint(s, total));
        if (keeps(s.idx, topk, load<i32>(q + (<usize>j << 2)), target)) return j;
      }
      const cut = safeCut(total, target, V);
      const tau = nucleusGrid(s.idx, topk, target, cut, s.idx, false);
      return drawIndex(q, V, tau, drawPoint(s, nucleusMass));
    }
    return drawIndex(q, V, 1, drawPoint(s, total));
  }
  if (topk > 0) {
    const last = topkLast(s, topk, m);
    total = weightsV3(s, m, k, true, logitAt(lg, last), last);
  } else {
    total = weightsV3(s, m, k, false, 0, 0);
  }
  if (s.topp < 1) {
    const target = <f64>s.topp * <f64>total;
    for (let a = 0; a < 2; a++) {
      const j = drawBlocks(q, s.idx, V, drawPoint(s, total));
      if (keeps(q, V, load<i32>(q + (<usize>j << 2)), target)) return j;
    }
    // the search overwrites the block sums in s.idx; the draw below does not need them
    const cut = safeCut(total, target, V);
    const tau = nucleusGrid(q, V, target, cut, s.idx, true);
    return drawIndex(q, V, tau, drawPoint(s, nucleusMass));
  }
  return drawBlocks(q, s.idx, V, drawPoint(s, total));
}

/** Version 3's draw after topkLastGroups: the k kept tokens are s.idx[0 .. k) in id order, their
 *  weights q[0 .. k) (drawKept's order). */
function drawKeptV3(s: Session, topk: i32, m: f32, k: f32): i32 {
  const q = s.probs, g = s.idx;
  const total = keptWeights(s, topk, m, k, true);
  if (s.topp < 1) {
    const target = <f64>s.topp * <f64>total;
    for (let a = 0; a < 2; a++) {
      const j = drawIndex(q, topk, 1, drawPoint(s, total));
      if (keeps(q, topk, load<i32>(q + (<usize>j << 2)), target)) return idxAt(g, j);
    }
    const cut = safeCut(total, target, s.model.V);
    const tau = nucleusGrid(q, topk, target, cut, q + (<usize>topk << 2), false);
    return idxAt(g, drawIndex(q, topk, tau, drawPoint(s, nucleusMass)));
  }
  return idxAt(g, drawIndex(q, topk, 1, drawPoint(s, total)));
}
