// The original's word-level tokenizer (tokenizer_2000.json): lowercase, split on whitespace like
// Python's str.split() with no argument, punctuation attached, an unknown word is <UNK>; decoding
// joins with single spaces. See index.ts for the details the two implementations must share.

import type { SpecialIds } from './types.js';
import { VocabTokenizer } from './vocab.js';

/** Python str.isspace() characters, which str.split() splits on. (Differs from JS \s: Python also
 *  has U+001C..U+001F and U+0085; JS \s also has U+FEFF.) */
const PY_WHITESPACE = /[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/;

/** Python's str.split() with no argument. */
export function pythonSplit(text: string): string[] {
  return text.split(PY_WHITESPACE).filter((w) => w.length > 0);
}

/** The original's word-level tokenizer. */
export class WordTokenizer extends VocabTokenizer {
  readonly kind = 'itera-word';

  constructor(tokens: readonly string[], specials: SpecialIds, lowercase = true, where = 'word tokenizer') {
    super(tokens, specials, lowercase, where);
  }

  encode(text: string): number[] {
    const s = this.lowercase ? text.toLowerCase() : text;
    return pythonSplit(s).map((w) => this.lookup(w));
  }

  decode(ids: readonly number[]): string {
    const out: string[] = [];
    for (const id of ids) {
      const p = this.piece(id);
      if (p !== null) out.push(p);
    }
    return out.join(' ');
  }

  decodeToken(id: number, atStart: boolean): string {
    const p = this.piece(id);
    if (p === null) return '';
    return atStart ? p : ' ' + p;
  }
}
