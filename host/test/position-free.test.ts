// Position-free models (no learned position embedding; issue 15): the file says so with one key
// and lacks the position tensor; the runtime runs one step per token at any length, so a prompt
// far past T by prefill equals the same tokens one by one, bit for bit, in both builds, and both
// window modes give the same logits (there is no window). Files of the original's kind keep their
// bytes. PyTorch parity is in train-export.test.ts.
import t from 'tap';
import { IteraModel } from '../runtime/api.js';
import { readModelFile, MODEL_KEYS } from '../runtime/model-file.js';
import { writeModelFile } from '../convert/model-write.js';
import { WordTokenizer } from '../runtime/tokenizer/index.js';
import { maxAbsDiff, randomWeights, tensorShapes, TINY, wasmBytes } from './helpers.js';
import { exportOnnx } from '../export/itera-onnx.js';
import { loadOrt } from '../bench/engines.js';

const config = { ...TINY, maxSeqLength: 16, positionEmbedding: false };
const words = ['<PAD>', '<UNK>', '<BOS>', '<EOS>'];
for (let i = words.length; i < TINY.vocabSize; i++) words.push(`w${i}`);
const tokenizer = new WordTokenizer(words, { pad: 0, unk: 1, bos: 2, eos: 3 });
const shapes = tensorShapes(TINY);
const tensors = [...randomWeights(TINY, 5)]
  .filter(([name]) => name !== 'position_embd.weight')
  .map(([name, data]) => ({ name, shape: shapes.get(name)!, data }));
const bytes = writeModelFile({ config, tensors, tokenizer, name: 'nopos' });

t.test('the file: one key, no position tensor; the original kind unchanged', async (t) => {
  const f = readModelFile(bytes);
  t.equal(f.config.positionEmbedding, false);
  t.notOk(f.tensors.has('position_embd.weight'), 'no position tensor');
  t.ok(
    f.metadata.some((kv) => kv.key === MODEL_KEYS.positionEmbedding && kv.value.value === false),
    'the key says false',
  );
  const withPos = [...randomWeights(TINY, 5)].map(([name, data]) => ({ name, shape: shapes.get(name)!, data }));
  const orig = readModelFile(writeModelFile({ config: TINY, tensors: withPos, tokenizer, name: 'orig' }));
  t.notOk(
    orig.metadata.some((kv) => kv.key === MODEL_KEYS.positionEmbedding),
    'no key in a file with positions',
  );
  t.equal(orig.config.positionEmbedding, undefined);
  t.throws(
    () => writeModelFile({ config, tensors: withPos, tokenizer, name: 'x' }),
    /position_embd/,
    'a position tensor in a position-free model is refused',
  );
});

for (const build of ['simd', 'scalar'] as const) {
  t.test(`${build}: far past T, prefill equals steps bit for bit; no window`, async (t) => {
    const model = await IteraModel.fromBytes(bytes, wasmBytes(build));
    const ids = Array.from({ length: 5 * config.maxSeqLength + 3 }, (_, i) => 4 + ((i * 11) % (TINY.vocabSize - 4)));
    const all = model.logits(ids);
    t.equal(maxAbsDiff(all, model.logits(ids, { step: true })), 0, 'prefill and one by one agree');
    t.equal(maxAbsDiff(all, model.logits(ids, { window: 'slide' })), 0, 'exact and slide are the same');
    // a prompt longer than T is no error, and generation runs on
    const g = model.generate(ids, { maxTokens: 20, temperature: 0, stopAtEos: false });
    t.equal(g.ids.length, 20);
    // the last position's logits do not depend on how the prompt was cut
    const s = model.session();
    s.prefill(ids.slice(0, 37));
    s.prefill(ids.slice(37));
    const V = TINY.vocabSize;
    t.equal(maxAbsDiff(s.logits(), all.subarray((ids.length - 1) * V)), 0, 'two prefills equal one');
    s.free();
    model.dispose();
  });
}

t.test('ONNX export of a position-free model: ONNX Runtime gives our logits past T', async (t) => {
  const { api } = await loadOrt('node');
  const ours = await IteraModel.fromBytes(bytes, wasmBytes('simd'));
  const ids = Array.from({ length: 3 * config.maxSeqLength }, (_, i) => 4 + ((i * 5) % (TINY.vocabSize - 4)));
  const so = { intraOpNumThreads: 1, interOpNumThreads: 1 };
  const full = await api.InferenceSession.create(exportOnnx(bytes, { kind: 'full' }), so);
  const out = await full.run({
    input_ids: new api.Tensor(
      'int64',
      BigInt64Array.from(ids, (x) => BigInt(x)),
      [1, ids.length],
    ),
  });
  const d = maxAbsDiff(out.logits!.data as Float32Array, ours.logits(ids));
  t.ok(d < 1e-4, `${ids.length} tokens (3T) through the full graph: max |diff| ${d.toExponential(2)}`);
  ours.dispose();
});

for (const build of ['simd', 'scalar'] as const) {
  t.test(`${build}: saved past T, restored, continued; batched with others: the same bits`, async (t) => {
    const model = await IteraModel.fromBytes(bytes, wasmBytes(build));
    const ids = Array.from({ length: 4 * config.maxSeqLength }, (_, i) => 4 + ((i * 13) % (TINY.vocabSize - 4)));
    const a = model.session();
    a.prefill(ids);
    a.setSampler({ temperature: 0.9, seed: 5 });
    for (let i = 0; i < 7; i++) a.next();
    const saved = a.save(); // position 4T + 7
    const want = Array.from({ length: 30 }, () => a.next());
    const b = model.restore(saved);
    t.same(
      Array.from({ length: 30 }, () => b.next()),
      want,
      'the restored session continues with the same tokens',
    );
    t.equal(maxAbsDiff(b.logits(), a.logits()), 0, 'and the same logits');
    // three sessions past T stepped together equal each stepped alone
    const alone = [1, 2, 3].map((k) => {
      const s = model.session();
      s.prefill(ids.slice(k));
      s.setSampler({ temperature: 0.7, seed: k });
      return s;
    });
    const together = [1, 2, 3].map((k) => {
      const s = model.session();
      s.prefill(ids.slice(k));
      s.setSampler({ temperature: 0.7, seed: k });
      return s;
    });
    for (let step = 0; step < 12; step++) {
      const got = model.wasmModel.stepBatch(together);
      t.same(
        got,
        alone.map((s) => s.next()),
        `step ${step}: the batch gives each session's own token`,
      );
    }
    for (const s of [a, b, ...alone, ...together]) s.free();
    model.dispose();
  });
}
