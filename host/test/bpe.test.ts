import t from 'tap';
import {
  BpeTokenizer,
  bpeFromJson,
  byteChar,
  charByte,
  pretokenize,
  textToBytes,
  bytesToText,
  BPE_KEYS,
} from '../runtime/tokenizer/bpe.js';
import { trainBpe, BPE_BASE_SIZE } from '../tokenize/bpe-train.js';
import { tokenizerFromOriginalJson, tokenizerFromMetadata, type Tokenizer } from '../runtime/tokenizer/index.js';
import { readGguf } from '../runtime/gguf.js';
import { writeGguf } from '../convert/gguf-write.js';
import { expectIteraError } from './shared.js';
import { lcg } from './helpers.js';

const lcgForTests = (seed: number): (() => number) => {
  const r = lcg(seed);
  return () => (r() + 1) / 2; // [0, 1)
};

const CORPUS = [
  'The cat sat on the mat. The cat ate the rat!',
  "It's the end of the line, isn't it? Don't stop: 1961, 1962 and 2024.",
  'Naïve café owners — über-cool — serve crème brûlée. 東京は大きい。 Emoji 😀😃 too.',
  'Line one\r\nLine two\n\n\tIndented   with   spaces\n',
  'the the the there their then them these those thesis',
];

function streamPieces(tok: Tokenizer, ids: number[]): string[] {
  const dec = tok.streamDecoder();
  return [...ids.map((id) => dec.push(id)), dec.end()];
}

function viaGguf(tok: Tokenizer): Tokenizer {
  return tokenizerFromMetadata(readGguf(writeGguf({ metadata: tok.toMetadata(), tensors: [] })).metadata);
}

/** Random text: ASCII, Latin-1, CJK, emoji, control characters, CR/LF, tabs, runs of spaces. */
function randomText(rnd: () => number, n: number): string {
  const pools = [
    'abcdefghijklmnopqrstuvwxyz',
    'ABCXYZ',
    '0123456789',
    '     ',
    '\t\r\n',
    '.,;:!?\'"()[]-',
    '\x00\x01\x07\x1b\x7f',
    'éüßøñçÅ',
    '東京日本語',
    '😀😃🎉👍🏽',
    '\u200b\u00a0\u2028\ufeff',
    'Ωπσ',
  ];
  let s = '';
  for (let i = 0; i < n; i++) {
    const pool = [...pools[Math.floor(rnd() * pools.length)]!];
    s += pool[Math.floor(rnd() * pool.length)];
  }
  return s;
}

const trained = trainBpe(CORPUS, 290);
const tok = trained.tokenizer;

t.test('byte <-> token text mapping', async (t) => {
  const seen = new Set<string>();
  for (let b = 0; b < 256; b++) {
    const c = byteChar(b);
    t.equal(c.length, 1);
    t.not(c, ' ', 'no space in token text');
    t.equal(charByte(c.charCodeAt(0)), b);
    seen.add(c);
  }
  t.equal(seen.size, 256, 'one character per byte');
  t.equal(byteChar(0x20), '\u0120');
  t.equal(byteChar(0x0a), '\u010a');
  t.equal(byteChar(0x41), 'A');
  t.equal(charByte('\u0141'.charCodeAt(0)), -1, 'U+0141 (would be byte 0x41) stands for nothing');
  t.equal(textToBytes('x\u2603'), null);
  t.equal(bytesToText([0x48, 0x69, 0x20, 0xe2, 0x82, 0xac]), 'Hi\u0120\u01e2\u0182\u01ac');
});

