// Sampler version 2 against its plain TypeScript definition (sampler-reference.ts) on 10,000 random
// logit vectors (ties, NaN, infinities, peaked and flat ones; every kind of setting), in the SIMD
// and the scalar build: the same token every time.

import t from 'tap';
import { WasmModel, type WasmSession } from '../runtime/runtime.js';
import { SAMPLER_V2 } from '../runtime/abi.js';
import type { IteraConfig } from '../runtime/types.js';
import { exportsOf, lcg, randomWeights, TINY, weightSource, type BuildName } from './helpers.js';
import {
  referenceSample,
  referenceWeights,
  ReferenceRng,
  weightOf,
  type ReferenceOptions,
} from './sampler-reference.js';

const VECTORS = 10_000;
// V = 2000 as the default model has: top-k up to V / 32 searches by groups of 16 tokens
const CONFIGS: IteraConfig[] = [TINY, { ...TINY, vocabSize: 1003 }, { ...TINY, vocabSize: 2000 }];

interface Case {
  logits: Float32Array;
  o: ReferenceOptions;
  seed: number;
}

/** Case n: a logit vector of one of several shapes and a setting, all from the LCG. */
function makeCase(n: number, V: number, rnd: () => number): Case {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(((rnd() + 1) / 2) * xs.length)]!;
  const scale = pick([0.3, 2, 6, 15, 40]);
  const lg = new Float32Array(V);
  for (let i = 0; i < V; i++) lg[i] = rnd() * scale;
  switch (n % 8) {
    case 1: // ties: a few distinct values
      for (let i = 0; i < V; i++) lg[i] = Math.round(lg[i]! / scale) * scale;
      break;
    case 2: // NaN here and there
      for (let i = 0; i < V; i++) if (rnd() < -0.8) lg[i] = NaN;
      break;
    case 3: // -Infinity here and there
      for (let i = 0; i < V; i++) if (rnd() < -0.6) lg[i] = -Infinity;
      break;
    case 4: // peaked: one far ahead
      lg[Math.floor(((rnd() + 1) / 2) * V)] = 30;
      break;
    case 5: // all equal, or all NaN, or an infinite one
      if (rnd() < -0.5) lg.fill(1.25);
      else if (rnd() < 0) lg.fill(NaN);
      else lg[Math.floor(((rnd() + 1) / 2) * V)] = rnd() < 0 ? Infinity : -Infinity;
      break;
    case 6: // a long flat tail below a few leaders
      for (let i = 0; i < V; i++) lg[i] = rnd() < 0.9 ? -5 + rnd() * 0.01 : 3 + rnd();
      break;
    default:
      break;
  }
  const o: ReferenceOptions = {
    temperature: pick([0, 1e-39, 1e-30, 0.05, 0.3, 0.8, 0.8, 1, 1, 1.5, 4]),
    topK: pick([0, 0, 0, 1, 2, 5, 40, V - 1, V]),
    topP: pick([1, 1, 0.999, 0.99, 0.95, 0.95, 0.9, 0.5, 0.1, 1e-6]),
  };
  return { logits: lg, o, seed: n * 7919 + 1 };
}

async function sessionFor(build: BuildName, c: IteraConfig): Promise<{ m: WasmModel; s: WasmSession }> {
  const ex = await exportsOf(build);
  const m = new WasmModel(ex, c, weightSource(c, randomWeights(c, 3)));
  const s = m.newSession();
  s.prefill([1]);
  return { m, s };
}

/** The module's token for a case (sample() draws from the session's logits, which we overwrite). */
function moduleSample(m: WasmModel, s: WasmSession, k: Case): number {
  s.setSampler({ ...k.o, seed: k.seed, sampler: SAMPLER_V2 });
  new Float32Array(m.ex.memory.buffer, m.ex.session_logits(s.ptr), k.logits.length).set(k.logits);
  return m.ex.sample(s.ptr);
}

t.test('the weight function: the best token weighs 2^24, weights fall with y, 0 far below', async (t) => {
  t.equal(weightOf(0), 16777216, 'y = 0: 2^24 exactly');
  t.equal(weightOf(-25), 0, 'y = -25: 0 (the module skips four such at once)');
  t.equal(weightOf(-Infinity), 0, '-Infinity: 0');
  t.equal(weightOf(NaN), 0, 'NaN: 0');
  let worst = 0,
    falls = true;
  for (let y = -24; y <= 0; y += 1 / 64) {
    const w = weightOf(Math.fround(y)),
      exact = 2 ** (24 + y);
    // relative error of the polynomial, plus 1 for the truncation
    worst = Math.max(worst, (Math.abs(w - exact) - 1) / exact);
    if (y > -24 && w < weightOf(Math.fround(y - 1 / 64))) falls = false;
  }
  t.ok(worst < 1e-4, `within ${worst.toExponential(2)} of 2^(24 + y), truncation aside`);
  t.ok(falls, 'never rises as y falls');
});

