import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { trainWordTokenizer, compareCodePoints } from '../tokenize/word-train.js';
import { tokenizerFromOriginalJson } from '../runtime/tokenizer/index.js';
import { readTokenizerFile } from '../tokenize/files.js';
import { tokenizerStats, charUnigramBits } from '../tokenize/stats.js';
import { main } from '../cli/itera.js';
import { expectIteraError } from './shared.js';

t.test('word tokenizer training: the N-4 most frequent words, ties by code point order', async (t) => {
  const docs = ['The cat and the dog.', 'the CAT, the bird; a cat', 'zebra apple apple'];
  const r = trainWordTokenizer(docs, 8);
  // counts: the 4, apple 2, cat 2, then 1 each: a, and, bird;, cat,, dog., zebra
  t.same(Object.keys(r.json.token_to_id), ['<PAD>', '<UNK>', '<BOS>', '<EOS>', 'the', 'apple', 'cat', 'a']);
  t.equal(r.json.vocab_size, 8);
  t.same(r.json.id_to_token, {
    0: '<PAD>',
    1: '<UNK>',
    2: '<BOS>',
    3: '<EOS>',
    4: 'the',
    5: 'apple',
    6: 'cat',
    7: 'a',
  });
  t.equal(r.words, 14);
  t.equal(r.coverage, 9 / 14);
  const tok = tokenizerFromOriginalJson(JSON.parse(JSON.stringify(r.json)));
  t.equal(tok.kind, 'itera-word', 'the original JSON format');
  t.same(tok.encode('The cat ate an apple'), [4, 6, 1, 1, 5]);
  t.same(trainWordTokenizer([...docs].reverse(), 8).json, r.json, 'deterministic, order independent');
  const all = trainWordTokenizer(docs, 100);
  t.equal(all.json.vocab_size, 4 + all.distinctWords, 'a small corpus gives fewer tokens than asked');
  t.ok(compareCodePoints('\uffff', '😀') < 0, 'code point order, not UTF-16 order');
  const proto = trainWordTokenizer(['__proto__ constructor __proto__'], 10);
  t.equal(
    tokenizerFromOriginalJson(JSON.parse(JSON.stringify(proto.json))).encode('__proto__')[0],
    4,
    "'__proto__' is an ordinary word",
  );
});

t.test('word tokenizer training: bad sizes, empty corpus', async (t) => {
  expectIteraError(
    t,
    () => trainWordTokenizer(['a b'], 4),
    'VOCAB_TOO_SMALL',
    /4 special tokens .* give --vocab 5 or more/,
    'vocab 4',
  );
  expectIteraError(t, () => trainWordTokenizer(['a b'], 0), 'VOCAB_TOO_SMALL', /too small/, 'vocab 0');
  expectIteraError(t, () => trainWordTokenizer(['a b'], 2.5), 'VOCAB_TOO_SMALL', /too small/, 'vocab 2.5');
  expectIteraError(t, () => trainWordTokenizer(['  ', '\n'], 10), 'EMPTY_CORPUS', /no words/, 'empty');
});

t.test('stats: unknown rate, tokens per character, spelling cost of unknown words', async (t) => {
  const tok = trainWordTokenizer(['a a a b b c'], 6).tokenizer; // a, b
  const s = tokenizerStats(tok, ['a b c d'], charUnigramBits(['a a a b b c']));
  t.equal(s.tokens, 4);
  t.equal(s.unkTokens, 2);
  t.equal(s.unkRate, 0.5);
  t.equal(s.tokensPerCharacter, 4 / 7);
  t.ok(s.unkSpellingBits > 0);
});

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
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
  const code = await main(args, io);
  return { code, out, err };
}

