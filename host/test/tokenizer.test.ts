import t from 'tap';
import { readFileSync } from 'node:fs';
import {
  tokenizerFromOriginalJson,
  tokenizerFromMetadata,
  pythonSplit,
  WordTokenizer,
  CharTokenizer,
  TOKENIZER_KEYS,
  type Tokenizer,
} from '../runtime/tokenizer/index.js';
import { readGguf, metadataMap, type GgufKV } from '../runtime/gguf.js';
import { writeGguf } from '../convert/gguf-write.js';
import { needShared, requireShared, expectIteraError } from './shared.js';

const TOK_2000 = ['reference', 'tokenizers', 'tokenizer_2000.json'];
const TOK_TINY = ['reference', 'tokenizers', 'tokenizer_tiny.json'];
const GOLDEN = ['reference', 'golden', 'micro', 'reference.json'];

const loadJson = (parts: string[]): unknown => JSON.parse(readFileSync(requireShared(...parts), 'utf8'));

function streamDecode(tok: Tokenizer, ids: number[]): string {
  let started = false;
  let out = '';
  for (const id of ids) {
    const s = tok.decodeToken(id, !started);
    if (s) started = true;
    out += s;
  }
  return out;
}

function viaGguf(tok: Tokenizer): Tokenizer {
  const f = readGguf(writeGguf({ metadata: tok.toMetadata(), tensors: [] }));
  return tokenizerFromMetadata(f.metadata);
}

// A small word-level vocabulary in the original's JSON form, for tests that need no ../shared.
const smallWordJson = {
  vocab_size: 50,
  token_to_id: { '<PAD>': 0, '<UNK>': 1, '<BOS>': 2, '<EOS>': 3, the: 4, 'day,': 5, 'day.': 6, dog: 7, ünïcode: 8 },
  id_to_token: {
    0: '<PAD>',
    1: '<UNK>',
    2: '<BOS>',
    3: '<EOS>',
    4: 'the',
    5: 'day,',
    6: 'day.',
    7: 'dog',
    8: 'ünïcode',
  },
};

t.test('Python str.split() semantics', async (t) => {
  t.same(pythonSplit('  a  b\tc\n'), ['a', 'b', 'c']);
  t.same(pythonSplit(''), []);
  t.same(pythonSplit(' \t\n '), []);
  t.same(pythonSplit('a\u0085b\x1cc\x1fd'), ['a', 'b', 'c', 'd'], 'U+0085 and U+001C..1F split, as in Python');
  t.same(pythonSplit('a\ufeffb'), ['a\ufeffb'], 'U+FEFF does not split (JS \\s would)');
  t.same(pythonSplit('a\u00a0b\u3000c\u2029d'), ['a', 'b', 'c', 'd']);
  t.same(pythonSplit('a\u200bb'), ['a\u200bb'], 'zero-width space is not whitespace');
});

t.test('word level: encode/decode rules (no ../shared needed)', async (t) => {
  const tok = tokenizerFromOriginalJson(smallWordJson);
  t.equal(tok.kind, 'itera-word');
  t.equal(tok.size, 9);
  t.same([tok.pad, tok.unk, tok.bos, tok.eos], [0, 1, 2, 3]);
  t.same(tok.encode('The DOG'), [4, 7], 'lowercased');
  t.same(tok.encode('  the day, the day. the day  '), [4, 5, 4, 6, 4, 1], 'punctuation attached; bare "day" unknown');
  t.same(tok.encode('ÜNÏCODE cat'), [8, 1], 'non-ASCII lowercase, unknown -> 1');
  t.same(tok.encode(''), []);
  t.same(tok.encode('<BOS>'), [1], 'specials are not parsed from text (lowercased, then unknown)');
  t.equal(tok.decode([2, 4, 7, 0, 5, 3]), 'the dog day,', 'PAD, BOS, EOS skipped; single spaces');
  t.equal(tok.decode([4, 1, 999, -1, 2.5, 7]), 'the <UNK> <UNK> <UNK> <UNK> dog', 'an id with no token is <UNK>');
  const ids = [2, 4, 0, 7, 999, 3, 5];
  t.equal(streamDecode(tok, ids), tok.decode(ids), 'streaming pieces concatenate to decode()');
  t.equal(streamDecode(tok, [2, 3]), '');
  t.equal(tok.tokenText(5), 'day,');
  t.equal(tok.tokenText(50), undefined);
});

t.test('char level: rules (no ../shared needed)', async (t) => {
  const tok = new CharTokenizer(['<PAD>', '<UNK>', '<BOS>', '<EOS>', 'a', 'B', ' ', '😀'], {
    pad: 0,
    unk: 1,
    bos: 2,
    eos: 3,
  });
  t.equal(tok.kind, 'itera-char');
  t.same(tok.encode('aB a😀b'), [4, 5, 6, 4, 7, 1], 'case kept; an astral character is one id; unknown -> 1');
  t.same(tok.encode('\u{1F601}'), [1], 'one unknown code point is one <UNK>, not two');
  t.equal(tok.decode([2, 4, 5, 6, 7, 3, 0]), 'aB 😀');
  t.equal(tok.decode([4, 1, 77]), 'a<UNK><UNK>');
  t.equal(streamDecode(tok, [2, 4, 6, 7, 99, 3]), tok.decode([2, 4, 6, 7, 99, 3]));
});

