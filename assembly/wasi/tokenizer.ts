// The tokenizer embedded in the model file, by its tokenizer.ggml.model kind. The exact rules are
// host/core/tokenizer.ts's:
//   itera-word: lowercase (if itera-lite.tokenizer.lowercase), split on Python's str.split()
//               whitespace, look each word up, unknown -> unk; decoding joins with single spaces.
//   itera-char: one id per Unicode code point, unknown -> unk; decoding joins with ''.
// Both: decoding skips pad, bos and eos; an id with no token ('' in the file) decodes as <UNK>.
// To add a kind (a subword BPE, say): subclass Tokenizer and add a case to tokenizerFor().

import { die } from './io';
import { GgufFile, getString, getStringArray, getU32, getBool, StringRef } from './gguf';

export abstract class Tokenizer {
  kind: string = '';
  size: i32 = 0;
  pad: i32 = 0;
  unk: i32 = 0;
  bos: i32 = 0;
  eos: i32 = 0;
  lowercase: bool = false;
  tokens: StringRef[] = [];
  ids: Map<string, i32> = new Map<string, i32>();

  abstract encode(text: string): i32[];
  /** The text an id adds to the output; atStart: nothing has been emitted yet. */
  abstract piece(id: i32, atStart: bool): string;

  /** The id's own text, or null when decoding skips it. */
  text(id: i32): string | null {
    if (id == this.pad || id == this.bos || id == this.eos) return null;
    if (id >= 0 && id < this.size && this.tokens[id].len > 0) return this.tokens[id].toString();
    const u = this.tokens[this.unk];
    return u.len > 0 ? u.toString() : '<UNK>';
  }

  lookup(s: string): i32 {
    return this.ids.has(s) ? this.ids.get(s) : this.unk;
  }
}

/** Python's str.isspace() code points (what str.split() splits on). */
export function isPyWhitespace(c: i32): bool {
  if (c >= 9 && c <= 13) return true;
  if (c >= 0x1c && c <= 0x20) return true;
  if (c < 0x85) return false;
  return c == 0x85 || c == 0xa0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 ||
    c == 0x202f || c == 0x205f || c == 0x3000;
}

/** The code point at UTF-16 index i of s, and how many units it takes (1 or 2) in nextWidth. */
let nextWidth: i32 = 1;
function codePointAt(s: string, i: i32): i32 {
  const c = <i32>s.charCodeAt(i);
  if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length) {
    const d = <i32>s.charCodeAt(i + 1);
    if (d >= 0xdc00 && d < 0xe000) { nextWidth = 2; return ((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000; }
  }
  nextWidth = 1;
  return c;
}

export class WordTokenizer extends Tokenizer {
  encode(text: string): i32[] {
    const s = this.lowercase ? text.toLowerCase() : text;
    const out = new Array<i32>();
    let start = -1;
    let i = 0;
    while (i < s.length) {
      const c = codePointAt(s, i);
      const w = nextWidth;
      if (isPyWhitespace(c)) {
        if (start >= 0) { out.push(this.lookup(s.substring(start, i))); start = -1; }
      } else if (start < 0) {
        start = i;
      }
      i += w;
    }
    if (start >= 0) out.push(this.lookup(s.substring(start)));
    return out;
  }
  piece(id: i32, atStart: bool): string {
    const t = this.text(id);
    if (t === null) return '';
    return atStart ? t : ' ' + t;
  }
}

export class CharTokenizer extends Tokenizer {
  encode(text: string): i32[] {
    const s = this.lowercase ? text.toLowerCase() : text;
    const out = new Array<i32>();
    let i = 0;
    while (i < s.length) {
      codePointAt(s, i);
      const w = nextWidth;
      out.push(this.lookup(s.substring(i, i + w)));
      i += w;
    }
    return out;
  }
  piece(id: i32, atStart: bool): string {
    const t = this.text(id);
    return t === null ? '' : t;
  }
}

/** The tokenizer of a model file; dies with a message if it is missing, unknown or inconsistent. */
export function tokenizerFor(f: GgufFile, vocabSize: i32): Tokenizer {
  const kind = getString(f, 'tokenizer.ggml.model');
  let t: Tokenizer | null = null;
  if (kind == 'itera-word') t = new WordTokenizer();
  else if (kind == 'itera-char') t = new CharTokenizer();
  if (t === null) {
    die("model file tokenizer: tokenizer.ggml.model is '" + kind + "', which this module does not know (known: itera-word, itera-char)");
    return changetype<Tokenizer>(0);
  }
  return fill(t, f, kind, vocabSize);
}

function fill(t: Tokenizer, f: GgufFile, kind: string, vocabSize: i32): Tokenizer {
  t.kind = kind;
  t.tokens = getStringArray(f, 'tokenizer.ggml.tokens');
  t.size = t.tokens.length;
  if (t.size == 0) die('model file tokenizer: the token list is empty');
  if (t.size > vocabSize) die('model file: the tokenizer has ' + t.size.toString() + " tokens but the model's vocabulary has only " + vocabSize.toString() + ' rows');
  t.pad = <i32>getU32(f, 'tokenizer.ggml.padding_token_id');
  t.unk = <i32>getU32(f, 'tokenizer.ggml.unknown_token_id');
  t.bos = <i32>getU32(f, 'tokenizer.ggml.bos_token_id');
  t.eos = <i32>getU32(f, 'tokenizer.ggml.eos_token_id');
  t.lowercase = getBool(f, 'itera-lite.tokenizer.lowercase');
  const specials: i32[] = [t.pad, t.unk, t.bos, t.eos];
  const names: string[] = ['pad', 'unk', 'bos', 'eos'];
  for (let i = 0; i < 4; i++) {
    const id = specials[i];
    if (id < 0 || id >= t.size || t.tokens[id].len == 0) {
      die('model file tokenizer: the ' + names[i] + ' id ' + id.toString() + ' is not the id of a token');
    }
  }
  for (let id = 0; id < t.size; id++) {
    const r = t.tokens[id];
    if (r.len == 0) continue;
    const s = r.toString();
    if (t.ids.has(s)) die('model file tokenizer: token ' + s + ' has two ids, ' + t.ids.get(s).toString() + ' and ' + id.toString());
    t.ids.set(s, id);
  }
  return t;
}
