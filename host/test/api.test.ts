// The runtime API on a tiny model file: streaming equals one-call generation, scoring by windows
// and as a stream agree within the context, prompts past the context, bad options.
import t from 'tap';
import { IteraModel } from '../runtime/api.js';
import { maxAbsDiff, tinyModelFile, tokenByTokenDiff, wasmBytes, TINY } from './helpers.js';
import { readModelFile, tensorAsF32 } from '../runtime/model-file.js';
import { writeModelFile } from '../convert/model-write.js';
import { isQuantizable } from '../runtime/quant.js';

t.test('stream() gives the same tokens and text as generate()', async (t) => {
  const m = await IteraModel.fromBytes(tinyModelFile(), wasmBytes('simd'));
  const o = { temperature: 0.9, topK: 10, seed: 3, maxTokens: 20, stopAtEos: false };
  const one = m.generate('hello world', o);
  const it = m.stream('hello world', o);
  const ids: number[] = [];
  let text = '';
  for (;;) {
    const r = await it.next();
    if (r.done) {
      t.same(r.value.ids, one.ids, 'the result carries the ids');
      break;
    }
    ids.push(r.value.id);
    text += r.value.text;
  }
  t.same(ids, one.ids, 'same ids');
  t.equal(text, one.text, 'the streamed pieces concatenate to the text');
  m.dispose();
});

t.test('score: windows and streams agree within the context; the stream modes differ past it', async (t) => {
  const m = await IteraModel.fromBytes(tinyModelFile(), wasmBytes('simd'));
  const short = 'abc def gh'; // 10 tokens < T = 16
  const w = m.score(short),
    e = m.score(short, { stream: 'exact' }),
    s = m.score(short, { stream: 'slide' });
  t.ok(
    Math.abs(w.nll - e.nll) < 1e-9 && Math.abs(w.nll - s.nll) < 1e-9,
    `within T all three agree (${w.nll}, ${e.nll}, ${s.nll})`,
  );
  t.equal(w.predicted, short.length - 1);
  const long = 'the quick brown fox jumps over the lazy dog'; // 43 tokens > T
  const el = m.score(long, { stream: 'exact' }),
    sl = m.score(long, { stream: 'slide' });
  t.not(el.nll, sl.nll, 'past T the approximation differs from the exact window');
  t.ok(Number.isFinite(sl.perplexity) && Number.isFinite(el.perplexity));
  m.dispose();
});

t.test('prompts: empty, past the context (error, or keep the last T tokens), bad options', async (t) => {
  const m = await IteraModel.fromBytes(tinyModelFile(), wasmBytes('simd'));
  t.throws(() => m.generate(''), { code: 'EMPTY_PROMPT', message: /empty prompt/ });
  t.throws(() => m.generate('   '.replace(/ /g, '')), { code: 'EMPTY_PROMPT' });
  const long = 'a'.repeat(TINY.maxSeqLength + 3);
  t.throws(() => m.generate(long), {
    code: 'PROMPT_TOO_LONG',
    message: /19 tokens, past this model's context of 16 positions/,
  });
  const r = m.generate(long, { truncate: 'left', maxTokens: 3, temperature: 0 });
  t.equal(r.promptIds.length, TINY.maxSeqLength, 'truncate left keeps the last T tokens');
  for (const bad of [
    { maxTokens: -1 },
    { maxTokens: 1.5 },
    { temperature: -0.1 },
    { topP: 0 },
    { topK: -2 },
    { window: 'fast' as never },
    { truncate: 'right' as never },
  ]) {
    t.throws(() => m.generate('ab', bad), { name: 'IteraError' }, `refused: ${JSON.stringify(bad)}`);
  }
  t.throws(() => m.score('a'), { code: 'TOO_SHORT' });
  t.throws(() => m.logits([]), { code: 'EMPTY_PROMPT' });
  t.throws(() => m.logits([0, 99]), { code: 'BAD_TOKEN' });
  m.dispose();
});

