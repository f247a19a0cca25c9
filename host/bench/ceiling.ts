// Prefill against the engine's SIMD ceiling: how long a prompt position's matrix multiply-adds
// would take at the peak rate `itera diag` measured (simdPeak), beside what ours and each peer
// took. Derived from a bench document only; platform-neutral.

import type { IteraConfig } from '../runtime/types.js';
import { prefillMatrixMacs } from './flops.js';
import type { BenchDocument, ModelResult } from './schema.js';

export interface PrefillCeiling {
  /** which probe's peak applies: the model's matrices are quantized (int16 dot products) or f32 */
  kind: 'int16 dot + add' | 'f32 mul + add';
  /** G multiply-adds/s */
  peak: number;
  promptTokens: number;
  macsPerPosition: number;
  /** µs per position if the matrix products ran at the peak and nothing else took time */
  floorUs: number;
  /** µs per position, median, per engine id (ours: 'itera') */
  us: Record<string, number>;
}

const QUANTIZED = ['Q8_0', 'Q4_0', 'I8'];

/** null where the run has no measured ceiling (older documents) or no prefill. */
export function prefillCeiling(doc: BenchDocument, m: ModelResult): PrefillCeiling | null {
  const peak = doc.diag.simdPeak;
  const ours = m.engines.find((e) => e.id === 'itera');
  if (!peak || !ours?.prefill) return null;
  const quantized = Object.keys(m.tensorTypes).some((t) => QUANTIZED.includes(t));
  const rate = quantized ? peak.i16DotAdd.value : peak.f32MulAdd.value;
  if (rate === null || !(rate > 0)) return null;
  const P = ours.prefill.tokens;
  const macs = prefillMatrixMacs(m.config as unknown as IteraConfig, P);
  const us: Record<string, number> = {};
  for (const e of m.engines) if (e.prefill) us[e.id] = 1e6 / e.prefill.tokensPerSecond.median;
  return {
    kind: quantized ? 'int16 dot + add' : 'f32 mul + add',
    peak: rate,
    promptTokens: P,
    macsPerPosition: macs,
    floorUs: macs / (rate * 1e3),
    us,
  };
}
