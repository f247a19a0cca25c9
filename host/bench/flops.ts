// Parameters and FLOPs per token of an Itera-Lite model, counted exactly from the forward pass in
// ../shared/spec/architecture.md at one position (one decode step), and the original research
// code's approximate formula beside it, labelled as such. Platform-neutral.
//
// Counting convention (docs/bench.md repeats it):
//   - a multiply-add (MAC) of a matrix-vector product counts as 2 FLOPs;
//   - every other arithmetic operation on one value counts as 1 FLOP: add, subtract, multiply,
//     divide, and each transcendental (exp, log, erf, sqrt) also as 1;
//   - comparisons and selections (the top-k pick, softplus's x > 20 test, argmax) count 0, as do
//     memory moves (embedding lookups, the conv window shift);
//   - A = -exp(A_log) depends only on the weights: computed once at load, 0 per token;
//   - the causal conv counts all K taps (the runtime multiplies the zero padding too);
//   - LayerNorm over n values: mean (n adds, 1 divide), centring (n), variance (n multiplies,
//     n adds, 1 divide), + eps (1), square root (1), 1/x (1), scaling (n), affine (2n): 7n + 4.

import type { IteraConfig } from '../runtime/types.js';

export interface FlopsBreakdown {
  /** token embedding + position embedding */
  embedding: number;
  /** LayerNorms before every SSM block, every FFN/MoE and the output */
  layerNorm: number;
  inProj: number;
  conv: number;
  /** SiLU of the conv output (s = SiLU(c)) */
  convSilu: number;
  deltaProj: number;
  /** softplus over di values and their mean */
  softplusMean: number;
  /** exp(delta A), delta (B s), z = dA z + ... */
  scan: number;
  /** C z + D s */
  output: number;
  /** SiLU(g) and y * SiLU(g) */
  gating: number;
  outProj: number;
  /** the two residual adds of every layer */
  residual: number;
  router: number;
  /** softmax over the k picked router logits */
  gateSoftmax: number;
  /** the k experts' w1, GELU, w2 and the gate-weighted sum (MoE layers) */
  experts: number;
  /** w1, GELU, w2 (plain FFN layers) */
  ffn: number;
  lmHead: number;
}

export interface FlopsCount {
  /** FLOPs of the whole forward at one position, logits included. */
  total: number;
  /** The part that is multiply-adds (2 per MAC): the matrix-vector products, the conv taps, the
   *  gate-weighted sum of the experts. */
  macFlops: number;
  /** The rest: elementwise operations and reductions (1 per operation). */
  elementwise: number;
  /** The forward without the lm_head. (A prefill that keeps only the last logits costs less at
   *  every position but the last: there its last layer only carries the recurrent state, see
   *  docs/performance.md.) */
  withoutLmHead: number;
  breakdown: FlopsBreakdown;
  convention: string;
}

export const FLOPS_CONVENTION =
  '1 multiply-add = 2 FLOPs; every other arithmetic op on one value (add, sub, mul, div, exp, log, erf, sqrt) = 1 FLOP; ' +
  'comparisons, top-k selection and memory moves = 0; A = -exp(A_log) precomputed at load (0); conv counts all K taps; ' +
  'LayerNorm over n values = 7n + 4';

/** LayerNorm over n values (see the convention above). */
export const layerNormFlops = (n: number): number => 7 * n + 4;
/** SiLU x * sigmoid(x), sigmoid = 1 / (1 + exp(-x)): exp, add, divide, multiply. */
const SILU = 4;
/** GELU 0.5 x (1 + erf(x / sqrt 2)): multiply, erf, add, multiply, multiply. */
const GELU = 5;
/** softplus log(1 + exp(x)): exp, add, log. */
const SOFTPLUS = 3;

