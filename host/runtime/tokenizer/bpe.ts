// The Itera byte-level BPE tokenizer ('itera-bpe'): encoding, decoding (whole and streaming), its
// JSON file and its GGUF metadata. docs/tokenizers.md is the specification; this file is the
// reference implementation (the AssemblyScript port in the WASI module must agree with it).
// Platform-neutral (TextEncoder/TextDecoder only).
//
// In short:
//   - text is UTF-8 bytes; every byte has a token, so any text encodes with no <UNK> (unless a
//     byte's token was pruned away: then that byte is <UNK>);
//   - pre-tokenization cuts the bytes into chunks by byte class (letters, digits, whitespace,
//     other), a single space attaching to the front of the chunk after it;
//   - within a chunk, repeatedly the adjacent pair with the lowest merge rank is merged, at its
//     leftmost occurrence, until no adjacent pair has a merge;
//   - decoding concatenates the tokens' bytes and decodes UTF-8 (invalid bytes -> U+FFFD).

import { IteraError } from '../types.js';
import type { GgufKV, GgufValue } from '../gguf.js';
import type { SpecialIds, Tokenizer, TokenDecoder } from './types.js';

export const BPE_KIND = 'itera-bpe';
/** Name of the pre-tokenization rule (stored in files, so a later rule can be told apart). */
export const BPE_PRETOKENIZER = 'itera-bpe-v1';
export const BPE_SPECIAL_NAMES = ['<PAD>', '<UNK>', '<BOS>', '<EOS>'] as const;

/** GGUF keys of the BPE tokenizer besides the shared ones in TOKENIZER_KEYS. */
export const BPE_KEYS = {
  merges: 'tokenizer.ggml.merges',
  tokenType: 'tokenizer.ggml.token_type',
  pretokenizer: 'itera-lite.tokenizer.pretokenizer',
} as const;

/** GGUF token types (llama.cpp's numbering). */
export const TOKEN_TYPE = { normal: 1, control: 3, byte: 6 } as const;

// ---------------------------------------------------------------------------------------------
// Bytes <-> token text. A token's text is its bytes, each written as one character: bytes 0x21..0x7E
// (printable ASCII but space) as themselves, every other byte b as the character U+0100 + b (so a
// space is U+0120 'Ġ', a newline U+010A 'Ċ'). The text never contains a space, so a merge can be
// written as 'LEFT RIGHT'.

export function byteChar(b: number): string {
  return String.fromCharCode(b >= 0x21 && b <= 0x7e ? b : 0x100 + b);
}

/** The byte a token-text character stands for, or -1. */
export function charByte(c: number): number {
  if (c >= 0x21 && c <= 0x7e) return c;
  if (c >= 0x100 && c <= 0x1ff) {
    const b = c - 0x100;
    return b >= 0x21 && b <= 0x7e ? -1 : b;
  }
  return -1;
}

export function bytesToText(bytes: ArrayLike<number>): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += byteChar(bytes[i]!);
  return s;
}

