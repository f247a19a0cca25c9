// Batched decode: B sessions of one model advanced together (every weight read once per chunk of
// rows) give the tokens, logits and states that stepping each alone gives, bit for bit, for B = 1,
// 3, 16 and 17, with sessions joining and leaving between steps, greedy and sampled, exact and
// slide windows, before and past T, F32 and Q8_0, both builds. Tiny models; no ../shared needed.
import t from 'tap';
import { IteraModel } from '../runtime/api.js';
import type { WasmSession } from '../runtime/runtime.js';
import type { IteraConfig } from '../runtime/types.js';
import { BUILDS, TINY, tinyModelFile, wasmBytes } from './helpers.js';

const builds = Object.keys(BUILDS) as Array<keyof typeof BUILDS>;
const QC: IteraConfig = { ...TINY, hiddenSize: 32, ssmInnerSize: 64, expertSize: 32 };

function sameBits(a: Float32Array, b: Float32Array): boolean {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length),
    y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

/** Session number k's prompt, sampler and window: varied, and the same for both copies. */
function open(m: IteraModel, k: number): WasmSession {
  const s = m.session();
  s.setWindow(k % 3 === 2 ? 'slide' : 'exact');
  s.setSampler(
    k % 4 === 0
      ? { temperature: 0 }
      : { temperature: 0.6 + 0.1 * (k % 5), topK: k % 3 === 1 ? 8 : 0, topP: k % 2 ? 0.9 : 1, seed: 1000 + k },
  );
  const n = 1 + ((k * 5) % 12);
  s.prefill(Array.from({ length: n }, (_, i) => 4 + ((i * 7 + k * 13) % (m.config.vocabSize - 4))));
  return s;
}

for (const build of builds) {
  for (const [what, config, type] of [
    ['F32', TINY, 'F32'],
    ['Q8_0', QC, 'Q8_0'],
  ] as const) {
    t.test(`${build} ${what}: stepBatch equals each session stepped alone, bit for bit`, async (t) => {
      const file = tinyModelFile(config, 6, type);
      const mb = await IteraModel.fromBytes(file, wasmBytes(build)); // batched
      const mr = await IteraModel.fromBytes(file, wasmBytes(build)); // the reference, another instance
      const live: Array<{ k: number; b: WasmSession; r: WasmSession; steps: number }> = [];
      let next = 0;
      let tokensOk = true,
        logitsOk = true,
        statesOk = true,
        pastT = 0;
      const sizes = [1, 3, 16, 17, 4, 17, 16, 1, 3];
      for (let phase = 0; phase < sizes.length; phase++) {
        const B = sizes[phase];
        // leave: from the middle and the ends; join: fresh sessions with their own prompts
        for (let j = 0; live.length > B; j++) {
          const [gone] = live.splice((j * 7 + phase) % live.length, 1);
          gone.b.free();
          gone.r.free();
        }
        while (live.length < B) {
          const k = next++;
          live.splice((k * 3) % (live.length + 1), 0, { k, b: open(mb, k), r: open(mr, k), steps: 0 });
        }
        for (let step = 0; step < 3; step++) {
          const got = mb.wasmModel.stepBatch(live.map((x) => x.b));
          const want = live.map((x) => x.r.next()); // the plain reference: one session at a time
          if (got.join() !== want.join()) tokensOk = false;
          for (const x of live) {
            x.steps++;
            if (!sameBits(x.b.logits(), x.r.logits())) logitsOk = false;
            if (x.b.position === config.maxSeqLength && x.steps > 1) pastT++;
          }
        }
        // every state (conv rings and windows, scans, token windows, random states) is the same
        for (const x of live) {
          const a = x.b.save(),
            b = x.r.save();
          if (a.length !== b.length || a.some((v, i) => v !== b[i])) statesOk = false;
        }
        t.ok(tokensOk && logitsOk && statesOk, `B = ${B}: tokens, logits and states equal so far`);
      }
      t.ok(tokensOk, 'the same tokens at every step');
      t.ok(logitsOk, "every session's logits, bit for bit, at every step");
      t.ok(statesOk, 'the same saved states after every phase');
      t.ok(pastT > 20, `sessions stepped past T in the batch (${pastT} session-steps at the window's end)`);
      // a batch of one, on its own
      const k = next++;
      const a = open(mb, k),
        c = open(mr, k);
      const one: number[] = [];
      for (let i = 0; i < 20; i++) one.push(c.next());
      const batched: number[] = [];
      for (let i = 0; i < 20; i++) batched.push(mb.wasmModel.stepBatch([a])[0]);
      t.same(batched, one, 'a batch of one equals next()');
      t.ok(sameBits(a.logits(), c.logits()));
      for (const x of live) {
        x.b.free();
        x.r.free();
      }
      mb.dispose();
      mr.dispose();
    });
  }
}

t.test('stepBatch refuses what it cannot run, changing nothing', async (t) => {
  const m = await IteraModel.fromBytes(tinyModelFile(), wasmBytes('simd'));
  const other = await IteraModel.fromBytes(tinyModelFile(), wasmBytes('simd'));
  const a = open(m, 1),
    b = open(m, 2);
  const before = [a.save(), b.save()];
  const w = m.wasmModel;
  t.same(w.stepBatch([]), [], 'an empty batch');
  t.throws(() => w.stepBatch([a, b, a]), { code: 'BAD_PARAM', message: /session 2 of the batch appears twice/ });
  t.throws(() => w.stepBatch([a, open(other, 1)]), { code: 'BAD_PARAM', message: /another model/ });
  t.throws(() => w.stepBatch([a, m.session()]), { code: 'EMPTY_PROMPT' });
  const gone = open(m, 3);
  gone.free();
  t.throws(() => w.stepBatch([gone]), { code: 'FREED' });
  // the module checks again, whatever the host let through
  const ex = m.ex;
  const p = ex.alloc(16);
  new Uint32Array(ex.memory.buffer, p, 3).set([a.ptr, b.ptr, a.ptr]);
  const scratch = ex.batch_new(w.ptr);
  t.equal(ex.generate_next_batch(scratch, p, 3, p + 12), -3, 'a repeated session: ERR_BAD_PARAM');
  t.equal(ex.error_detail(), 2);
  const empty = m.session();
  new Uint32Array(ex.memory.buffer, p, 2).set([a.ptr, empty.ptr]);
  t.equal(ex.generate_next_batch(scratch, p, 2, p + 12), -2, 'an empty session: ERR_EMPTY');
  new Uint32Array(ex.memory.buffer, p, 1).set([scratch]);
  t.equal(ex.generate_next_batch(scratch, p, 1, p + 12), -3, 'the scratch itself');
  t.same(
    [a.save(), b.save()].map((s) => Array.from(s).join()),
    before.map((s) => Array.from(s).join()),
    'no state changed',
  );
  ex.session_free(scratch);
  ex.free(p);
  m.dispose();
  other.dispose();
});