t.test(`sampler 2 equals the TypeScript reference on ${VECTORS} random logit vectors`, async (t) => {
  const rnd = lcg(2026);
  const cases: { c: number; k: Case; want: number }[] = [];
  for (let n = 0; n < VECTORS; n++) {
    const c = n % CONFIGS.length;
    const k = makeCase(n, CONFIGS[c]!.vocabSize, rnd);
    cases.push({ c, k, want: referenceSample(k.logits, k.o, new ReferenceRng(k.seed)) });
  }
  // the cases reach every branch: top-k, top-p, argmax fallbacks, tokens of weight 0
  t.ok(cases.filter((x) => x.k.o.topP < 1 && x.k.o.temperature > 0).length > 1000, 'top-p cases');
  t.ok(cases.filter((x) => x.k.o.topK > 0 && x.k.o.topK < CONFIGS[x.c]!.vocabSize).length > 1000, 'top-k cases');
  t.ok(
    cases.filter((x) => x.k.o.temperature > 0 && referenceWeights(x.k.logits, x.k.o) === null).length > 50,
    'argmax fallbacks',
  );
  for (const build of ['simd', 'scalar'] as const) {
    const ss = await Promise.all(CONFIGS.map((c) => sessionFor(build, c)));
    let bad = 0;
    for (const { c, k, want } of cases) {
      const got = moduleSample(ss[c]!.m, ss[c]!.s, k);
      if (got !== want && bad++ < 5)
        t.fail(`${build}: case V=${k.logits.length} ${JSON.stringify(k.o)} seed ${k.seed}: ${got}, reference ${want}`);
    }
    t.equal(bad, 0, `${build} build: every token equals the reference's`);
    for (const x of ss) x.m.free();
  }
});

t.test('sampler 2 draws in proportion to the weights', async (t) => {
  // one fixed vector, many draws: frequencies within 5 sigma of the weights' shares
  const { m, s } = await sessionFor('simd', CONFIGS[1]!);
  const V = CONFIGS[1]!.vocabSize;
  const lg = new Float32Array(V).map((_, i) => (i % 97 === 0 ? 2 + (i % 5) : -3 + (i % 11) * 0.1));
  const o = { temperature: 0.9, topK: 0, topP: 0.9 };
  const q = referenceWeights(lg, o)!;
  s.setSampler({ ...o, seed: 9 });
  new Float32Array(m.ex.memory.buffer, m.ex.session_logits(s.ptr), V).set(lg);
  const counts = new Map<number, number>();
  const N = 5000;
  for (let i = 0; i < N; i++) {
    const id = m.ex.sample(s.ptr);
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  const rng = new ReferenceRng(9);
  const ref = new Map<number, number>();
  for (let i = 0; i < N; i++) {
    const id = referenceSample(lg, o, rng);
    ref.set(id, (ref.get(id) ?? 0) + 1);
  }
  t.same(counts, ref, 'the same 5000 draws as the reference (the RNG advances alike)');
  // the kept tokens: every one at least as heavy as the lightest drawn (top-p keeps by weight)
  const lightest = Math.min(...[...counts.keys()].map((i) => q[i]!));
  const kept = q.flatMap((w, i) => (w >= lightest ? [i] : []));
  const mass = kept.reduce((a, i) => a + q[i]!, 0);
  let worst = 0;
  for (const i of kept) {
    const p = q[i]! / mass;
    worst = Math.max(worst, Math.abs((counts.get(i) ?? 0) - N * p) / Math.sqrt(N * p * (1 - p)));
  }
  t.ok(worst < 5, `frequencies within ${worst.toFixed(2)} sigma of the kept weights`);
  m.free();
});

t.test('the sampler version: 1 and 2 run, anything else is refused (host and module)', async (t) => {
  const { m, s } = await sessionFor('simd', TINY);
  for (const sampler of [0, 3, 1.5, NaN])
    t.throws(() => s.setSampler({ temperature: 1, sampler }), { code: 'BAD_SAMPLER' });
  t.ok(m.ex.sampler_set_version(s.ptr, 0) < 0 && m.ex.sampler_set_version(s.ptr, 3) < 0, 'the module refuses 0 and 3');
  const lg = new Float32Array(TINY.vocabSize).map((_, i) => Math.sin(i) * 3);
  const o = { temperature: 1, topK: 0, topP: 0.9 };
  const draws = (sampler: number): number[] => {
    s.setSampler({ ...o, seed: 4, sampler });
    new Float32Array(m.ex.memory.buffer, m.ex.session_logits(s.ptr), lg.length).set(lg);
    return Array.from({ length: 50 }, () => m.ex.sample(s.ptr));
  };
  const rng = new ReferenceRng(4);
  t.same(
    draws(2),
    Array.from({ length: 50 }, () => referenceSample(lg, o, rng)),
    'sampler 2 is the reference',
  );
  t.notSame(draws(1), draws(2), 'sampler 1 draws differently from the same seed');
  m.free();
});
