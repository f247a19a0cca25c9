// Training the original's frequency word-level tokenizer: lowercase, split on whitespace (as
// Python's str.split()), keep the vocabSize - 4 most frequent words after the 4 specials
// <PAD> <UNK> <BOS> <EOS> (ids 0..3). Ties in frequency go to the word that comes first in
// Unicode code point order (so the result does not depend on document order). Written in the
// original's JSON format ({vocab_size, token_to_id, id_to_token}), which `itera convert
// --tokenizer` and scripts/train read.

import { IteraError } from '../runtime/types.js';
import { pythonSplit, WordTokenizer } from '../runtime/tokenizer/index.js';

export const WORD_SPECIALS = ['<PAD>', '<UNK>', '<BOS>', '<EOS>'] as const;

export interface WordTokenizerJson {
  vocab_size: number;
  token_to_id: Record<string, number>;
  id_to_token: Record<string, string>;
}

export interface WordTrainResult {
  tokenizer: WordTokenizer;
  json: WordTokenizerJson;
  /** Distinct words in the corpus, and words in all. */
  distinctWords: number;
  words: number;
  /** Fraction of the corpus's words (occurrences) the vocabulary covers. */
  coverage: number;
}

/** Code point order (UTF-16 code unit order differs from it only for surrogate pairs). */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) return x - y;
    if (x > 0xffff) i++;
  }
  return a.length - b.length;
}

export function trainWordTokenizer(documents: Iterable<string>, vocabSize: number): WordTrainResult {
  if (!Number.isInteger(vocabSize) || vocabSize <= WORD_SPECIALS.length) {
    throw new IteraError(
      `vocabulary size ${String(vocabSize)} is too small: the ${WORD_SPECIALS.length} special tokens (${WORD_SPECIALS.join(' ')}) take ids 0..3, so give --vocab 5 or more`,
      'VOCAB_TOO_SMALL',
    );
  }
  const counts = new Map<string, number>();
  let words = 0;
  for (const doc of documents) {
    for (const w of pythonSplit(doc.toLowerCase())) {
      counts.set(w, (counts.get(w) ?? 0) + 1);
      words++;
    }
  }
  if (words === 0) throw new IteraError('the corpus has no words to train a tokenizer on', 'EMPTY_CORPUS');
  const specials = new Set<string>(WORD_SPECIALS);
  const ranked = [...counts.entries()]
    .filter(([w]) => !specials.has(w)) // cannot happen after lowercasing, but keep ids unique anyway
    .sort((a, b) => b[1] - a[1] || compareCodePoints(a[0], b[0]));
  const kept = ranked.slice(0, vocabSize - WORD_SPECIALS.length);
  const tokens = [...WORD_SPECIALS, ...kept.map(([w]) => w)];
  const covered = kept.reduce((s, [, c]) => s + c, 0);
  // Object.fromEntries defines own properties, so even a word like '__proto__' is a plain key
  const json: WordTokenizerJson = {
    vocab_size: tokens.length,
    token_to_id: Object.fromEntries(tokens.map((tok, id) => [tok, id])),
    id_to_token: Object.fromEntries(tokens.map((tok, id) => [String(id), tok])),
  };
  const tokenizer = new WordTokenizer(tokens, { pad: 0, unk: 1, bos: 2, eos: 3 }, true, 'trained word tokenizer');
  return { tokenizer, json, distinctWords: counts.size, words, coverage: covered / words };
}

/** The original's JSON form of a word tokenizer (ids must be dense). */
export function wordTokenizerJson(tok: WordTokenizer): WordTokenizerJson {
  const pairs: [number, string][] = [];
  for (let id = 0; id < tok.size; id++) {
    const t = tok.tokenText(id);
    if (t !== undefined) pairs.push([id, t]);
  }
  return {
    vocab_size: tok.size,
    token_to_id: Object.fromEntries(pairs.map(([id, t]) => [t, id])),
    id_to_token: Object.fromEntries(pairs.map(([id, t]) => [String(id), t])),
  };
}
