// Sessions, the window past T, sampling, and bad input, on a tiny random model (no ../shared needed).
import t from 'tap';
import { WasmModel, type WasmSession } from '../runtime/runtime.js';
import { IteraError } from '../runtime/types.js';
import {
  exportsOf,
  maxAbsDiff,
  randomWeights,
  TINY,
  tinyModelFile,
  tokenByTokenDiff,
  wasmBytes,
  weightSource,
} from './helpers.js';
import { IteraModel } from '../runtime/api.js';

async function tinyModel(build: 'simd' | 'scalar' = 'simd', seed = 1): Promise<WasmModel> {
  const ex = await exportsOf(build);
  return new WasmModel(ex, TINY, weightSource(TINY, randomWeights(TINY, seed)));
}

const ids = (n: number, seed = 3): number[] =>
  Array.from({ length: n }, (_, i) => (i * 7 + seed * 11) % TINY.vocabSize);

t.test('prefill equals step by step; sessions are independent; reset forgets', async (t) => {
  const m = await tinyModel();
  const a = m.newSession(),
    b = m.newSession();
  const seq = ids(12);
  const all = a.prefill(seq, true)!;
  const rows: number[] = [];
  for (const id of seq) {
    b.prefill([id]);
    rows.push(...b.logits());
  }
  t.equal(maxAbsDiff(all, rows), 0, 'prefill (in chunks of positions) and step by step agree bit for bit');
  t.same(Array.from(a.logits()), Array.from(all.subarray(11 * TINY.vocabSize)), 'last logits left in the session');
  // a third session interleaved does not disturb the first
  const c = m.newSession();
  c.prefill(ids(5, 9));
  a.reset();
  t.equal(a.position, 0);
  const again = a.prefill(seq, true)!;
  t.same(Array.from(again), Array.from(all), 'reset gives the same logits again, bit for bit');
  for (const s of [a, b, c]) s.free();
  m.free();
});

t.test(
  'a prefill that wants only the last logits (its last layer carries the state and skips the rest) gives the same bits as one that keeps every position, and as token by token',
  async (t) => {
    // the last layer MoE (TINY) and dense; F32 and the quantized kernels; both builds
    const C = { ...TINY, hiddenSize: 32, ssmInnerSize: 64, expertSize: 32 };
    for (const moeLayers of [[1], [0]]) {
      for (const type of ['F32', 'Q8_0', 'Q4_0'] as const) {
        for (const build of ['simd', 'scalar'] as const) {
          const m = await IteraModel.fromBytes(tinyModelFile({ ...C, moeLayers }, 4, type), wasmBytes(build));
          const a = m.session(),
            b = m.session();
          const seq = ids(11);
          a.prefill(seq);
          const all = b.prefill(seq, true)!;
          const what = `${build} ${type}, MoE layers [${moeLayers}]`;
          t.same(Array.from(a.logits()), Array.from(all.subarray(10 * C.vocabSize)), `${what}: last logits`);
          // and token by token (one position per call, the kernels' one-position path) gives every
          // position's logits with the same bits as the chunked prompt (several positions at a time)
          const c = m.session();
          t.equal(
            tokenByTokenDiff(c, seq, all, C.vocabSize),
            0,
            `${what}: token by token equals the chunked prompt bit for bit`,
          );
          c.free();
          // the recurrent state left behind is the same too: the next tokens agree bit for bit,
          // and so do the windows recomputed past T (whose positions but the last want no logits)
          let same = true;
          for (const id of ids(C.maxSeqLength, 5)) {
            a.prefill([id]);
            b.prefill([id]);
            if (maxAbsDiff(a.logits(), b.logits()) !== 0) same = false;
          }
          t.ok(same, `${what}: the next ${C.maxSeqLength} tokens' logits, across the window's end`);
          a.free();
          b.free();
          m.dispose();
        }
      }
    }
  },
);