/** The same model with every tensor stored as its dequantized F32 values: the oracle of the
 *  quantized runs. */
const dequantized = (f: ReturnType<typeof readModelFile>): Uint8Array =>
  writeModelFile({
    config: f.config,
    tokenizer: f.tokenizer,
    name: 'deq',
    tensors: [...f.tensors].map(([name, x]) => ({ name, shape: x.shape, data: Float32Array.from(tensorAsF32(x)) })),
  });

t.test(
  'every stored type runs as its own dequantized weights do in F32 (the runtime adds only 16-bit activation rounding)',
  async (t) => {
    const C = { ...TINY, hiddenSize: 32, ssmInnerSize: 64, expertSize: 32 };
    // 'mixed': the quantizable matrices take F32, Q8_0 and Q4_0 in turn (as itera quantize --type mixed can)
    const mixed = (): Uint8Array => {
      const f = readModelFile(tinyModelFile(C, 2));
      const cycle = ['F32', 'Q8_0', 'Q4_0'] as const;
      let i = 0;
      return writeModelFile({
        config: f.config,
        tokenizer: f.tokenizer,
        name: 'mixed',
        tensors: [...f.tensors].map(([name, x]) => ({
          name,
          shape: x.shape,
          data: Float32Array.from(tensorAsF32(x)),
          typeName: isQuantizable(name) ? cycle[i++ % 3] : undefined,
        })),
      });
    };
    for (const type of ['F16', 'Q8_0', 'Q4_0', 'mixed'] as const) {
      const qbytes = type === 'mixed' ? mixed() : tinyModelFile(C, 2, type);
      const f = readModelFile(qbytes);
      // the oracle: the same values, dequantized on the host, stored as F32
      const deq = dequantized(f);
      const q = await IteraModel.fromBytes(qbytes, wasmBytes('simd'));
      const o = await IteraModel.fromBytes(deq, wasmBytes('simd'));
      const ids = [4, 5, 6, 7, 8, 9, 10, 11];
      const a = q.logits(ids),
        b = o.logits(ids);
      let d = 0;
      for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
      t.ok(d < 2e-3, `${type}: max |dlogit| ${d.toExponential(2)} against the dequantized F32 model`);
      q.dispose();
      o.dispose();
    }
  },
);

t.test(
  'odd shapes (6-row experts: rows past the last group of four; N = 6 and K = 3: the general gate and conv loops; MoE first and last) run quantized: a prompt in chunks equals token by token, and both stay near the dequantized model',
  async (t) => {
    const C = {
      ...TINY,
      hiddenSize: 32,
      ssmInnerSize: 64,
      expertSize: 6,
      ssmStateSize: 6,
      ssmConvKernel: 3,
      numExperts: 3,
      numLayers: 3,
      moeLayers: [0, 2],
    };
    const ids = Array.from({ length: 20 }, (_, i) => (i * 7 + 3) % 30); // past T = 16: the exact window too
    for (const type of ['Q8_0', 'Q4_0'] as const) {
      for (const build of ['simd', 'scalar'] as const) {
        const bytes = tinyModelFile(C, 7, type);
        const f = readModelFile(bytes);
        const deq = dequantized(f);
        const q = await IteraModel.fromBytes(bytes, wasmBytes(build)),
          o = await IteraModel.fromBytes(deq, wasmBytes(build));
        const all = q.session().prefill(ids, true)!;
        t.equal(
          tokenByTokenDiff(q.session(), ids, all, C.vocabSize),
          0,
          `${build} ${type}: token by token gives the chunked prompt's bits`,
        );
        const d = maxAbsDiff(all, o.session().prefill(ids, true)!);
        t.ok(d < 2e-3, `${build} ${type}: max |dlogit| ${d.toExponential(2)} against the dequantized F32 model`);
        q.dispose();
        o.dispose();
      }
    }
  },
);