/** The bytes of a token text, or null if a character stands for no byte. */
export function textToBytes(text: string): Uint8Array | null {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const b = charByte(text.charCodeAt(i));
    if (b < 0) return null;
    out[i] = b;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Pre-tokenization

/** Byte classes: 0 letter (A-Z a-z ' and every byte >= 0x80), 1 digit, 2 whitespace (space, tab,
 *  LF, VT, FF, CR), 3 other. */
export const BYTE_CLASS: Uint8Array = (() => {
  const c = new Uint8Array(256).fill(3);
  for (let b = 0x41; b <= 0x5a; b++) c[b] = 0;
  for (let b = 0x61; b <= 0x7a; b++) c[b] = 0;
  c[0x27] = 0;
  for (let b = 0x80; b <= 0xff; b++) c[b] = 0;
  for (let b = 0x30; b <= 0x39; b++) c[b] = 1;
  for (const b of [0x20, 0x09, 0x0a, 0x0b, 0x0c, 0x0d]) c[b] = 2;
  return c;
})();

const WS = 2;

/** Chunk boundaries of the bytes: [start0, end0, start1, end1, ...]. A chunk is a maximal run of
 *  bytes of one class, except: when a whitespace run ends with a space (0x20) directly followed
 *  by a non-whitespace byte, that space leaves the run (the run ends before it, and is dropped if
 *  it is only that space) and begins the next chunk, which is that space plus the maximal run of
 *  the next byte's class. */
export function pretokenize(bytes: Uint8Array): number[] {
  const n = bytes.length;
  const out: number[] = [];
  let i = 0;
  while (i < n) {
    const cls = BYTE_CLASS[bytes[i]!]!;
    let j = i + 1;
    while (j < n && BYTE_CLASS[bytes[j]!] === cls) j++;
    if (cls === WS && j < n && bytes[j - 1] === 0x20) {
      // the last space goes with the next run
      if (j - 1 > i) out.push(i, j - 1);
      const next = BYTE_CLASS[bytes[j]!]!;
      let k = j + 1;
      while (k < n && BYTE_CLASS[bytes[k]!] === next) k++;
      out.push(j - 1, k);
      i = k;
    } else {
      out.push(i, j);
      i = j;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The tokenizer

export interface BpeJson {
  format: 'itera-bpe';
  version: 1;
  pretokenizer: string;
  vocab_size: number;
  specials: Record<string, number>;
  /** Token text by id (specials by their names). */
  tokens: string[];
  /** 'LEFT RIGHT' in rank order (rank = index). */
  merges: string[];
}

function bpeError(where: string, why: string, code = 'TOKENIZER_BAD_VOCAB'): never {
  throw new IteraError(`${where}: ${why}`, code);
}

const textEncoder = new TextEncoder();
const REPLACEMENT = textEncoder.encode('\ufffd');

/** Chunks at most this long are merged by the plain quadratic loop; longer ones by a heap. */
const SHORT_CHUNK = 48;
const CACHE_LIMIT = 1 << 16;

export class BpeTokenizer implements Tokenizer {
  readonly kind = BPE_KIND;
  readonly size: number;
  readonly pad: number;
  readonly unk: number;
  readonly bos: number;
  readonly eos: number;
  /** Token text by id. */
  private readonly tokens: readonly string[];
  /** Bytes by id (specials: empty). */
  private readonly bytes: readonly Uint8Array[];
  /** Merge pairs in rank order. */
  readonly merges: readonly (readonly [number, number])[];
  /** Token id of each byte, -1 if the byte has no token. */
  private readonly byteToken = new Int32Array(256).fill(-1);
  /** pair key -> rank; key = left * 2^24 + right. */
  private readonly rank = new Map<number, number>();
  /** rank -> merged token id. */
  private readonly mergedId: Int32Array;
  private readonly special: Set<number>;
  private readonly cache = new Map<string, number[]>();
  private defaultStream: { dec: TokenDecoder; emitted: boolean } | null = null;

  /** tokens: text by id; merges: 'LEFT RIGHT' by rank; specials: ids of the four specials. */
  constructor(tokens: readonly string[], merges: readonly string[], specials: SpecialIds, where = 'BPE tokenizer') {
    if (!Array.isArray(tokens) || tokens.length === 0) bpeError(where, 'the token list is empty');
    if (tokens.length > 1 << 24) bpeError(where, `${tokens.length} tokens is too many`);
    if (!Array.isArray(merges)) bpeError(where, 'merges must be an array of strings');
    const n = tokens.length;
    const specialIds = [specials.pad, specials.unk, specials.bos, specials.eos];
    for (const [k, id] of specialIds.entries()) {
      if (!Number.isInteger(id) || id < 0 || id >= n)
        bpeError(where, `the ${BPE_SPECIAL_NAMES[k]} id ${String(id)} is not a token id (0..${n - 1})`);
    }
    this.special = new Set(specialIds);
    if (this.special.size !== 4) bpeError(where, `the special ids ${specialIds.join(', ')} are not distinct`);
    const ids = new Map<string, number>();
    const bytes: Uint8Array[] = [];
    tokens.forEach((tok, id) => {
      if (typeof tok !== 'string' || tok === '') bpeError(where, `token ${id} is not a non-empty string`);
      const other = ids.get(tok);
      if (other !== undefined) bpeError(where, `token ${JSON.stringify(tok)} has two ids, ${other} and ${id}`);
      ids.set(tok, id);
      if (this.special.has(id)) {
        bytes.push(new Uint8Array(0));
        return;
      }
      const b = textToBytes(tok);
      if (b === null) bpeError(where, `token ${id} ${JSON.stringify(tok)} has a character that stands for no byte`);
      bytes.push(b);
      if (b.length === 1) this.byteToken[b[0]!] = id;
    });
    // merges: both sides must exist already (a byte token or the result of an earlier merge)
    const made = new Set<number>();
    this.mergedId = new Int32Array(merges.length);
    const pairs: [number, number][] = [];
    merges.forEach((m, r) => {
      if (typeof m !== 'string') bpeError(where, `merge ${r} is not a string`);
      const sp = m.indexOf(' ');
      if (sp <= 0 || sp !== m.lastIndexOf(' ') || sp === m.length - 1)
        bpeError(where, `merge ${r} ${JSON.stringify(m)} is not 'LEFT RIGHT'`);
      const l = ids.get(m.slice(0, sp));
      const rt = ids.get(m.slice(sp + 1));
      const res = ids.get(m.slice(0, sp) + m.slice(sp + 1));
      const ok = (id: number | undefined): id is number => id !== undefined && !this.special.has(id);
      if (!ok(l) || !ok(rt)) bpeError(where, `merge ${r} ${JSON.stringify(m)}: a side is not a (non-special) token`);
      if (!ok(res)) bpeError(where, `merge ${r} ${JSON.stringify(m)}: the merged token is not in the vocabulary`);
      for (const side of [l, rt]) {
        if (bytes[side]!.length > 1 && !made.has(side)) {
          bpeError(where, `merge ${r} ${JSON.stringify(m)} uses a token that no earlier merge makes`);
        }
      }
      if (made.has(res)) bpeError(where, `merge ${r} ${JSON.stringify(m)}: another merge already makes that token`);
      const key = l * 16777216 + rt;
      if (this.rank.has(key)) bpeError(where, `merge ${r} ${JSON.stringify(m)} is listed twice`);
      made.add(res);
      this.rank.set(key, r);
      this.mergedId[r] = res;
      pairs.push([l, rt]);
    });
    bytes.forEach((b, id) => {
      if (b.length > 1 && !made.has(id))
        bpeError(where, `token ${id} ${JSON.stringify(tokens[id])} is made by no merge (it could never be produced)`);
    });
    this.tokens = tokens.slice();
    this.bytes = bytes;
    this.merges = pairs;
    this.size = n;
    this.pad = specials.pad;
    this.unk = specials.unk;
    this.bos = specials.bos;
    this.eos = specials.eos;
  }

  /** Token ids of the four specials are 'control'; single bytes 'byte'; the rest 'normal'. */
  tokenType(id: number): number {
    if (this.special.has(id)) return TOKEN_TYPE.control;
    return this.bytes[id]!.length === 1 ? TOKEN_TYPE.byte : TOKEN_TYPE.normal;
  }

  tokenText(id: number): string | undefined {
    if (!Number.isInteger(id) || id < 0 || id >= this.size) return undefined;
    return this.tokens[id];
  }

  /** The bytes a token decodes to (empty for <PAD> <BOS> <EOS>; U+FFFD for <UNK> and ids with no token). */
  tokenBytes(id: number): Uint8Array {
    if (id === this.pad || id === this.bos || id === this.eos) return new Uint8Array(0);
    if (!Number.isInteger(id) || id < 0 || id >= this.size || id === this.unk) return REPLACEMENT;
    return this.bytes[id]!;
  }

  /** The id of the token merge `rank` makes. */
  mergeResult(rank: number): number {
    return this.mergedId[rank]!;
  }

  /** Merge rank of the pair (left, right), or undefined. */
  pairRank(left: number, right: number): number | undefined {
    return this.rank.get(left * 16777216 + right);
  }

  encode(text: string): number[] {
    const b = textEncoder.encode(text);
    const bounds = pretokenize(b);
    const out: number[] = [];
    for (let c = 0; c < bounds.length; c += 2) {
      const s = bounds[c]!;
      const e = bounds[c + 1]!;
      let key = '';
      for (let i = s; i < e; i++) key += String.fromCharCode(b[i]!);
      let ids = this.cache.get(key);
      if (ids === undefined) {
        ids = this.encodeChunk(b.subarray(s, e));
        if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
        this.cache.set(key, ids);
      }
      for (const id of ids) out.push(id);
    }
    return out;
  }

  /** BPE within one chunk: start from the byte tokens (<UNK> for a byte with no token; <UNK>
   *  never merges), then repeatedly merge the lowest-rank adjacent pair at its leftmost occurrence. */
  encodeChunk(chunk: Uint8Array): number[] {
    const ids: number[] = [];
    for (const byte of chunk) {
      const id = this.byteToken[byte]!;
      ids.push(id < 0 ? this.unk : id);
    }
    return ids.length <= SHORT_CHUNK ? this.mergeShort(ids) : this.mergeLong(ids);
  }

  private mergeShort(ids: number[]): number[] {
    for (;;) {
      let best = -1;
      let at = -1;
      for (let i = 0; i + 1 < ids.length; i++) {
        const r = this.rank.get(ids[i]! * 16777216 + ids[i + 1]!);
        if (r !== undefined && (best < 0 || r < best)) {
          best = r;
          at = i;
        }
      }
      if (best < 0) return ids;
      ids.splice(at, 2, this.mergedId[best]!);
    }
  }

  /** The same result as mergeShort, in O(n log n): a linked list of symbols and a heap of
   *  candidate pairs ordered by (rank, position of the left symbol); stale entries are skipped. */
  private mergeLong(ids: number[]): number[] {
    const n = ids.length;
    const id = Int32Array.from(ids);
    const next = new Int32Array(n);
    const prev = new Int32Array(n);
    const alive = new Uint8Array(n).fill(1);
    for (let i = 0; i < n; i++) {
      next[i] = i + 1 < n ? i + 1 : -1;
      prev[i] = i - 1;
    }
    // binary heap of [rank, pos] packed as rank * 2^26 + pos (n < 2^26 for any chunk we accept)
    if (n >= 1 << 26) bpeError('BPE tokenizer', `a chunk of ${n} bytes is too long`);
    const heap: number[] = [];
    const push = (v: number): void => {
      heap.push(v);
      let i = heap.length - 1;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (heap[p]! <= v) break;
        heap[i] = heap[p]!;
        i = p;
      }
      heap[i] = v;
    };
    const pop = (): number => {
      const top = heap[0]!;
      const last = heap.pop()!;
      if (heap.length > 0) {
        let i = 0;
        for (;;) {
          const l = 2 * i + 1;
          if (l >= heap.length) break;
          const r = l + 1;
          const c = r < heap.length && heap[r]! < heap[l]! ? r : l;
          if (heap[c]! >= last) break;
          heap[i] = heap[c]!;
          i = c;
        }
        heap[i] = last;
      }
      return top;
    };
    const SCALE = 1 << 26;
    const consider = (i: number): void => {
      const j = next[i]!;
      if (i < 0 || j < 0) return;
      const r = this.rank.get(id[i]! * 16777216 + id[j]!);
      if (r !== undefined) push(r * SCALE + i);
    };
    for (let i = 0; i + 1 < n; i++) consider(i);
    while (heap.length > 0) {
      const v = pop();
      const r = Math.floor(v / SCALE);
      const i = v - r * SCALE;
      if (!alive[i]) continue;
      const j = next[i]!;
      if (j < 0 || this.rank.get(id[i]! * 16777216 + id[j]!) !== r) continue; // stale
      id[i] = this.mergedId[r]!;
      alive[j] = 0;
      const k = next[j]!;
      next[i] = k;
      if (k >= 0) prev[k] = i;
      if (prev[i]! >= 0) consider(prev[i]!);
      consider(i);
    }
    const out: number[] = [];
    for (let i = 0; i >= 0 && i < n; i = next[i]!) out.push(id[i]!);
    return out;
  }

  decodeBytes(ids: readonly number[]): Uint8Array {
    const parts = ids.map((i) => this.tokenBytes(i));
    const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }

  /** The UTF-8 text of the ids' bytes (<PAD> <BOS> <EOS> add nothing; <UNK> and ids with no
   *  token are U+FFFD; invalid UTF-8 becomes U+FFFD as TextDecoder does; a byte order mark is
   *  kept as the character U+FEFF, like any other). */
  decode(ids: readonly number[]): string {
    return new TextDecoder('utf-8', { ignoreBOM: true }).decode(this.decodeBytes(ids));
  }

  streamDecoder(): TokenDecoder {
    const td = new TextDecoder('utf-8', { ignoreBOM: true });
    return {
      push: (id: number) => td.decode(this.tokenBytes(id), { stream: true }),
      end: () => td.decode(),
    };
  }

  /** Streaming on the tokenizer itself, for callers that use the stateless interface: this
   *  instance keeps one stream's incomplete UTF-8 bytes between calls (a token may end in the
   *  middle of a character; its bytes come out with the token that completes it). A call with
   *  atStart after the stream has emitted text starts a new stream. One stream at a time: for
   *  independent streams use streamDecoder(). */
  decodeToken(id: number, atStart: boolean): string {
    if (this.defaultStream === null || (atStart && this.defaultStream.emitted)) {
      this.defaultStream = { dec: this.streamDecoder(), emitted: false };
    }
    const s = this.defaultStream.dec.push(id);
    if (s !== '') this.defaultStream.emitted = true;
    return s;
  }

  mergeStrings(): string[] {
    return this.merges.map(([l, r]) => `${this.tokens[l]} ${this.tokens[r]}`);
  }

  toMetadata(): GgufKV[] {
    return [
      { key: 'tokenizer.ggml.model', value: { type: 'string', value: BPE_KIND } },
      { key: 'tokenizer.ggml.tokens', value: { type: 'array', itemType: 'string', value: this.tokens.slice() } },
      {
        key: BPE_KEYS.tokenType,
        value: { type: 'array', itemType: 'i32', value: this.tokens.map((_, i) => this.tokenType(i)) },
      },
      { key: BPE_KEYS.merges, value: { type: 'array', itemType: 'string', value: this.mergeStrings() } },
      { key: 'tokenizer.ggml.bos_token_id', value: { type: 'u32', value: this.bos } },
      { key: 'tokenizer.ggml.eos_token_id', value: { type: 'u32', value: this.eos } },
      { key: 'tokenizer.ggml.unknown_token_id', value: { type: 'u32', value: this.unk } },
      { key: 'tokenizer.ggml.padding_token_id', value: { type: 'u32', value: this.pad } },
      { key: BPE_KEYS.pretokenizer, value: { type: 'string', value: BPE_PRETOKENIZER } },
    ];
  }

  toJson(): BpeJson {
    return {
      format: 'itera-bpe',
      version: 1,
      pretokenizer: BPE_PRETOKENIZER,
      vocab_size: this.size,
      specials: { '<PAD>': this.pad, '<UNK>': this.unk, '<BOS>': this.bos, '<EOS>': this.eos },
      tokens: this.tokens.slice(),
      merges: this.mergeStrings(),
    };
  }
}

// ---------------------------------------------------------------------------------------------
// Reading files

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** Whether parsed JSON claims to be an itera-bpe tokenizer file. */
export function isBpeJson(json: unknown): boolean {
  return isObject(json) && json.format === 'itera-bpe';
}

/** The tokenizer of an itera-bpe JSON file (parsed), fully checked. */
export function bpeFromJson(json: unknown): BpeTokenizer {
  const where = 'BPE tokenizer JSON';
  const bad = (why: string): never => bpeError(where, why, 'TOKENIZER_BAD_JSON');
  if (!isObject(json)) bad('expected an object');
  const j = json as Record<string, unknown>;
  if (j.format !== 'itera-bpe') bad(`format is ${JSON.stringify(j.format)}, not "itera-bpe"`);
  if (j.version !== 1) bad(`version ${JSON.stringify(j.version)} is not supported (1 is)`);
  if (j.pretokenizer !== BPE_PRETOKENIZER)
    bad(`pretokenizer ${JSON.stringify(j.pretokenizer)} is not supported ("${BPE_PRETOKENIZER}" is)`);
  if (!Array.isArray(j.tokens) || !j.tokens.every((x) => typeof x === 'string'))
    bad('tokens must be an array of strings');
  if (!Array.isArray(j.merges) || !j.merges.every((x) => typeof x === 'string'))
    bad('merges must be an array of strings');
  const tokens = j.tokens as string[];
  if (j.vocab_size !== tokens.length)
    bad(`vocab_size ${JSON.stringify(j.vocab_size)} is not the number of tokens (${tokens.length})`);
  if (!isObject(j.specials)) bad('specials must be an object {"<PAD>": id, "<UNK>": id, "<BOS>": id, "<EOS>": id}');
  const sp = j.specials as Record<string, unknown>;
  const get = (name: string): number => {
    const id = sp[name];
    if (!Number.isInteger(id)) bad(`the special token ${name} is missing or not an integer id`);
    if (tokens[id as number] !== name)
      bad(`the special ${name} has id ${String(id)}, whose token is ${JSON.stringify(tokens[id as number] ?? null)}`);
    return id as number;
  };
  const specials = { pad: get('<PAD>'), unk: get('<UNK>'), bos: get('<BOS>'), eos: get('<EOS>') };
  try {
    return new BpeTokenizer(tokens, j.merges as string[], specials, where);
  } catch (e) {
    if (e instanceof IteraError) throw new IteraError(e.message, 'TOKENIZER_BAD_JSON');
    throw e;
  }
}

/** The tokenizer of model-file metadata with tokenizer.ggml.model = 'itera-bpe'. */
export function bpeFromMetadata(meta: ReadonlyMap<string, GgufValue>): BpeTokenizer {
  const where = 'model file tokenizer';
  const bad = (why: string): never => bpeError(where, why, 'TOKENIZER_BAD_METADATA');
  const arr = (key: string, item: string): GgufValue & { type: 'array' } => {
    const v = meta.get(key);
    if (v === undefined) bad(`${key} is missing`);
    if (v!.type !== 'array' || v!.itemType !== item) bad(`${key} must be an array of ${item}`);
    return v as GgufValue & { type: 'array' };
  };
  const u32 = (key: string): number => {
    const v = meta.get(key);
    if (v === undefined) bad(`${key} is missing`);
    if (v!.type !== 'u32') bad(`${key} must be a u32, found ${v!.type}`);
    return v!.value as number;
  };
  const pre = meta.get(BPE_KEYS.pretokenizer);
  if (pre === undefined || pre.type !== 'string') bad(`${BPE_KEYS.pretokenizer} is missing or not a string`);
  if (pre!.value !== BPE_PRETOKENIZER)
    bad(`pre-tokenizer '${String(pre!.value)}' is not supported ('${BPE_PRETOKENIZER}' is)`);
  const tokens = arr('tokenizer.ggml.tokens', 'string').value as string[];
  const merges = arr(BPE_KEYS.merges, 'string').value as string[];
  const specials = {
    pad: u32('tokenizer.ggml.padding_token_id'),
    unk: u32('tokenizer.ggml.unknown_token_id'),
    bos: u32('tokenizer.ggml.bos_token_id'),
    eos: u32('tokenizer.ggml.eos_token_id'),
  };
  let tok: BpeTokenizer;
  try {
    tok = new BpeTokenizer(tokens, merges, specials, where);
  } catch (e) {
    if (e instanceof IteraError) throw new IteraError(e.message, 'TOKENIZER_BAD_METADATA');
    throw e;
  }
  const types = meta.get(BPE_KEYS.tokenType);
  if (types !== undefined) {
    if (types.type !== 'array' || types.itemType !== 'i32' || types.value.length !== tokens.length) {
      bad(`${BPE_KEYS.tokenType} must be an i32 array with one entry per token`);
    }
    (types.value as number[]).forEach((t, i) => {
      if (t !== tok.tokenType(i))
        bad(`${BPE_KEYS.tokenType}[${i}] is ${t}, but the token is of type ${tok.tokenType(i)}`);
    });
  }
  return tok;
}
