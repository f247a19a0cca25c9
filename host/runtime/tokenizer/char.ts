// The original's character-level tokenizer (tokenizer_tiny.json): one id per Unicode code point,
// case kept, unknown -> <UNK>; decoding joins with ''.

import type { SpecialIds } from './types.js';
import { VocabTokenizer } from './vocab.js';

/** The original's character-level tokenizer. */
export class CharTokenizer extends VocabTokenizer {
  readonly kind = 'itera-char';

  constructor(tokens: readonly string[], specials: SpecialIds, lowercase = false, where = 'char tokenizer') {
    super(tokens, specials, lowercase, where);
  }

  encode(text: string): number[] {
    const s = this.lowercase ? text.toLowerCase() : text;
    const out: number[] = [];
    for (const ch of s) out.push(this.lookup(ch)); // for-of walks code points, like Python
    return out;
  }

  decode(ids: readonly number[]): string {
    let out = '';
    for (const id of ids) out += this.piece(id) ?? '';
    return out;
  }

  decodeToken(id: number): string {
    return this.piece(id) ?? '';
  }
}
