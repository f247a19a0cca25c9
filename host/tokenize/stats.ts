// Measurements of a tokenizer on a text: tokens per character, unknown-token rate, round trip.
// Platform-neutral.

import type { Tokenizer } from '../runtime/tokenizer/index.js';
import { pythonSplit } from '../runtime/tokenizer/index.js';

export interface TokenizerStats {
  kind: string;
  size: number;
  documents: number;
  /** Characters of the texts (UTF-16 code units, as `itera score` counts them), excluding separators. */
  characters: number;
  tokens: number;
  tokensPerCharacter: number;
  /** Tokens that are <UNK>, and their share of all tokens. */
  unkTokens: number;
  unkRate: number;
  /** Distinct ids the texts use. */
  idsUsed: number;
  /** Documents whose decode(encode(text)) is the text exactly. */
  exactRoundTrips: number;
  /** Bits to spell out every <UNK> word with a character unigram model (word tokenizers only;
   *  0 otherwise): what a word-level model's bits per character leave out. See docs/vocabulary.md. */
  unkSpellingBits: number;
}

/** A character unigram model (add-one smoothed over the characters seen, plus an end-of-word
 *  symbol) estimated from `texts`: -log2 p for each character. */
export function charUnigramBits(texts: Iterable<string>): (word: string) => number {
  const counts = new Map<string, number>();
  let total = 0;
  let words = 0;
  for (const t of texts) {
    for (const ch of t) {
      if (/\s/.test(ch)) continue;
      counts.set(ch, (counts.get(ch) ?? 0) + 1);
      total++;
    }
    words += pythonSplit(t).length;
  }
  const symbols = counts.size + 2; // + end of word + an unseen character
  const denom = total + words + symbols;
  const unseen = -Math.log2(1 / denom);
  const end = -Math.log2((words + 1) / denom);
  const bits = new Map<string, number>();
  for (const [ch, c] of counts) bits.set(ch, -Math.log2((c + 1) / denom));
  return (word: string) => {
    let b = end;
    for (const ch of word) b += bits.get(ch) ?? unseen;
    return b;
  };
}

export function tokenizerStats(
  tok: Tokenizer,
  texts: readonly string[],
  spellBits?: (word: string) => number,
): TokenizerStats {
  let characters = 0;
  let tokens = 0;
  let unk = 0;
  let exact = 0;
  let unkSpellingBits = 0;
  const used = new Set<number>();
  for (const text of texts) {
    const ids = tok.encode(text);
    characters += text.length;
    tokens += ids.length;
    for (const id of ids) {
      used.add(id);
      if (id === tok.unk) unk++;
    }
    if (tok.decode(ids) === text) exact++;
    if (spellBits && tok.kind === 'itera-word') {
      const words = pythonSplit(text.toLowerCase());
      ids.forEach((id, i) => {
        if (id === tok.unk) unkSpellingBits += spellBits(words[i]!);
      });
    }
  }
  return {
    kind: tok.kind,
    size: tok.size,
    documents: texts.length,
    characters,
    tokens,
    tokensPerCharacter: tokens / Math.max(1, characters),
    unkTokens: unk,
    unkRate: unk / Math.max(1, tokens),
    idsUsed: used.size,
    exactRoundTrips: exact,
    unkSpellingBits,
  };
}