t.test('past T: exact mode equals recomputing the last T tokens; slide mode is an approximation', async (t) => {
  const m = await tinyModel();
  const T = TINY.maxSeqLength;
  const seq = ids(T + 5);
  const exact = m.newSession();
  const all = exact.prefill(seq, true)!;
  for (let p = T; p < seq.length; p++) {
    const fresh = m.newSession();
    fresh.prefill(seq.slice(p - T + 1, p + 1));
    const d = maxAbsDiff(fresh.logits(), all.subarray(p * TINY.vocabSize, (p + 1) * TINY.vocabSize));
    t.ok(d === 0, `position ${p}: the window [${p - T + 1}, ${p}] recomputed (diff ${d})`);
    fresh.free();
  }
  t.equal(exact.position, T, 'the window stays at T positions');
  const slide = m.newSession();
  slide.setWindow('slide');
  const s = slide.prefill(seq, true)!;
  t.same(
    Array.from(s.subarray(0, T * TINY.vocabSize)),
    Array.from(all.subarray(0, T * TINY.vocabSize)),
    'identical up to T',
  );
  t.ok(
    maxAbsDiff(s.subarray(T * TINY.vocabSize), all.subarray(T * TINY.vocabSize)) > 0,
    'differs past T (an approximation)',
  );
  m.free();
});

t.test('sampling: deterministic per seed, greedy = argmax, top-k 1 = greedy, bad parameters refused', async (t) => {
  const m = await tinyModel();
  const gen = (o: Parameters<WasmSession['setSampler']>[0], n = 20): number[] => {
    const s = m.newSession();
    s.setSampler(o);
    s.prefill(ids(3));
    const out = s.generate(n, -1);
    s.free();
    return out;
  };
  const a = gen({ temperature: 1, seed: 42 }),
    b = gen({ temperature: 1, seed: 42 }),
    c = gen({ temperature: 1, seed: 43 });
  t.same(a, b, 'same seed, same tokens');
  t.not(a.join(), c.join(), 'another seed, other tokens');
  t.same(gen({ temperature: 1, topK: 1, seed: 5 }), gen({ temperature: 0 }), 'top-k 1 is greedy');
  t.same(gen({ temperature: 0.7, topP: 1e-6, seed: 5 }), gen({ temperature: 0 }), 'a tiny top-p is greedy');
  // one call per token gives the same as one call for all
  const s = m.newSession();
  s.setSampler({ temperature: 0.9, topK: 10, topP: 0.9, seed: 7 });
  s.prefill(ids(3));
  const stepwise = Array.from({ length: 20 }, () => s.next());
  t.same(stepwise, gen({ temperature: 0.9, topK: 10, topP: 0.9, seed: 7 }), 'next() x 20 = generate(20)');
  for (const bad of [
    { temperature: -1 },
    { temperature: NaN },
    { temperature: Infinity },
    { topK: -1 },
    { topK: 1.5 },
    { topP: 0 },
    { topP: 1.5 },
    { topP: NaN },
    { seed: -1 },
    { seed: 0.5 },
  ]) {
    t.throws(
      () => s.setSampler(bad),
      IteraError,
      `refused: ${JSON.stringify(bad, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v))}`,
    );
  }
  t.ok(m.ex.sampler_set(s.ptr, NaN, 0, 1, 0, 0) < 0, 'the module itself refuses a NaN temperature');
  t.ok(m.ex.sampler_set(s.ptr, 1, 0, NaN, 0, 0) < 0, 'the module itself refuses a NaN top-p');
  s.free();
  m.free();
});