t.test('ids with gaps: stored as empty tokens, decode as <UNK>, never produced', async (t) => {
  const json = {
    vocab_size: 10,
    token_to_id: { '<PAD>': 0, '<UNK>': 1, '<BOS>': 2, '<EOS>': 3, x: 6 },
    id_to_token: { 0: '<PAD>', 1: '<UNK>', 2: '<BOS>', 3: '<EOS>', 6: 'x' },
  };
  const tok = tokenizerFromOriginalJson(json);
  t.equal(tok.size, 7);
  t.equal(tok.tokenText(4), undefined);
  t.same(tok.encode('x y'), [6, 1]);
  t.equal(tok.decode([6, 4, 5]), 'x <UNK> <UNK>');
  const back = viaGguf(tok);
  t.equal(back.size, 7);
  t.same(back.encode('x y'), [6, 1]);
  t.equal(back.decode([6, 4]), 'x <UNK>');
});

t.test('metadata round trip keeps kind, tokens, specials and lowercase', async (t) => {
  const word = tokenizerFromOriginalJson(smallWordJson);
  const w2 = viaGguf(word);
  t.ok(w2 instanceof WordTokenizer);
  t.same(w2.toMetadata(), word.toMetadata());
  t.same(w2.encode('The day, dog'), word.encode('The day, dog'));
  const m = metadataMap(word.toMetadata());
  t.same(m.get(TOKENIZER_KEYS.model), { type: 'string', value: 'itera-word' });
  t.same(m.get(TOKENIZER_KEYS.lowercase), { type: 'bool', value: true });
  t.same(m.get(TOKENIZER_KEYS.unk), { type: 'u32', value: 1 });

  const cased = new WordTokenizer(
    ['<PAD>', '<UNK>', '<BOS>', '<EOS>', 'The'],
    { pad: 0, unk: 1, bos: 2, eos: 3 },
    false,
  );
  t.same(viaGguf(cased).encode('The the'), [4, 1], 'lowercase=false kept');
});

t.test('original JSON: clear errors', async (t) => {
  const bad = (json: unknown, re: RegExp, what: string): void =>
    expectIteraError(t, () => tokenizerFromOriginalJson(json), 'TOKENIZER_BAD_JSON', re, what);
  bad(null, /expected an object/, 'null');
  bad([1], /expected an object/, 'array');
  bad({ vocab: {} }, /neither a word-level/, 'unknown shape');
  bad({ token_to_id: {}, id_to_token: 3 }, /needs objects token_to_id and id_to_token/, 'id_to_token not an object');
  bad(
    { ...smallWordJson, id_to_token: { ...smallWordJson.id_to_token, '07': 'x' } },
    /id "07" is not a non-negative integer/,
    'non-canonical id',
  );
  bad(
    { ...smallWordJson, token_to_id: { ...smallWordJson.token_to_id, dog: 8 } },
    /token "dog" -> id 8, but id 8 -> "ünïcode"/,
    'maps disagree',
  );
  bad(
    { ...smallWordJson, token_to_id: { ...smallWordJson.token_to_id, cat: 9 } },
    /token->id map has 10 entries but the id->token map has 9/,
    'extra token',
  );
  const noUnk = {
    vocab_size: 5,
    token_to_id: { '<PAD>': 0, '<BOS>': 2, '<EOS>': 3 },
    id_to_token: { 0: '<PAD>', 2: '<BOS>', 3: '<EOS>' },
  };
  bad(noUnk, /special token <UNK> is missing/, 'missing <UNK>');
  bad({ ...smallWordJson, vocab_size: 5 }, /id \d+ is not below vocab_size 5/, 'id beyond vocab_size');
  bad({ ...smallWordJson, vocab_size: -1 }, /vocab_size is -1/, 'negative vocab_size');
  bad({ token2id: { a: 0 }, id2token: { 0: 'a' }, level: 'word' }, /level is "word"/, 'char maps with level word');
  bad({ token_to_id: { '': 0 }, id_to_token: { 0: '' } }, /empty token/, 'empty token');
});