t.test('CLI: tokenizer train / stats / encode, data prepare; clear errors on bad input', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'itera-tok-'));
  const text = join(dir, 'text.txt');
  writeFileSync(
    text,
    Array.from({ length: 20 }, (_, i) => `Document ${i}: the quick brown fox jumps over the lazy dog ${i % 3}.`).join(
      '\n\n',
    ),
  );
  let r = await cli([
    'tokenizer',
    'train',
    '--kind',
    'bpe',
    '--vocab',
    '300',
    '--corpus',
    text,
    '-o',
    join(dir, 'bpe.json'),
  ]);
  t.equal(r.code, 0, r.err);
  t.match(r.out, /tokenizer {4}bpe, 300 tokens/);
  r = await cli([
    'tokenizer',
    'train',
    '--kind',
    'word',
    '--vocab',
    '20',
    '--corpus',
    text,
    '-o',
    join(dir, 'word.json'),
    '--json',
  ]);
  t.equal(r.code, 0, r.err);
  t.equal(JSON.parse(r.out).vocab, 20);
  t.equal(readTokenizerFile(join(dir, 'word.json')).kind, 'itera-word');
  r = await cli(['tokenizer', 'stats', '--tokenizer', join(dir, 'bpe.json'), '--corpus', text, '--json']);
  t.equal(r.code, 0, r.err);
  t.equal(JSON.parse(r.out).split, 'test');
  t.equal(JSON.parse(r.out).unkRate, 0);
  r = await cli(['tokenizer', 'encode', '--tokenizer', join(dir, 'bpe.json'), '--text', 'the fox']);
  t.match(r.out, /^\d+ tokens\n/);
  r = await cli(['data', 'prepare', '--tokenizer', join(dir, 'bpe.json'), '--corpus', text, '-o', join(dir, 'corpus')]);
  t.equal(r.code, 0, r.err);
  const meta = JSON.parse((await import('node:fs')).readFileSync(join(dir, 'corpus', 'meta.json'), 'utf8'));
  t.equal(meta.dtype, 'uint16');
  t.equal(meta.vocab_size, 300);
  t.equal(meta.eos_id, 3);
  t.same([meta.train_documents, meta.val_documents, meta.test_documents], [16, 2, 2]);
  const fs = await import('node:fs');
  const bin = fs.readFileSync(join(dir, 'corpus', 'test.bin'));
  t.equal(bin.length, meta.test_tokens * 2);
  const ids = Array.from({ length: meta.test_tokens }, (_, i) => bin.readUInt16LE(2 * i));
  t.equal(ids.filter((x) => x === 3).length, 2, 'one <EOS> per document');
  const bpe = readTokenizerFile(join(dir, 'bpe.json'));
  const firstDoc = ids.slice(0, ids.indexOf(3));
  t.equal(bpe.decode(firstDoc), 'Document 0: the quick brown fox jumps over the lazy dog 0.');
  t.equal(fs.readFileSync(join(dir, 'corpus', 'test.txt'), 'utf8').length, meta.splits.test.characters);

  // bad input
  r = await cli([
    'tokenizer',
    'train',
    '--kind',
    'bpe',
    '--vocab',
    '300',
    '--corpus',
    join(dir, 'missing.txt'),
    '-o',
    join(dir, 'x.json'),
  ]);
  t.equal(r.code, 1);
  t.match(r.err, /corpus not found: .*missing\.txt does not exist/);
  writeFileSync(join(dir, 'empty.txt'), '\n\n   \n');
  r = await cli([
    'tokenizer',
    'train',
    '--kind',
    'word',
    '--vocab',
    '300',
    '--corpus',
    join(dir, 'empty.txt'),
    '-o',
    join(dir, 'x.json'),
  ]);
  t.equal(r.code, 1);
  t.match(r.err, /corpus .*empty\.txt is empty/);
  r = await cli([
    'data',
    'prepare',
    '--tokenizer',
    join(dir, 'bpe.json'),
    '--corpus',
    join(dir, 'empty.txt'),
    '-o',
    join(dir, 'c2'),
  ]);
  t.match(r.err, /is empty/);
  r = await cli(['tokenizer', 'train', '--kind', 'word', '--vocab', '3', '--corpus', text, '-o', join(dir, 'x.json')]);
  t.equal(r.code, 1);
  t.match(r.err, /vocabulary size 3 is too small: the 4 special tokens/);
  r = await cli(['tokenizer', 'train', '--kind', 'bpe', '--vocab', '100', '--corpus', text, '-o', join(dir, 'x.json')]);
  t.match(
    r.err,
    /vocabulary size 100 is too small for byte-level BPE: the 4 special tokens and the 256 byte tokens need 260 ids/,
  );
  r = await cli(['tokenizer', 'train', '--kind', 'wordpiece', '--vocab', '100', '-o', join(dir, 'x.json')]);
  t.equal(r.code, 2);
  t.match(r.err, /--kind must be word or bpe, got 'wordpiece'/);
  r = await cli(['tokenizer', 'train', '--kind', 'bpe', '--vocab', 'many', '-o', join(dir, 'x.json')]);
  t.match(r.err, /--vocab must be a number/);
  writeFileSync(join(dir, 'bad.json'), '{"vocab_size": 3, "token_to_id": ');
  r = await cli(['data', 'prepare', '--tokenizer', join(dir, 'bad.json'), '--corpus', text, '-o', join(dir, 'c3')]);
  t.equal(r.code, 1);
  t.match(r.err, /tokenizer .*bad\.json is not valid JSON/);
  writeFileSync(join(dir, 'bad2.json'), '{"vocab_size": 3, "token_to_id": {"a": 0}, "id_to_token": {"0": "b"}}');
  r = await cli(['tokenizer', 'stats', '--tokenizer', join(dir, 'bad2.json'), '--corpus', text]);
  t.match(r.err, /tokenizer .*bad2\.json: tokenizer JSON: token "a" -> id 0, but id 0 -> "b"/);
  writeFileSync(
    join(dir, 'bad3.json'),
    '{"format": "itera-bpe", "version": 1, "pretokenizer": "itera-bpe-v1", "vocab_size": 1, "tokens": ["<PAD>"], "merges": [], "specials": {}}',
  );
  r = await cli(['tokenizer', 'stats', '--tokenizer', join(dir, 'bad3.json'), '--corpus', text]);
  t.match(r.err, /the special token <PAD> is missing/);
  r = await cli(['tokenizer', 'stats', '--tokenizer', join(dir, 'nope.json'), '--corpus', text]);
  t.match(r.err, /tokenizer file not found/);
  expectIteraError(t, () => readTokenizerFile(dir), 'NO_FILE', /is a directory/, 'a directory');
});