t.test('sampling draws from the softmax: frequencies match on a fixed distribution', async (t) => {
  const m = await tinyModel();
  const s = m.newSession();
  s.prefill([1]);
  const V = TINY.vocabSize;
  const logits = new Float32Array(V).fill(-1e9);
  logits[3] = Math.log(0.5);
  logits[10] = Math.log(0.3);
  logits[20] = Math.log(0.2);
  s.setSampler({ temperature: 1, seed: 1 });
  const counts = new Map<number, number>();
  const N = 20000;
  for (let i = 0; i < N; i++) {
    new Float32Array(m.ex.memory.buffer, m.ex.session_logits(s.ptr), V).set(logits);
    const tok = m.ex.sample(s.ptr);
    counts.set(tok, (counts.get(tok) ?? 0) + 1);
  }
  t.same(
    [...counts.keys()].sort((a, b) => a - b),
    [3, 10, 20],
    'only the three tokens with mass',
  );
  for (const [tok, p] of [
    [3, 0.5],
    [10, 0.3],
    [20, 0.2],
  ] as const) {
    const f = counts.get(tok)! / N;
    t.ok(Math.abs(f - p) < 0.015, `token ${tok}: frequency ${f.toFixed(3)} vs ${p}`);
  }
  // top-p 0.6 keeps {3, 10}; top-k 2 keeps {3, 10} too
  for (const o of [{ topP: 0.6 }, { topK: 2 }]) {
    s.setSampler({ temperature: 1, seed: 2, ...o });
    const seen = new Set<number>();
    for (let i = 0; i < 2000; i++) {
      new Float32Array(m.ex.memory.buffer, m.ex.session_logits(s.ptr), V).set(logits);
      seen.add(m.ex.sample(s.ptr));
    }
    t.same(
      [...seen].sort((a, b) => a - b),
      [3, 10],
      `${JSON.stringify(o)} keeps the two best`,
    );
  }
  // NaN logits are never drawn
  logits[20] = NaN;
  s.setSampler({ temperature: 1, seed: 3 });
  for (let i = 0; i < 2000; i++) {
    new Float32Array(m.ex.memory.buffer, m.ex.session_logits(s.ptr), V).set(logits);
    if (m.ex.sample(s.ptr) === 20) {
      t.fail('drew a NaN logit');
      break;
    }
  }
  s.free();
  m.free();
});

t.test('bad input: ids out of range, empty prompts, generating from nothing', async (t) => {
  const m = await tinyModel();
  const s = m.newSession();
  t.throws(() => s.prefill([]), { code: 'EMPTY_PROMPT' });
  t.throws(() => s.prefill([1, TINY.vocabSize]), { code: 'BAD_TOKEN', message: /50 at index 1 is out of range/ });
  t.throws(() => s.prefill([-1]), { code: 'BAD_TOKEN' });
  t.throws(() => s.prefill([1.5]), { code: 'BAD_TOKEN' });
  t.throws(() => s.prefill([NaN]), { code: 'BAD_TOKEN' });
  t.equal(s.position, 0, 'a refused prefill leaves the session untouched');
  t.throws(() => s.next(), { code: 'EMPTY_PROMPT' });
  t.throws(() => s.generate(5, -1), { code: 'EMPTY_PROMPT' });
  t.throws(() => s.generate(-1, -1), { code: 'BAD_PARAM' });
  // the module's own checks, bypassing the host's
  const p = m.ex.alloc(8);
  new Int32Array(m.ex.memory.buffer, p, 2).set([1, 9999]);
  t.equal(m.ex.prefill(s.ptr, p, 2, 0), -1, 'module: token out of range');
  t.equal(m.ex.error_detail(), 1, 'module: names the index');
  t.equal(m.ex.prefill(s.ptr, p, 0, 0), -2, 'module: no tokens');
  t.equal(m.ex.generate_next(s.ptr), -2, 'module: nothing to continue');
  m.ex.free(p);
  s.free();
  m.free();
});

t.test('the module refuses an inconsistent descriptor', async (t) => {
  const ex = await exportsOf('simd');
  t.throws(() => new WasmModel(ex, { ...TINY, topK: 5 }, weightSource(TINY, randomWeights(TINY))), {
    code: 'MODEL_REJECTED',
  });
  const w = randomWeights(TINY);
  w.delete('blk.0.ssm_in.weight');
  t.throws(() => new WasmModel(ex, TINY, weightSource(TINY, w)), {
    code: 'MODEL_MISSING_TENSOR',
    message: /blk\.0\.ssm_in\.weight/,
  });
});

t.test('scalar and SIMD builds give the same tokens for a sampled generation', async (t) => {
  const out: number[][] = [];
  for (const b of ['simd', 'scalar'] as const) {
    const m = await tinyModel(b, 4);
    const s = m.newSession();
    s.setSampler({ temperature: 0.8, topK: 20, topP: 0.95, seed: 11 });
    s.prefill(ids(4));
    out.push(s.generate(40, -1));
    m.free();
  }
  t.same(out[0], out[1]);
});