t.test('model-file metadata: clear errors', async (t) => {
  const good = tokenizerFromOriginalJson(smallWordJson).toMetadata();
  const edit = (key: string, value: GgufKV['value'] | undefined): GgufKV[] =>
    value === undefined
      ? good.filter((kv) => kv.key !== key)
      : good.map((kv) => (kv.key === key ? { key, value } : kv));
  expectIteraError(
    t,
    () => tokenizerFromMetadata(edit(TOKENIZER_KEYS.model, { type: 'string', value: 'gpt2' })),
    'TOKENIZER_UNSUPPORTED',
    /'gpt2'.*known: itera-word, itera-char/,
    'unknown model',
  );
  expectIteraError(
    t,
    () => tokenizerFromMetadata(edit(TOKENIZER_KEYS.model, undefined)),
    'TOKENIZER_BAD_METADATA',
    /tokenizer.ggml.model is missing/,
    'no model',
  );
  expectIteraError(
    t,
    () => tokenizerFromMetadata(edit(TOKENIZER_KEYS.bos, { type: 'i32', value: 2 })),
    'TOKENIZER_BAD_METADATA',
    /bos_token_id must be a u32, found i32/,
    'bos as i32',
  );
  expectIteraError(
    t,
    () => tokenizerFromMetadata(edit(TOKENIZER_KEYS.eos, { type: 'u32', value: 9 })),
    'TOKENIZER_BAD_VOCAB',
    /eos id 9 is not the id of a token/,
    'eos out of range',
  );
  expectIteraError(
    t,
    () => tokenizerFromMetadata(edit(TOKENIZER_KEYS.tokens, { type: 'array', itemType: 'u32', value: [1] })),
    'TOKENIZER_BAD_METADATA',
    /array of strings, found an array of u32/,
    'tokens not strings',
  );
  expectIteraError(
    t,
    () =>
      tokenizerFromMetadata(
        edit(TOKENIZER_KEYS.tokens, {
          type: 'array',
          itemType: 'string',
          value: ['<PAD>', '<UNK>', '<BOS>', '<EOS>', 'a', 'a'],
        }),
      ),
    'TOKENIZER_BAD_VOCAB',
    /token "a" has two ids, 4 and 5/,
    'duplicate token',
  );
  expectIteraError(
    t,
    () => tokenizerFromMetadata(edit(TOKENIZER_KEYS.lowercase, undefined)),
    'TOKENIZER_BAD_METADATA',
    /lowercase is missing/,
    'no lowercase',
  );
});

t.test('golden prompts encode like the original', needShared(...GOLDEN), async (t) => {
  const golden = loadJson(GOLDEN) as {
    greedy_generation: { cases: { prompt: string; prompt_ids: number[]; greedy_ids: number[]; greedy_text: string }[] };
  };
  const tok = tokenizerFromOriginalJson(loadJson(TOK_2000));
  t.equal(tok.size, 184, 'the micro tokenizer has 184 tokens (model vocab 2000)');
  const want: Record<string, number[]> = {
    'Once upon a time, there was a': [20, 21, 5, 22, 11, 6, 5],
    'Lily was a happy cat.': [73, 6, 5, 69, 119],
    'the dog': [4, 32],
  };
  for (const c of golden.greedy_generation.cases) {
    t.same(tok.encode(c.prompt), c.prompt_ids, `encode ${JSON.stringify(c.prompt)}`);
    if (want[c.prompt]) t.same(c.prompt_ids, want[c.prompt], 'golden file has the expected ids');
    t.equal(tok.decode(c.greedy_ids), c.greedy_text, `decode greedy ids of ${JSON.stringify(c.prompt)}`);
    t.equal(streamDecode(tok, c.greedy_ids), c.greedy_text, 'streaming decode too');
    const back = viaGguf(tok);
    t.same(back.encode(c.prompt), c.prompt_ids, 'after a trip through GGUF metadata');
    t.equal(back.decode(c.greedy_ids), c.greedy_text);
  }
});

t.test('tokenizer_2000.json: every token encodes to its id', needShared(...TOK_2000), async (t) => {
  const json = loadJson(TOK_2000) as { token_to_id: Record<string, number> };
  const tok = tokenizerFromOriginalJson(json);
  let bad = 0;
  for (const [w, id] of Object.entries(json.token_to_id)) {
    if (w.startsWith('<')) continue;
    const got = tok.encode(w);
    if (got.length !== 1 || got[0] !== id) bad++;
  }
  t.equal(bad, 0);
});

t.test('character-level tokenizer_tiny.json: round trip', needShared(...TOK_TINY), async (t) => {
  const json = loadJson(TOK_TINY) as { token2id: Record<string, number> };
  const tok = tokenizerFromOriginalJson(json);
  t.equal(tok.kind, 'itera-char');
  t.equal(tok.size, 42);
  const text = 'The quick brown fox. A Dog, Hen-Mice. Extra jazz.';
  const ids = tok.encode(text);
  t.equal(ids.length, Array.from(text).length);
  t.notOk(ids.includes(1), 'every character is known');
  t.equal(tok.decode(ids), text, 'round trip');
  t.same(tok.encode('Zebra!'), [1, ...tok.encode('ebra'), 1], 'Z and ! unknown');
  t.equal(tok.encode('e')[0], json.token2id['e']);
  const back = viaGguf(tok);
  t.same(back.encode(text), ids);
  t.equal(back.decode(ids), text);
});
