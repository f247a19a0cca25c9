// A plain TypeScript reference of the module's sampler versions 2 and 3 (assembly/sampling.ts,
// docs/runtime.md "Sampling"): written from the definitions, with no speed tricks (full sorts, no
// SIMD, no cut-offs), so that the module's fast code is checked against the rules themselves.
// Every f32 operation goes through Math.fround: for +, -, * of f32 values a double result rounded
// to f32 is the correctly rounded f32 result, so these are the bits the module computes.

const f = Math.fround;

/** xorshift64* seeded through splitmix64, as the module (BigInt: exact 64-bit arithmetic). */
export class ReferenceRng {
  private x: bigint;
  constructor(seed: number) {
    const M = (1n << 64n) - 1n;
    let x = BigInt(seed) & M;
    x = (x + 0x9e3779b97f4a7c15n) & M;
    x = ((x ^ (x >> 30n)) * 0xbf58476d1ce4e5b9n) & M;
    x = ((x ^ (x >> 27n)) * 0x94d049bb133111ebn) & M;
    x = x ^ (x >> 31n);
    this.x = x === 0n ? 0x2545f4914f6cdd1dn : x;
  }
  /** 24 random bits. */
  next24(): number {
    const M = (1n << 64n) - 1n;
    let x = this.x;
    x ^= x >> 12n;
    x = (x ^ (x << 25n)) & M;
    x ^= x >> 27n;
    this.x = x;
    return Number(((x * 0x2545f4914f6cdd1dn) & M) >> 40n);
  }
}

const bits = new DataView(new ArrayBuffer(4));

/** A token's weight from y = (x - max) * k, k = (1/T) * log2 e: 2^(24 + y), with y = n + f (n whole,
 *  f in [-1/2, 1/2]) and 2^f by its Taylor polynomial of degree 4; every step in f32. */
export function weightOf(y: number): number {
  if (Number.isNaN(y)) return 0;
  const MAGIC = f(12582912.0);
  const C = [0.009618129107628477, 0.05550410866482158, 0.2402265069591007, 0.6931471805599453, 1].map(f);
  const yc = y < -30 ? -30 : y;
  const t = f(yc + MAGIC);
  const n = f(t - MAGIC);
  const fr = f(yc - n);
  let p = C[0]!;
  for (let i = 1; i < C.length; i++) p = f(f(p * fr) + C[i]!);
  // 2^(n + 24), n = t - MAGIC
  bits.setFloat32(0, t);
  bits.setInt32(0, ((bits.getInt32(0) + 151) << 23) | 0);
  return Math.trunc(f(p * bits.getFloat32(0)));
}

/** Version 3's weight from y: 2^(22 + y) rounded to a whole number, with y clamped below at -30
 *  (NaN too), split as in version 2, and 2^f by a polynomial of degree 3; every step in f32. */
export function weightOfV3(y: number): number {
  const MAGIC = f(12582912.0);
  const TWO23 = f(8388608.0);
  const D = [0.05459283, 0.24221838, 0.69336869, 1].map(f);
  const yc = -30 < y ? y : -30;
  const t = f(yc + MAGIC);
  const n = f(t - MAGIC);
  const fr = f(yc - n);
  let p = D[0]!;
  for (let i = 1; i < D.length; i++) p = f(f(p * fr) + D[i]!);
  // 2^(n + 22), n = t - MAGIC
  bits.setFloat32(0, t);
  bits.setInt32(0, ((bits.getInt32(0) + 149) << 23) | 0);
  const w = f(p * bits.getFloat32(0));
  // below 2^23, so w + 2^23 is w rounded to a whole number (ties to even), plus 2^23
  return f(w + TWO23) - TWO23;
}

/** Version 3's grid key of a weight: w below 16, then 16 keys per octave (w's f32 exponent and
 *  top four mantissa bits). gridOf(k) is the smallest weight whose key is k. */
export function gridKey(w: number): number {
  if (w < 16) return w;
  bits.setFloat32(0, w);
  return (bits.getInt32(0) >> 19) - (0x41800000 >> 19) + 16;
}

export function gridOf(k: number): number {
  if (k < 16) return k;
  bits.setInt32(0, (k - 16 + (0x41800000 >> 19)) << 19);
  return bits.getFloat32(0);
}

