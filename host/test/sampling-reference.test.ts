// Sampler versions 2 and 3 against their plain TypeScript definitions (sampler-reference.ts) on
// 10,000 random logit vectors each (ties, NaN, infinities, peaked and flat ones; every kind of
// setting), in the SIMD and the scalar build: the same token every time.

import t from 'tap';
import { WasmModel, type WasmSession } from '../runtime/runtime.js';
import { SAMPLER_V2, SAMPLER_V3, SAMPLER_VERSION } from '../runtime/abi.js';
import type { IteraConfig } from '../runtime/types.js';
import { exportsOf, hooksOf, lcg, randomWeights, TINY, weightSource, type BuildName } from './helpers.js';
import {
  referenceSample,
  referenceWeights,
  ReferenceRng,
  weightOf,
  weightOfV3,
  gridKey,
  gridOf,
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
function moduleSample(m: WasmModel, s: WasmSession, k: Case, sampler: number): number {
  s.setSampler({ ...k.o, seed: k.seed, sampler });
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

t.test('version 3 weights: the best token weighs 2^22, rounded, within 1.2e-4, never rising', async (t) => {
  t.equal(weightOfV3(0), 4194304, 'y = 0: 2^22 exactly');
  t.equal(weightOfV3(-23.5), 0, 'y = -23.5: 0');
  t.equal(weightOfV3(-Infinity), 0, '-Infinity: 0');
  t.equal(weightOfV3(NaN), 0, 'NaN: 0');
  let worst = 0,
    falls = true;
  for (let y = -22; y <= 0; y += 1 / 256) {
    const w = weightOfV3(Math.fround(y)),
      exact = 2 ** (22 + y);
    t.ok(Number.isInteger(w) && w >= 0 && w <= 4194304, 'a whole number in [0, 2^22]') || t.bailout();
    // relative error of the polynomial, rounding (at most 1/2) aside
    worst = Math.max(worst, (Math.abs(w - exact) - 0.5) / exact);
    if (y > -22 && w < weightOfV3(Math.fround(y - 1 / 256))) falls = false;
  }
  t.ok(worst < 1.2e-4, `within ${worst.toExponential(2)} of 2^(22 + y), rounding aside`);
  t.ok(falls, 'never rises as y falls');
});

t.test("version 3's grid: keys are monotone, gridOf is the smallest weight of its key", async (t) => {
  let bad = 0;
  for (let w = 0; w <= 1 << 22; w += w < 4096 ? 1 : 97) {
    const k = gridKey(w);
    if (!(gridOf(k) <= w && gridKey(gridOf(k)) === k && gridOf(k + 1) > w && gridKey(w + 1) >= k) && bad++ < 5)
      t.fail(`w ${w}: key ${k}, gridOf ${gridOf(k)}, next ${gridOf(k + 1)}`);
  }
  t.equal(bad, 0, 'w >= gridOf(k) exactly when gridKey(w) >= k');
  t.equal(gridKey(1 << 22), 304, 'the best weight, 2^22, has key 304');
  t.equal(gridOf(17), 17, 'every integer below 32 is on the grid');
  t.equal(gridOf(gridKey(33)), 32, 'above 32, five significant bits: 33 lies on the step of 32');
});

for (const version of [SAMPLER_V2, SAMPLER_V3]) {
  t.test(`sampler ${version} equals the TypeScript reference on ${VECTORS} random logit vectors`, async (t) => {
    const rnd = lcg(2026 + version);
    const cases: { c: number; k: Case; want: number }[] = [];
    for (let n = 0; n < VECTORS; n++) {
      const c = n % CONFIGS.length;
      const k = makeCase(n, CONFIGS[c]!.vocabSize, rnd);
      cases.push({ c, k, want: referenceSample(k.logits, k.o, new ReferenceRng(k.seed), version) });
    }
    // the cases reach every branch: top-k, top-p, argmax fallbacks, tokens of weight 0
    t.ok(cases.filter((x) => x.k.o.topP < 1 && x.k.o.temperature > 0).length > 1000, 'top-p cases');
    t.ok(cases.filter((x) => x.k.o.topK > 0 && x.k.o.topK < CONFIGS[x.c]!.vocabSize).length > 1000, 'top-k cases');
    t.ok(
      cases.filter((x) => x.k.o.temperature > 0 && referenceWeights(x.k.logits, x.k.o, version) === null).length > 50,
      'argmax fallbacks',
    );
    for (const build of ['simd', 'scalar'] as const) {
      const ss = await Promise.all(CONFIGS.map((c) => sessionFor(build, c)));
      let bad = 0;
      for (const { c, k, want } of cases) {
        const got = moduleSample(ss[c]!.m, ss[c]!.s, k, version);
        if (got !== want && bad++ < 5)
          t.fail(
            `${build}: case V=${k.logits.length} ${JSON.stringify(k.o)} seed ${k.seed}: ${got}, reference ${want}`,
          );
      }
      t.equal(bad, 0, `${build} build: every token equals the reference's`);
      for (const x of ss) x.m.free();
    }
  });
}

t.test('every weight the module computes equals the reference weight (versions 2 and 3)', async (t) => {
  // the weights themselves, not only the tokens drawn from them: a one-off error in a weight
  // moves a draw too rarely to show in the cases above
  const V = 2000;
  const rnd = lcg(77);
  for (const build of ['simd', 'scalar'] as const) {
    const ex = await hooksOf(build);
    const c = { ...TINY, vocabSize: V };
    const m = new WasmModel(ex, c, weightSource(c, randomWeights(c, 3)));
    const s = m.newSession();
    s.prefill([1]);
    for (const version of [SAMPLER_V2, SAMPLER_V3]) {
      let bad = 0,
        checked = 0;
      for (let n = 0; n < 400; n++) {
        const k = makeCase(n, V, rnd);
        const o = { ...k.o, topK: 0 };
        const want = referenceWeights(k.logits, o, version);
        if (o.temperature === 0 || want === null) continue;
        s.setSampler({ ...o, seed: k.seed, sampler: version });
        new Float32Array(ex.memory.buffer, ex.session_logits(s.ptr), V).set(k.logits);
        ex.sample(s.ptr);
        const got = new Int32Array(ex.memory.buffer, ex.test_sampler_weights(s.ptr), V);
        checked++;
        const i = want.findIndex((w, j) => w !== got[j]);
        if (i >= 0 && bad++ < 3)
          t.fail(`${build}, sampler ${version}, case ${n}: token ${i} weighs ${got[i]}, reference ${want[i]}`);
      }
      t.ok(checked > 250, `${checked} vectors`);
      t.equal(bad, 0, `${build} build, sampler ${version}: every weight of every vector`);
    }
    m.free();
  }
});

t.test("version 3's walk by block sums: the token of every point, block edges included", async (t) => {
  for (const build of ['simd', 'scalar'] as const) {
    for (const V of [50, 1003, 2000]) {
      const ex = await hooksOf(build);
      const c = { ...TINY, vocabSize: V };
      const m = new WasmModel(ex, c, weightSource(c, randomWeights(c, 3)));
      const s = m.newSession();
      s.prefill([1]);
      const rnd = lcg(V);
      const lg = new Float32Array(V).map(() => rnd() * 4);
      for (let i = 0; i < V; i += 7) lg[i] = -Infinity; // some weigh 0
      s.setSampler({ temperature: 1, seed: 1, sampler: SAMPLER_V3 });
      new Float32Array(ex.memory.buffer, ex.session_logits(s.ptr), V).set(lg);
      ex.sample(s.ptr); // leaves the weights and the block sums
      const q = Array.from(new Int32Array(ex.memory.buffer, ex.test_sampler_weights(s.ptr), V));
      t.same(q, referenceWeights(lg, { temperature: 1, topK: 0, topP: 1 }, 3), `${build}, V ${V}: the weights`);
      // every running sum and its neighbours: the first token whose running sum passes r
      const points: number[] = [0];
      let cum = 0;
      for (const w of q) {
        cum += w;
        points.push(cum - 1, cum);
      }
      let bad = 0;
      let want = 0,
        run = q[0]!;
      for (const r of points.filter((r) => r >= 0 && r < cum).sort((a, b) => a - b)) {
        while (run <= r) run += q[++want]!;
        const got = ex.test_draw_blocks(s.ptr, r);
        if (got !== want && bad++ < 3) t.fail(`${build}, V ${V}, r ${r}: token ${got}, the walk gives ${want}`);
      }
      t.equal(bad, 0, `${build}, V ${V}: every point's token`);
      m.free();
    }
  }
});

t.test('version 3 top-p: a token whose step has exactly p of the mass above it is not kept', async (t) => {
  // weights 2^22, 2^21, 2^21 (y = 0, -1, -1), total 2^23, p = 0.5: the best token alone holds the
  // target, 2^22, so it alone is kept; the two others have exactly the target above their step
  const k = Math.fround(Math.fround(1 / 1) * Math.fround(Math.LOG2E));
  let d = Math.fround(-1 / k);
  for (let i = 0; i < 64 && Math.fround(d * k) !== -1; i++)
    d = Math.fround(d + (Math.fround(d * k) < -1 ? 1e-7 : -1e-7));
  t.equal(Math.fround(d * k), -1, 'a logit gap that gives y = -1 exactly');
  t.equal(weightOfV3(-1), 2097152, 'which weighs 2^21');
  for (const build of ['simd', 'scalar'] as const) {
    for (const V of [TINY.vocabSize, 2000]) {
      const { m, s } = await sessionFor(build, { ...TINY, vocabSize: V });
      const lg = new Float32Array(V).fill(-Infinity);
      lg[V - 1] = 0;
      lg[3] = d;
      lg[V >> 1] = d;
      const got = new Set<number>();
      for (let seed = 1; seed <= 200; seed++) {
        s.setSampler({ temperature: 1, topP: 0.5, seed, sampler: SAMPLER_V3 });
        new Float32Array(m.ex.memory.buffer, m.ex.session_logits(s.ptr), V).set(lg);
        got.add(m.ex.sample(s.ptr));
        const rng = new ReferenceRng(seed);
        t.equal(referenceSample(lg, { temperature: 1, topK: 0, topP: 0.5 }, rng, 3), V - 1) || t.bailout();
      }
      t.same([...got], [V - 1], `${build}, V ${V}: 200 seeds, the best token every time`);
      m.free();
    }
  }
});

for (const version of [SAMPLER_V2, SAMPLER_V3]) {
  t.test(`sampler ${version} draws in proportion to the weights`, async (t) => {
    // one fixed vector, many draws: frequencies within 5 sigma of the weights' shares
    const { m, s } = await sessionFor('simd', CONFIGS[1]!);
    const V = CONFIGS[1]!.vocabSize;
    const lg = new Float32Array(V).map((_, i) => (i % 97 === 0 ? 2 + (i % 5) : -3 + (i % 11) * 0.1));
    const o = { temperature: 0.9, topK: 0, topP: 0.9 };
    const q = referenceWeights(lg, o, version)!;
    s.setSampler({ ...o, seed: 9, sampler: version });
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
      const id = referenceSample(lg, o, rng, version);
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
}

t.test('the sampler version: 1, 2 and 3 run, anything else is refused (host and module)', async (t) => {
  const { m, s } = await sessionFor('simd', TINY);
  t.equal(SAMPLER_VERSION, SAMPLER_V3, 'a session starts with version 3');
  for (const sampler of [0, 4, 1.5, NaN])
    t.throws(() => s.setSampler({ temperature: 1, sampler }), { code: 'BAD_SAMPLER' });
  t.ok(m.ex.sampler_set_version(s.ptr, 0) < 0 && m.ex.sampler_set_version(s.ptr, 4) < 0, 'the module refuses 0 and 4');
  const lg = new Float32Array(TINY.vocabSize).map((_, i) => Math.sin(i) * 3);
  const o = { temperature: 1, topK: 0, topP: 0.9 };
  const draws = (sampler?: number): number[] => {
    s.setSampler({ ...o, seed: 4, ...(sampler === undefined ? {} : { sampler }) });
    new Float32Array(m.ex.memory.buffer, m.ex.session_logits(s.ptr), lg.length).set(lg);
    return Array.from({ length: 50 }, () => m.ex.sample(s.ptr));
  };
  for (const v of [SAMPLER_V2, SAMPLER_V3]) {
    const rng = new ReferenceRng(4);
    t.same(
      draws(v),
      Array.from({ length: 50 }, () => referenceSample(lg, o, rng, v)),
      `sampler ${v} is its reference`,
    );
  }
  t.same(draws(), draws(SAMPLER_V3), 'without a version, sampler 3 draws');
  t.notSame(draws(1), draws(2), 'sampler 1 draws differently from the same seed');
  m.free();
});
