import t from 'tap';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IteraModel } from '../runtime/api.js';
import { readModelFile } from '../runtime/model-file.js';
import { writeModelFile } from '../convert/model-write.js';
import { type ModelTensor } from '../convert/state-dict.js';
import { WordTokenizer, type Tokenizer } from '../runtime/tokenizer/index.js';
import type { IteraConfig } from '../runtime/types.js';
import { trainBpe } from '../tokenize/bpe-train.js';
import { BpeTokenizer } from '../runtime/tokenizer/bpe.js';
import { pruneModel, pruneTokenizer, usedIds } from '../tokenize/prune.js';
import { TINY, randomWeights, tensorShapes, wasmBytes } from './helpers.js';
import { main } from '../cli/itera.js';

function modelBytes(config: IteraConfig, tok: Tokenizer, tied = true, seed = 5): Uint8Array {
  const shapes = tensorShapes(config, tied);
  const tensors: ModelTensor[] = [...randomWeights(config, seed, tied)].map(([name, data]) => ({
    name,
    shape: shapes.get(name)!,
    data,
  }));
  return writeModelFile({ config, tensors, tokenizer: tok, name: 'tiny' });
}

const TEXTS = ['the cat sat on the mat', 'a dog and a cat', 'the end'];

t.test('word tokenizer: prune keeps used words and specials, logits of kept tokens identical', async (t) => {
  const words = [
    '<PAD>',
    '<UNK>',
    '<BOS>',
    '<EOS>',
    'the',
    'cat',
    'sat',
    'on',
    'mat',
    'zebra',
    'a',
    'dog',
    'and',
    'end',
    'unused',
    'never',
  ];
  const tok = new WordTokenizer(words, { pad: 0, unk: 1, bos: 2, eos: 3 });
  for (const tied of [true, false]) {
    const config = { ...TINY, vocabSize: 20 }; // 4 rows beyond the tokenizer
    const bytes = modelBytes(config, tok, tied);
    const file = readModelFile(bytes);
    const used = usedIds(file.tokenizer, TEXTS);
    const pruned = pruneTokenizer(file.tokenizer, used);
    t.same(pruned.keep, [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13], 'specials + used words, old order');
    const m = pruneModel(file, pruned);
    t.equal(m.config.vocabSize, 13);
    const out = writeModelFile({ config: m.config, tensors: m.tensors, tokenizer: m.tokenizer, name: 'pruned' });
    t.ok(out.byteLength < bytes.byteLength);
    const back = readModelFile(out);
    t.equal(back.tokenizer.kind, 'itera-word');
    t.equal(back.tiedEmbeddings, tied);
    t.same(back.tokenizer.encode('the zebra and the dog'), [4, 1, 11, 4, 10], 'dropped word -> <UNK>; ids dense');

    const wasm = wasmBytes('scalar');
    const a = await IteraModel.fromBytes(bytes, wasm);
    const b = await IteraModel.fromBytes(out, wasm);
    const oldIds = tok.encode('the cat sat on the mat and a dog');
    const newIds = oldIds.map((id) => pruned.keep.indexOf(id));
    t.same(back.tokenizer.encode('the cat sat on the mat and a dog'), newIds, 'the corpus encodes to the remapped ids');
    const la = a.logits(oldIds);
    const lb = b.logits(newIds);
    let same = true;
    for (let p = 0; p < oldIds.length; p++) {
      pruned.keep.forEach((old, i) => {
        if (la[p * 20 + old] !== lb[p * 13 + i]) same = false;
      });
    }
    t.ok(same, `every kept token's logit is bit-identical at every position (tied=${tied})`);
    a.dispose();
    b.dispose();
  }
});

