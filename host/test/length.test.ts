// itera bench --length (host/bench/length.ts): the per-position costs come from one prefill over
// the document; here they are held to the plain reference (one token per call, exact window) and to
// itera score's stream total, for a model with learned positions (past its T) and a position-free
// one; the ranges' bits per character are checked by hand; the speed part has the shape the
// schema says.
import t from 'tap';
import { IteraModel, tokenNll } from '../runtime/api.js';
import { lengthQuality, lengthSpeed, positionNll } from '../bench/length.js';
import { BENCH_JSON_SCHEMA, validateAgainst } from '../bench/schema.js';
import { TINY, tinyModelFile, wasmBytes } from './helpers.js';

const doc = (seed: number, n: number): string =>
  Array.from({ length: n }, (_, i) => 'abcdefghijklmnopqrstuvwxyz '[(i * 7 + seed * 13 + ((i * i) % 5)) % 27]).join('');

const lengthSchema = (
  BENCH_JSON_SCHEMA as {
    properties: { models: { items: { properties: { length: Record<string, unknown> } } } };
  }
).properties.models.items.properties.length;

for (const [label, config] of [
  ['learned positions', TINY],
  ['position-free', { ...TINY, positionEmbedding: false }],
] as const) {
  t.test(`${label}: per-position costs, ranges and speed`, async (t) => {
    const m = await IteraModel.fromBytes(tinyModelFile(config, 3), wasmBytes('simd'));
    try {
      const T = m.config.maxSeqLength;
      const ids = m.encode(doc(1, 4 * T + 5)).slice(0, 4 * T);
      t.equal(ids.length, 4 * T);
      const got = positionNll(m, ids);
      // the reference: one token per call, the exact window past T
      const V = m.config.vocabSize;
      const lg = m.logits(ids, { step: true, window: 'exact' });
      let worst = 0;
      for (let p = 1; p < ids.length; p++) {
        const want = tokenNll(lg.subarray((p - 1) * V, p * V), ids[p]!);
        worst = Math.max(worst, Math.abs(want - got[p]!));
      }
      t.ok(worst < 1e-4, `prefill and one-token-per-call costs agree (max difference ${worst.toExponential(2)})`);
      t.ok(Number.isNaN(got[0]!), 'nothing predicts the first token');
      const total = got.slice(1).reduce((a, b) => a + b, 0);
      const stream = m.score(ids, { stream: 'exact' }).nll;
      t.ok(Math.abs(total - stream) < 1e-3 * Math.max(1, stream), `sum ${total} = itera score's stream ${stream}`);

      // one token is one character here: the ranges' characters are their token counts
      const docs = [doc(1, 4 * T + 5), doc(2, 10), doc(3, 5 * T)];
      const q = lengthQuality(m, docs, 'letters')!;
      t.equal(q.documents, 2, 'the document shorter than 4T is left out');
      t.same([q.near.from, q.near.to, q.far.from, q.far.to], [T / 2, T, T, 4 * T]);
      t.equal(q.near.characters, 2 * (T / 2));
      t.equal(q.far.characters, 2 * 3 * T);
      let near = 0;
      let far = 0;
      for (const d of [docs[0]!, docs[2]!]) {
        const c = positionNll(m, m.encode(d).slice(0, 4 * T));
        for (let p = T / 2; p < T; p++) near += c[p]!;
        for (let p = T; p < 4 * T; p++) far += c[p]!;
      }
      t.ok(Math.abs(q.near.bitsPerCharacter - near / Math.LN2 / T) < 1e-9, 'near range by hand');
      t.ok(Math.abs(q.far.bitsPerCharacter - far / Math.LN2 / (6 * T)) < 1e-9, 'far range by hand');
      t.equal(q.met, q.difference <= 0.01);
      // the control by hand: each far half-window read from T/2 tokens before it
      let control = 0;
      for (const d of [docs[0]!, docs[2]!]) {
        const ids4 = m.encode(d).slice(0, 4 * T);
        for (let k = T; k < 4 * T; k += T / 2) {
          const c = positionNll(m, ids4.slice(k - T / 2, k + T / 2));
          for (let p = T / 2; p < T; p++) control += c[p]!;
        }
      }
      const fc = q.farShortContext!;
      t.ok(Math.abs(fc.bitsPerCharacter - control / Math.LN2 / (6 * T)) < 1e-9, 'the control by hand');
      t.ok(Math.abs(fc.lengthEffect + fc.textEffect - q.difference) < 1e-12, 'the two effects add up');
      t.not(fc.bitsPerCharacter, q.far.bitsPerCharacter, 'the control reads other contexts');
      t.equal(lengthQuality(m, [doc(1, 10)], 'short'), null, 'no document long enough: null');

      const s = await lengthSpeed(m, 2, 300);
      t.same([s.early.from, s.early.to, s.late.from, s.late.to], [1, 100, 201, 300]);
      t.equal(s.ratio.n, 2);
      t.ok(s.ratio.median > 0 && s.early.tokensPerSecond.median > 0);
      const result = { context: T, positionEmbedding: label === 'learned positions', quality: q, speed: s };
      t.same(validateAgainst(lengthSchema, result), [], 'matches the bench schema');
      t.not(validateAgainst(lengthSchema, { ...result, speed: { ...s, ratio: 1 } }).length, 0, 'the schema checks');
    } finally {
      m.dispose();
    }
  });
}
