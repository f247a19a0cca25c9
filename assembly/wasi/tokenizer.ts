// The tokenizer embedded in the model file, by its tokenizer.ggml.model kind. The exact rules are
// host/runtime/tokenizer/ (word.ts, char.ts):
//   itera-word: lowercase (if itera-lite.tokenizer.lowercase), split on Python's str.split()
//               whitespace, look each word up, unknown -> unk; decoding joins with single spaces.
//   itera-char: one id per Unicode code point, unknown -> unk; decoding joins with ''.
//   itera-bpe:  byte-level BPE, docs/tokenizers.md (normative) and host/runtime/tokenizer/bpe.ts: the UTF-8
//               bytes are cut into chunks by byte class, each chunk merged by lowest merge rank,
//               leftmost first; decoding concatenates the tokens' bytes (<UNK> = EF BF BD).
// All: decoding skips pad, bos and eos; an id with no token ('' in the file) decodes as <UNK>.
// To add a kind: subclass Tokenizer and add a case to tokenizerFor().

import { die } from './io';
import { GgufFile, getString, getStringArray, getU32, getBool, getI32Array, hasKey, StringRef } from './gguf';

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
  /** The bytes an id adds to the output (UTF-8, possibly part of a character for BPE). */
  pieceBytes(id: i32, atStart: bool): Uint8Array {
    return Uint8Array.wrap(String.UTF8.encode(this.piece(id, atStart)));
  }
  /** Reads what the kind needs beyond the common keys; called once the common fields are set. */
  load(f: GgufFile): void {}

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
  else if (kind == 'itera-bpe') t = new BpeTokenizer();
  if (t === null) {
    die("model file tokenizer: tokenizer.ggml.model is '" + kind + "', which this module does not know (known: itera-word, itera-char, itera-bpe)");
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
  // BPE works on the bytes as they are; its files have no lowercase key
  t.lowercase = kind == 'itera-bpe' ? false : getBool(f, 'itera-lite.tokenizer.lowercase');
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
  t.load(f);
  return t;
}

// ---- itera-bpe

const BPE_PRETOKENIZER = 'itera-bpe-v1';
const C_LETTER: u8 = 0, C_DIGIT: u8 = 1, C_SPACE: u8 = 2, C_OTHER: u8 = 3;
const REPLACEMENT: u8[] = [0xef, 0xbf, 0xbd];