t.test('pre-tokenization rule (docs/tokenizers.md examples)', async (t) => {
  const chunks = (s: string): string[] => {
    const b = new TextEncoder().encode(s);
    const bounds = pretokenize(b);
    const out: string[] = [];
    for (let i = 0; i < bounds.length; i += 2) out.push(new TextDecoder().decode(b.subarray(bounds[i], bounds[i + 1])));
    if (b.length > 0) {
      t.equal(bounds[0], 0);
      t.equal(bounds[bounds.length - 1], b.length);
    }
    for (let i = 1; i + 1 < bounds.length; i += 2) t.equal(bounds[i], bounds[i + 1], 'chunks are contiguous');
    return out;
  };
  t.same(chunks('Hello world'), ['Hello', ' world']);
  t.same(chunks("It's 1961, isn't it?"), ["It's", ' 1961', ',', " isn't", ' it', '?']);
  t.same(chunks('a  b'), ['a', ' ', ' b'], 'a run of spaces gives its last space to the next chunk');
  t.same(chunks('a \n\nThe end.'), ['a', ' \n\n', 'The', ' end', '.']);
  t.same(chunks('x "(quoted)" y'), ['x', ' "(', 'quoted', ')"', ' y']);
  t.same(chunks('end   '), ['end', '   '], 'trailing spaces stay one chunk');
  t.same(chunks('café—ok'), ['café—ok'], 'bytes >= 0x80 are letters');
  t.same(chunks('\r\n\tx'), ['\r\n\t', 'x']);
  t.same(chunks(''), []);
});

t.test('training: size, determinism, order independence, errors', async (t) => {
  t.equal(tok.size, 290);
  t.equal(trained.merges, 290 - BPE_BASE_SIZE);
  t.same([tok.pad, tok.unk, tok.bos, tok.eos], [0, 1, 2, 3]);
  t.same(tok.tokenText(4 + 0x41), 'A', 'byte tokens at 4 + byte');
  const again = trainBpe(CORPUS, 290).tokenizer;
  t.same(again.toJson(), tok.toJson(), 'same corpus, same tokenizer');
  const reversed = trainBpe([...CORPUS].reverse(), 290).tokenizer;
  t.same(reversed.toJson(), tok.toJson(), 'document order does not matter');
  t.equal(tok.mergeStrings()[0], '\u0120 t', 'the most frequent pair first (" t" in this corpus)');
  const small = trainBpe(['ab ab ab'], 10000);
  t.ok(small.stoppedEarly, 'stops when no pair occurs twice');
  t.ok(small.tokenizer.size < 10000);
  expectIteraError(t, () => trainBpe(CORPUS, 259), 'VOCAB_TOO_SMALL', /256 byte tokens need 260 ids/, 'vocab 259');
  expectIteraError(t, () => trainBpe(CORPUS, 3), 'VOCAB_TOO_SMALL', /--vocab 260 or more/, 'vocab 3');
  expectIteraError(t, () => trainBpe(['', ''], 300), 'EMPTY_CORPUS', /no text/, 'empty corpus');
  const special = trainBpe(Array(50).fill('<EOS> <EOS> <PAD>'), 330).tokenizer;
  t.notOk(
    special.mergeStrings().some((m) => m.replace(' ', '') === '<EOS>'),
    'no merge makes a special name',
  );
  t.same(special.encode('<EOS>').includes(3), false, 'specials are never parsed from text');
});

t.test('round trip: decode(encode(x)) == x for any Unicode text', async (t) => {
  for (const s of CORPUS) t.equal(tok.decode(tok.encode(s)), s);
  const rnd = lcgForTests(7);
  for (let i = 0; i < 300; i++) {
    const s = randomText(rnd, 1 + Math.floor(rnd() * 80));
    const ids = tok.encode(s);
    if (tok.decode(ids) !== s) {
      t.fail(`round trip of ${JSON.stringify(s)}`);
      return;
    }
    t.notOk(ids.includes(tok.unk), 'never <UNK>');
  }
  t.equal(tok.decode(tok.encode('')), '');
  t.equal(tok.decode(tok.encode('a\r\nb\r\n')), 'a\r\nb\r\n', 'CRLF');
  t.equal(tok.decode(tok.encode('\x00\x01\x1f\x7f')), '\x00\x01\x1f\x7f', 'control characters');
  t.equal(tok.decode(tok.encode('👩‍👩‍👧 🏳️‍🌈')), '👩‍👩‍👧 🏳️‍🌈', 'emoji sequences');
  t.equal(tok.decode([2, ...tok.encode('hi'), 0, 3]), 'hi', 'PAD BOS EOS decode to nothing');
  t.equal(tok.decode([1, 99999]), '\ufffd\ufffd', '<UNK> and ids with no token are U+FFFD');
});