t.test('BPE: kept merges are closed under parts; the corpus encodes identically', async (t) => {
  const big = [
    'The cat sat on the mat. The theory of the thermos is thorough.',
    'Then there were three thin thieves thinking thoughts.',
    'Zebras zigzag; quizzical jazz. Xylophones excite.',
  ];
  const tok = trainBpe(big, 330).tokenizer;
  const corpus = ['the cat sat on the mat'];
  const used = usedIds(tok, corpus);
  const pruned = pruneTokenizer(tok, used);
  const p = pruned.tokenizer as BpeTokenizer;
  t.ok(p.size < tok.size, `${tok.size} -> ${p.size}`);
  const kept = new Set(pruned.keep);
  // every kept merge's parts are kept, and every kept multi-byte token has its merge
  tok.merges.forEach(([l, r], rank) => {
    const res = tok.mergeResult(rank);
    if (kept.has(res)) t.ok(kept.has(l) && kept.has(r), `parts of ${tok.tokenText(res)} kept`);
  });
  for (const s of corpus) {
    t.same(
      p.encode(s),
      tok.encode(s).map((id) => pruned.keep.indexOf(id)),
      'same tokens, renumbered',
    );
  }
  t.ok(
    Array.from({ length: 256 }, (_, b) => 4 + b).every((id) => kept.has(id)),
    'all byte tokens kept by default',
  );
  t.equal(p.decode(p.encode('Zebras 😀 xylophone')), 'Zebras 😀 xylophone', 'any text still round-trips');
  t.notOk(p.encode('Zebras 😀').includes(p.unk));

  const dropped = pruneTokenizer(tok, used, { dropBytes: true });
  const d = dropped.tokenizer as BpeTokenizer;
  t.ok(d.size < p.size, 'dropping unused bytes too');
  t.same(
    d.encode('the cat'),
    tok.encode('the cat').map((id) => dropped.keep.indexOf(id)),
  );
  t.ok(d.encode('Zebra').includes(d.unk), 'a byte with no token becomes <UNK>');

  // a model with this tokenizer: logits of kept tokens identical
  const config = { ...TINY, vocabSize: tok.size };
  const bytes = modelBytes(config, tok, true, 9);
  const file = readModelFile(bytes);
  const m = pruneModel(file, pruned);
  const out = writeModelFile({ config: m.config, tensors: m.tensors, tokenizer: m.tokenizer, name: 'pruned' });
  const back = readModelFile(out);
  t.equal(back.tokenizer.kind, 'itera-bpe');
  const wasm = wasmBytes('scalar');
  const a = await IteraModel.fromBytes(bytes, wasm);
  const b = await IteraModel.fromBytes(out, wasm);
  const ids = tok.encode('the cat sat').slice(0, TINY.maxSeqLength);
  const la = a.logits(ids);
  const lb = b.logits(ids.map((id) => pruned.keep.indexOf(id)));
  let same = true;
  for (let q = 0; q < ids.length; q++) {
    pruned.keep.forEach((old, i) => {
      if (la[q * tok.size + old] !== lb[q * p.size + i]) same = false;
    });
  }
  t.ok(same, 'kept logits bit-identical');
  a.dispose();
  b.dispose();
});

t.test('CLI prune-vocab', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'itera-prune-'));
  const words = [
    '<PAD>',
    '<UNK>',
    '<BOS>',
    '<EOS>',
    'the',
    'cat',
    'sat',
    'on',
    'mat',
    'zebra',
    'a',
    'dog',
    'and',
    'end',
  ];
  const tok = new WordTokenizer(words, { pad: 0, unk: 1, bos: 2, eos: 3 });
  writeFileSync(join(dir, 'm.gguf'), modelBytes({ ...TINY, vocabSize: words.length }, tok));
  writeFileSync(join(dir, 'corpus.txt'), TEXTS.join('\n\n'));
  writeFileSync(join(dir, 'eval.txt'), 'the cat and the zebra sat on a mat');
  let out = '';
  let err = '';
  const io = {
    out: {
      write: (s: string) => {
        out += s;
        return true;
      },
    } as unknown as NodeJS.WritableStream,
    err: {
      write: (s: string) => {
        err += s;
        return true;
      },
    } as unknown as NodeJS.WritableStream,
  };
  const code = await main(
    [
      'prune-vocab',
      '--model',
      join(dir, 'm.gguf'),
      '--corpus',
      join(dir, 'corpus.txt'),
      '--eval',
      join(dir, 'eval.txt'),
      '-o',
      join(dir, 'p.gguf'),
      '--json',
      '--build',
      'scalar',
    ],
    io,
  );
  t.equal(code, 0, err);
  const r = JSON.parse(out);
  t.equal(r.rowsBefore, 14);
  t.equal(r.rowsAfter, 13);
  t.equal(r.rowsDropped, 1);
  t.equal(r.parametersDropped, TINY.hiddenSize);
  t.ok(r.bytesSaved > 0);
  t.equal(r.eval.before.unkTokens, 0);
  t.equal(r.eval.after.unkTokens, 1, "'zebra' is <UNK> after pruning");
  t.ok(readFileSync(join(dir, 'p.gguf')).byteLength === r.bytesAfter);
  out = '';
  err = '';
  const c2 = await main(
    ['prune-vocab', '--model', join(dir, 'm.gguf'), '--corpus', join(dir, 'nope.txt'), '-o', join(dir, 'q.gguf')],
    io,
  );
  t.equal(c2, 1);
  t.match(err, /corpus not found/);
});