/** The exact count for one position of the forward (see the convention at the top). */
export function flopsPerToken(c: IteraConfig): FlopsCount {
  const {
    vocabSize: V,
    hiddenSize: d,
    ssmInnerSize: di,
    ssmStateSize: N,
    ssmConvKernel: K,
    numExperts: E,
    expertSize: f,
    topK: k,
  } = c;
  const L = c.numLayers;
  const moe = new Set(c.moeLayers);
  const M = moe.size;
  const b: FlopsBreakdown = {
    embedding: d,
    layerNorm: (2 * L + 1) * layerNormFlops(d),
    inProj: L * 2 * (2 * di) * d,
    conv: L * (2 * di * K + di), // K MACs per channel + the bias
    convSilu: L * SILU * di,
    deltaProj: L * (2 * di * di + di), // matvec + bias
    softplusMean: L * (SOFTPLUS * di + di + 1), // softplus, di adds (sum), 1 divide
    // exp(delta*A): N mul + N exp; B s: N*di MACs; delta * (B s): N; dA * z + u: 2N
    scan: L * (2 * N + 2 * N * di + N + 2 * N),
    output: L * (2 * di * N + 2 * di), // C z (di*N MACs) + D * s (mul, add)
    gating: L * (SILU * di + di),
    outProj: L * 2 * d * di,
    residual: L * 2 * d,
    router: M * 2 * E * d,
    // softmax over k: k exp (the max subtraction adds k subtracts), k-1 adds, k divides
    gateSoftmax: M * (k > 0 ? k + k + (k - 1) + k : 0),
    // each picked expert: w1 (f*d MACs), GELU (f), w2 (d*f MACs), gate * out + accumulate (d MACs)
    experts: M * k * (2 * f * d + GELU * f + 2 * d * f + 2 * d),
    ffn: (L - M) * (2 * f * d + GELU * f + 2 * d * f),
    lmHead: 2 * V * d,
  };
  const macFlops =
    b.inProj +
    L * 2 * di * K +
    L * 2 * di * di +
    L * 2 * N * di +
    L * 2 * di * N +
    b.outProj +
    b.router +
    M * k * (2 * f * d + 2 * d * f + 2 * d) +
    (L - M) * (2 * f * d + 2 * d * f) +
    b.lmHead;
  const total = Object.values(b).reduce((s, x) => s + x, 0);
  return {
    total,
    macFlops,
    elementwise: total - macFlops,
    withoutLmHead: total - b.lmHead,
    breakdown: b,
    convention: FLOPS_CONVENTION,
  };
}

/** The original research code's approximate formula (models/itera_lite.py, get_efficiency_stats:
 *  "approx_flops_per_token"): L * d^2 * e * 2 + |moe_layers| * d * f * 2 * k, with e = di / d. It
 *  counts in_proj-sized work per layer and the experts' first matrix only; it gives 57,344 for
 *  the micro configuration, the figure the Phase 4 report quotes. */
export function researchFormulaFlops(c: IteraConfig): number {
  const e = c.ssmInnerSize / c.hiddenSize;
  return c.numLayers * c.hiddenSize ** 2 * e * 2 + c.moeLayers.length * c.hiddenSize * c.expertSize * 2 * c.topK;
}

export const RESEARCH_FORMULA = 'L*d^2*e*2 + |moe_layers|*d*f*2*k (the original research code, approx_flops_per_token)';

/** Multiply-adds of the matrix-vector products per position of a P-token prompt that keeps only
 *  the last position's logits, as the runtime does it: every position but the last runs its last
 *  layer only as far as the scan needs (in_proj's first di rows, delta_proj, B; no out_proj, no
 *  FFN/MoE), and the lm_head runs once. Matrix products only: in_proj, delta_proj, B, out_proj,
 *  the router, the experts or the FFN, the lm_head (the conv taps and C z, which are elementwise
 *  code, are left out, so the figure is a lower bound on the arithmetic). */
export function prefillMatrixMacs(c: IteraConfig, P: number): number {
  const {
    vocabSize: V,
    hiddenSize: d,
    ssmInnerSize: di,
    ssmStateSize: N,
    numExperts: E,
    expertSize: f,
    topK: k,
    numLayers: L,
  } = c;
  const moe = new Set(c.moeLayers);
  const ssm = 2 * di * d + di * di + N * di + d * di;
  const carry = di * d + di * di + N * di;
  const mix = (i: number): number => (moe.has(i) ? E * d + k * 2 * f * d : 2 * f * d);
  let below = 0; // every layer but the last, in full
  for (let i = 0; i < L - 1; i++) below += ssm + mix(i);
  const last = below + ssm + mix(L - 1) + V * d;
  return ((P - 1) * (below + carry) + last) / P;
}