t.test('merging: the lowest rank at its leftmost occurrence; long chunks agree', async (t) => {
  // a hand-made vocabulary: a b, then (a a), (aa a), (b b)
  const bytes = Array.from({ length: 256 }, (_, b) => byteChar(b));
  const tokens = ['<PAD>', '<UNK>', '<BOS>', '<EOS>', ...bytes, 'aa', 'aaa', 'bb', 'aab'];
  const h = new BpeTokenizer(tokens, ['a a', 'aa a', 'b b', 'aa b'], { pad: 0, unk: 1, bos: 2, eos: 3 });
  const A = 4 + 0x61,
    B = 4 + 0x62,
    AA = 260,
    AAA = 261,
    BB = 262,
    AAB = 263;
  t.same(h.encode('aaa'), [AAA], '"a a" at its leftmost occurrence, then "aa a"');
  t.same(h.encode('aaaa'), [AA, AA], 'rank 0 "a a" twice before rank 1 "aa a"');
  t.same(h.encode('aab'), [AAB]);
  t.same(h.encode('abb'), [A, BB]);
  t.same(h.encode('aaab'), [AAA, B], '"aa a" (rank 1) before "aa b" (rank 3)');
  // a long chunk takes the heap path: it must agree with encoding the same chunk cut short
  const rnd = lcgForTests(3);
  for (let i = 0; i < 50; i++) {
    let s = '';
    const n = 40 + Math.floor(rnd() * 300);
    for (let j = 0; j < n; j++) s += 'thea'[Math.floor(rnd() * 4)];
    const long = tok.encodeChunk(new TextEncoder().encode(s));
    // reference: the plain loop of the specification
    let ids = [...new TextEncoder().encode(s)].map((b) => 4 + b);
    for (;;) {
      let best = -1,
        at = -1;
      for (let k = 0; k + 1 < ids.length; k++) {
        const r = tok.pairRank(ids[k]!, ids[k + 1]!);
        if (r !== undefined && (best < 0 || r < best)) {
          best = r;
          at = k;
        }
      }
      if (best < 0) break;
      ids = [...ids.slice(0, at), tok.mergeResult(best), ...ids.slice(at + 2)];
    }
    if (JSON.stringify(long) !== JSON.stringify(ids)) {
      t.fail(`heap and plain loop differ on ${s}`);
      return;
    }
  }
  t.pass('heap path agrees with the plain loop');
  void AAB;
});

t.test('streaming decode: pieces concatenate to decode, tokens ending mid-character', async (t) => {
  // byte tokens alone split every multi-byte character
  const bytesOnly = (s: string): number[] => [...new TextEncoder().encode(s)].map((b) => 4 + b);
  for (const s of ['€uro', '😀!', 'naïve 東京 😃', 'x']) {
    const ids = bytesOnly(s);
    const pieces = streamPieces(tok, ids);
    t.equal(pieces.join(''), s, `pieces of ${s}`);
    t.equal(pieces.join(''), tok.decode(ids));
    t.ok(
      pieces.every((p) => !p.includes('\ufffd')),
      'no replacement characters mid-stream',
    );
  }
  const rnd = lcgForTests(11);
  for (let i = 0; i < 100; i++) {
    const ids = Array.from({ length: 1 + Math.floor(rnd() * 30) }, () => Math.floor(rnd() * tok.size));
    const whole = tok.decode(ids);
    if (streamPieces(tok, ids).join('') !== whole) {
      t.fail(`stream of random ids ${ids.join(',')}`);
      return;
    }
  }
  // the stateless interface, as IteraModel.stream uses it
  const ids = bytesOnly('😀 ok');
  let started = false,
    out = '';
  for (const id of ids) {
    const s = tok.decodeToken(id, !started);
    if (s) started = true;
    out += s;
  }
  t.equal(out, '😀 ok', 'decodeToken buffers incomplete bytes, even at the start');
  started = false;
  out = '';
  for (const id of tok.encode('again')) {
    const s = tok.decodeToken(id, !started);
    if (s) started = true;
    out += s;
  }
  t.equal(out, 'again', 'a new stream after one that emitted text starts fresh');
});