/** The pre-tokenizer's class of every byte (docs/tokenizers.md section 2). */
const byteClass = new StaticArray<u8>(256);
for (let b = 0; b < 256; b++) {
  let c = C_OTHER;
  if ((b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b == 0x27 || b >= 0x80) c = C_LETTER;
  else if (b >= 0x30 && b <= 0x39) c = C_DIGIT;
  else if (b == 0x20 || (b >= 0x09 && b <= 0x0d)) c = C_SPACE;
  byteClass[b] = c;
}

/** The bytes a BPE token text stands for (0x21..0x7E as themselves, U+0100+b for any other byte b),
 *  read straight from its UTF-8; null if a character stands for no byte. */
function bpeTextBytes(r: StringRef): Uint8Array | null {
  const out = new Uint8Array(<i32>r.len);
  let n = 0;
  let i: usize = 0;
  while (i < r.len) {
    const c = <i32>load<u8>(r.ptr + i);
    if (c >= 0x21 && c <= 0x7e) { out[n++] = <u8>c; i++; continue; }
    // U+0100..U+01FF is C4..C7 followed by one continuation byte
    if (c >= 0xc4 && c <= 0xc7 && i + 1 < r.len) {
      const d = <i32>load<u8>(r.ptr + i + 1);
      if ((d & 0xc0) == 0x80) {
        const b = (((c & 0x1f) << 6) | (d & 0x3f)) - 0x100;
        if (b < 0x21 || b > 0x7e) { out[n++] = <u8>b; i += 2; continue; }
      }
    }
    return null;
  }
  return out.subarray(0, n);
}

function pairKey(left: i32, right: i32): u64 { return (<u64>left << 32) | <u64><u32>right; }

export class BpeTokenizer extends Tokenizer {
  /** Bytes of every id (empty for the specials and for ids with no token). */
  bytes: Uint8Array[] = [];
  /** The token of each byte, or -1. */
  byteToken: StaticArray<i32> = new StaticArray<i32>(256);
  /** Merge rank of a pair (pairKey), and the id each rank makes. */
  rank: Map<u64, i32> = new Map<u64, i32>();
  made: i32[] = [];

  isSpecial(id: i32): bool { return id == this.pad || id == this.unk || id == this.bos || id == this.eos; }

  load(f: GgufFile): void {
    const pre = hasKey(f, 'itera-lite.tokenizer.pretokenizer') ? getString(f, 'itera-lite.tokenizer.pretokenizer') : '';
    if (pre != BPE_PRETOKENIZER) die("model file tokenizer: pre-tokenizer '" + pre + "' is not supported ('" + BPE_PRETOKENIZER + "' is)");
    const specialNames: string[] = ['<PAD>', '<UNK>', '<BOS>', '<EOS>'];
    const specialIds: i32[] = [this.pad, this.unk, this.bos, this.eos];
    for (let i = 0; i < 4; i++) {
      for (let j = 0; j < i; j++) if (specialIds[i] == specialIds[j]) die('model file tokenizer: ' + specialNames[j] + ' and ' + specialNames[i] + ' have the same id ' + specialIds[i].toString());
      if (this.tokens[specialIds[i]].toString() != specialNames[i]) die('model file tokenizer: token ' + specialIds[i].toString() + " is '" + this.tokens[specialIds[i]].toString() + "', not " + specialNames[i]);
    }
    for (let b = 0; b < 256; b++) this.byteToken[b] = -1;
    const available = new Array<bool>(this.size);
    this.bytes = new Array<Uint8Array>(this.size);
    for (let id = 0; id < this.size; id++) {
      this.bytes[id] = new Uint8Array(0);
      if (this.isSpecial(id) || this.tokens[id].len == 0) continue;
      const b = bpeTextBytes(this.tokens[id]);
      if (b === null) die("model file tokenizer: token " + id.toString() + " '" + this.tokens[id].toString() + "' has a character that stands for no byte");
      const bb = b!;
      this.bytes[id] = bb;
      if (bb.length == 1) { this.byteToken[bb[0]] = id; available[id] = true; }
    }
    const merges = getStringArray(f, 'tokenizer.ggml.merges');
    this.made = new Array<i32>(merges.length);
    for (let r = 0; r < merges.length; r++) {
      const m = merges[r];
      let sp: i32 = -1;
      for (let i: usize = 0; i < m.len; i++) {
        if (load<u8>(m.ptr + i) == 0x20) { if (sp >= 0) { sp = -2; break; } sp = <i32>i; }
      }
      const text = m.toString();
      if (sp <= 0 || <usize>sp == m.len - 1) die("model file tokenizer: merge " + r.toString() + " '" + text + "' is not 'LEFT RIGHT'");
      const ls = String.UTF8.decodeUnsafe(m.ptr, <usize>sp);
      const rs = String.UTF8.decodeUnsafe(m.ptr + <usize>sp + 1, m.len - <usize>sp - 1);
      const left = this.ids.has(ls) ? this.ids.get(ls) : -1;
      const right = this.ids.has(rs) ? this.ids.get(rs) : -1;
      const res = this.ids.has(ls + rs) ? this.ids.get(ls + rs) : -1;
      if (left < 0 || right < 0 || this.isSpecial(left) || this.isSpecial(right) || !available[left] || !available[right]) {
        die("model file tokenizer: merge " + r.toString() + " '" + text + "' uses a token that is not a byte or made by an earlier merge");
      }
      if (res < 0 || this.isSpecial(res)) die("model file tokenizer: merge " + r.toString() + " '" + text + "' makes no token");
      if (available[res]) die("model file tokenizer: merge " + r.toString() + " '" + text + "' makes a token that is already made");
      const k = pairKey(left, right);
      if (this.rank.has(k)) die("model file tokenizer: merge " + r.toString() + " '" + text + "' is listed twice");
      this.rank.set(k, r);
      this.made[r] = res;
      available[res] = true;
    }
    for (let id = 0; id < this.size; id++) {
      if (!this.isSpecial(id) && this.tokens[id].len > 0 && !available[id]) die('model file tokenizer: token ' + id.toString() + " '" + this.tokens[id].toString() + "' is made by no merge");
    }
    if (hasKey(f, 'tokenizer.ggml.token_type')) {
      const types = getI32Array(f, 'tokenizer.ggml.token_type');
      if (types.length != this.size) die('model file tokenizer: tokenizer.ggml.token_type must have one entry per token');
      for (let id = 0; id < this.size; id++) {
        const want = this.isSpecial(id) ? 3 : this.bytes[id].length == 1 ? 6 : 1;
        if (types[id] != want) die('model file tokenizer: tokenizer.ggml.token_type[' + id.toString() + '] is ' + types[id].toString() + ', but the token is of type ' + want.toString());
      }
    }
  }

  encode(text: string): i32[] {
    const buf = String.UTF8.encode(text, false, String.UTF8.ErrorMode.REPLACE);
    const b = Uint8Array.wrap(buf);
    const n = b.length;
    const out = new Array<i32>();
    let i = 0;
    while (i < n) {
      const cls = byteClass[b[i]];
      let j = i + 1;
      while (j < n && byteClass[b[j]] == cls) j++;
      if (cls == C_SPACE && j < n && b[j - 1] == 0x20) {
        // the last space starts the next chunk, with the run after it
        if (j - 1 > i) this.encodeChunk(b, i, j - 1, out);
        const next = byteClass[b[j]];
        let k = j + 1;
        while (k < n && byteClass[b[k]] == next) k++;
        this.encodeChunk(b, j - 1, k, out);
        i = k;
      } else {
        this.encodeChunk(b, i, j, out);
        i = j;
      }
    }
    return out;
  }

  /** Appends the ids of the chunk b[s, e): byte tokens, then the lowest-rank pair merged (every
   *  occurrence, left to right, which docs/tokenizers.md shows equals leftmost-first) until none is left. */
  encodeChunk(b: Uint8Array, s: i32, e: i32, out: i32[]): void {
    let n = e - s;
    const ids = new StaticArray<i32>(n);
    for (let i = 0; i < n; i++) {
      const t = this.byteToken[b[s + i]];
      ids[i] = t < 0 ? this.unk : t;
    }
    while (n > 1) {
      let best: i32 = -1;
      for (let i = 0; i + 1 < n; i++) {
        const k = pairKey(ids[i], ids[i + 1]);
        if (this.rank.has(k)) { const r = this.rank.get(k); if (best < 0 || r < best) best = r; }
      }
      if (best < 0) break;
      let l = -1, rt = -1;
      // the pair of rank best
      for (let i = 0; i + 1 < n; i++) {
        const k = pairKey(ids[i], ids[i + 1]);
        if (this.rank.has(k) && this.rank.get(k) == best) { l = ids[i]; rt = ids[i + 1]; break; }
      }
      const res = this.made[best];
      let w = 0;
      let i = 0;
      while (i < n) {
        if (i + 1 < n && ids[i] == l && ids[i + 1] == rt) { ids[w++] = res; i += 2; }
        else ids[w++] = ids[i++];
      }
      n = w;
    }
    for (let i = 0; i < n; i++) out.push(ids[i]);
  }

  pieceBytes(id: i32, atStart: bool): Uint8Array {
    if (id == this.pad || id == this.bos || id == this.eos) return new Uint8Array(0);
    if (id < 0 || id >= this.size || id == this.unk || this.tokens[id].len == 0) {
      const r = new Uint8Array(3);
      for (let i = 0; i < 3; i++) r[i] = REPLACEMENT[i];
      return r;
    }
    return this.bytes[id];
  }

  piece(id: i32, atStart: bool): string {
    const p = this.pieceBytes(id, atStart);
    return String.UTF8.decodeUnsafe(p.dataStart, <usize>p.length);
  }
}