export interface ReferenceOptions {
  temperature: number;
  /** 0 = off */
  topK: number;
  /** 1 = off */
  topP: number;
}

const rank = (v: number): number => (Number.isNaN(v) ? -Infinity : v);

function argmax(lg: Float32Array): number {
  let best = 0;
  for (let i = 1; i < lg.length; i++) if (rank(lg[i]!) > rank(lg[best]!)) best = i;
  return best;
}

/** The integer weights the draw uses: q[i], about e^((x_i - max) / T) * 2^24, for the kept tokens,
 *  0 for the others (NaN logits, and those top-k drops); null when the draw is the argmax. */
export function referenceWeights(lg: Float32Array, o: ReferenceOptions, version = 2): number[] | null {
  const V = lg.length;
  const k = f(f(1 / f(o.temperature)) * f(Math.LOG2E));
  let m = -Infinity;
  for (let i = 0; i < V; i++) m = Math.max(m, rank(lg[i]!));
  if (!Number.isFinite(m) || !Number.isFinite(k)) return null;
  const keep = new Array<boolean>(V).fill(true);
  if (o.topK > 0 && o.topK < V) {
    const order = Array.from({ length: V }, (_, i) => i).sort((a, b) => rank(lg[b]!) - rank(lg[a]!) || a - b);
    keep.fill(false);
    for (let j = 0; j < o.topK; j++) keep[order[j]!] = true;
  }
  const w = version === 3 ? weightOfV3 : weightOf;
  return Array.from(lg, (x, i) => (keep[i] ? w(f(f(x - m) * k)) : 0));
}

/** floor(R * mass / 2^24) for the next 24 random bits R, exactly. */
function drawPoint(rng: ReferenceRng, mass: number): number {
  const R = rng.next24();
  const hi = Math.floor(mass / 16777216),
    lo = mass % 16777216;
  return R * hi + Math.floor((R * lo) / 16777216);
}

/** The first token, by id, among those with q >= tau, at which their running sum passes r. */
function walk(q: number[], tau: number, r: number): number {
  let cum = 0;
  for (let i = 0; i < q.length; i++) {
    if (q[i]! >= tau) {
      cum += q[i]!;
      if (cum > r) return i;
    }
  }
  throw new Error('unreachable: r < the kept mass');
}

/** The token sampler version 2 or 3 draws from lg, using the 24-bit draws of rng it needs (none
 *  when greedy; version 3 with top-p: one to three). */
export function referenceSample(lg: Float32Array, o: ReferenceOptions, rng: ReferenceRng, version = 2): number {
  if (o.temperature === 0) return argmax(lg);
  const q = referenceWeights(lg, o, version);
  if (q === null) return argmax(lg);
  const total = q.reduce((a, b) => a + b, 0);
  if (f(o.topP) >= 1) return walk(q, 1, drawPoint(rng, total));
  const target = f(o.topP) * total;
  const sorted = q.filter((v) => v > 0).sort((a, b) => b - a);
  if (version === 3) {
    // the largest grid key K whose tokens (every token with q >= gridOf(K)) hold at least p of
    // the mass: the key of a weight, the first (from the top) at which the running sum over
    // whole keys reaches the target
    let K = 0,
      mass = 0;
    for (let j = 0; j < sorted.length; j++) {
      mass += sorted[j]!;
      K = gridKey(sorted[j]!);
      if ((j + 1 === sorted.length || gridKey(sorted[j + 1]!) !== K) && mass >= target) break;
    }
    // by rejection: a token drawn from all the weights is taken if top-p keeps it; two tries,
    // then a draw from the kept tokens alone
    for (let a = 0; a < 2; a++) {
      const i = walk(q, 1, drawPoint(rng, total));
      if (gridKey(q[i]!) >= K) return i;
    }
    return walk(q, gridOf(K), drawPoint(rng, mass));
  }
  // the largest weight tau whose tokens (every token with q >= tau) hold at least p of the mass
  let tau = 1,
    mass = 0;
  for (let j = 0; j < sorted.length; j++) {
    mass += sorted[j]!;
    // a whole group of equal weights is in or out together
    if (sorted[j + 1] !== sorted[j] && mass >= target) {
      tau = sorted[j]!;
      break;
    }
  }
  return walk(q, tau, drawPoint(rng, mass));
}