t.test('files: JSON and GGUF metadata round trips; malformed JSON', async (t) => {
  const json = tok.toJson();
  const fromJson = tokenizerFromOriginalJson(JSON.parse(JSON.stringify(json)));
  t.equal(fromJson.kind, 'itera-bpe', 'tokenizerFromOriginalJson accepts itera-bpe');
  t.same(fromJson.encode(CORPUS[2]!), tok.encode(CORPUS[2]!));
  const g = viaGguf(tok);
  t.equal(g.kind, 'itera-bpe');
  t.same(g.encode(CORPUS[1]!), tok.encode(CORPUS[1]!));
  const meta = new Map(tok.toMetadata().map((kv) => [kv.key, kv.value]));
  t.ok(meta.has(BPE_KEYS.merges) && meta.has('tokenizer.ggml.tokens') && meta.has(BPE_KEYS.tokenType));

  const bad = (mut: (j: Record<string, unknown>) => void, re: RegExp, what: string): void => {
    const j = JSON.parse(JSON.stringify(json)) as Record<string, unknown>;
    mut(j);
    expectIteraError(t, () => bpeFromJson(j), 'TOKENIZER_BAD_JSON', re, what);
  };
  bad(
    (j) => {
      j.version = 2;
    },
    /version 2 is not supported/,
    'version',
  );
  bad(
    (j) => {
      j.pretokenizer = 'gpt2';
    },
    /pretokenizer "gpt2" is not supported/,
    'pretokenizer',
  );
  bad(
    (j) => {
      j.vocab_size = 5;
    },
    /vocab_size 5 is not the number of tokens/,
    'vocab_size',
  );
  bad(
    (j) => {
      j.tokens = 'abc';
    },
    /tokens must be an array of strings/,
    'tokens',
  );
  bad(
    (j) => {
      (j.merges as string[]).push('zz');
    },
    /merge \d+ "zz" is not 'LEFT RIGHT'/,
    'merge format',
  );
  bad(
    (j) => {
      (j.merges as string[])[0] = 'q q';
    },
    /merged token is not in the vocabulary/,
    'merge result missing',
  );
  bad(
    (j) => {
      (j.merges as string[]).splice(0, 1);
    },
    /uses a token that no earlier merge makes|is made by no merge/,
    'merge removed',
  );
  bad(
    (j) => {
      (j.tokens as string[])[10] = 'x\u2603';
    },
    /stands for no byte/,
    'bad token text',
  );
  bad(
    (j) => {
      (j.tokens as string[])[11] = (j.tokens as string[])[12]!;
    },
    /has two ids/,
    'duplicate token',
  );
  bad(
    (j) => {
      delete (j.specials as Record<string, unknown>)['<EOS>'];
    },
    /<EOS> is missing/,
    'special missing',
  );
  bad(
    (j) => {
      (j.specials as Record<string, number>)['<EOS>'] = 2;
    },
    /whose token is "<BOS>"/,
    'special id wrong',
  );
  expectIteraError(
    t,
    () => tokenizerFromOriginalJson({ format: 'itera-bpe' }),
    'TOKENIZER_BAD_JSON',
    /version/,
    'bare format',
  );
  expectIteraError(t, () => tokenizerFromOriginalJson([1, 2]), 'TOKENIZER_BAD_JSON', /expected an object/, 'an array');
});
