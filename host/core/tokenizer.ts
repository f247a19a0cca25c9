// The original Itera-Lite tokenizers (word level and character level), their JSON files, and
// their embedding in a GGUF model file. Platform-neutral.
//
// Word level (tokenizer_2000.json): lowercase, split on whitespace like Python's str.split() with
// no argument (any run of Unicode whitespace; leading/trailing ignored), punctuation stays attached
// ("day," and "day." are different tokens), an unknown word is <UNK>. Decoding joins tokens with
// single spaces. Lowercasing uses JS toLowerCase(): it agrees with Python's str.lower() on every
// character both Unicode versions know (including the final-sigma rule); they differ only on
// characters added in later Unicode versions (Node 20 has Unicode 15+, Python 3.11 has 14).
//
// Character level (tokenizer_tiny.json): one id per Unicode code point (as Python iterates a
// str), case kept, unknown -> <UNK>; decoding joins with ''.
//
// Byte-level BPE ('itera-bpe', host/tokenize/bpe.ts, specified in docs/tokenizers.md): registered
// here; its JSON files are accepted by tokenizerFromOriginalJson() too.
//
// Both: specials <PAD> <UNK> <BOS> <EOS> (ids 0 1 2 3 in the originals, stored explicitly);
// encode() adds no specials; decode() skips <PAD>, <BOS> and <EOS>; an id with no token decodes as
// <UNK>.
//
// In a GGUF file (see docs/model-file.md):
//   tokenizer.ggml.model             string   "itera-word" | "itera-char"
//   tokenizer.ggml.tokens            string[] token text by id, ids 0 .. size-1
//   tokenizer.ggml.bos_token_id      u32
//   tokenizer.ggml.eos_token_id      u32
//   tokenizer.ggml.unknown_token_id  u32
//   tokenizer.ggml.padding_token_id  u32
//   itera-lite.tokenizer.lowercase   bool     lowercase before encoding
// A JSON file whose ids have gaps is stored with '' at the missing ids: '' is never a token of
// either tokenizer (splitting never yields an empty word; a code point is never empty), so such an
// id is never produced by encode() and decodes as <UNK>, exactly as the original would.

import { IteraError } from './types.js';
import type { GgufKV, GgufValue } from './gguf.js';
import { bpeFromJson, bpeFromMetadata, isBpeJson } from '../tokenize/bpe.js';

export const TOKENIZER_KEYS = {
  model: 'tokenizer.ggml.model',
  tokens: 'tokenizer.ggml.tokens',
  bos: 'tokenizer.ggml.bos_token_id',
  eos: 'tokenizer.ggml.eos_token_id',
  unk: 'tokenizer.ggml.unknown_token_id',
  pad: 'tokenizer.ggml.padding_token_id',
  lowercase: 'itera-lite.tokenizer.lowercase',
} as const;

/** Upper bound on the number of ids, far above any vocabulary this runtime will meet. */
export const MAX_TOKENIZER_SIZE = 1 << 24;

export interface SpecialIds {
  pad: number;
  unk: number;
  bos: number;
  eos: number;
}

/** A tokenizer. New kinds (e.g. a subword BPE) implement this and register a metadata reader
 *  with registerTokenizerKind(). */
export interface Tokenizer extends Readonly<SpecialIds> {
  /** 'itera-word' | 'itera-char' | a registered kind; also the tokenizer.ggml.model value. */
  readonly kind: string;
  /** Number of ids: valid ids are 0 .. size-1 (the model's vocab_size may be larger). */
  readonly size: number;
  encode(text: string): number[];
  /** Text of generated ids: skips <PAD>, <BOS>, <EOS>; an id with no token is <UNK>. */
  decode(ids: readonly number[]): string;
  /** Streaming: the text id adds to what decode() would give. `atStart` is true while nothing
   *  has been emitted yet. Concatenating the pieces equals decode(ids):
   *    let started = false, out = '';
   *    for (const id of ids) { const s = tok.decodeToken(id, !started); if (s) started = true; out += s; } */
  decodeToken(id: number, atStart: boolean): string;
  /** Streaming with its own state: push(id) gives the text id adds, end() whatever is still
   *  held back (a byte-level tokenizer holds the bytes of an incomplete UTF-8 character). The
   *  pieces of push() for every id, then end(), concatenate to decode(ids). One per stream. */
  streamDecoder(): TokenDecoder;
  /** The token's own text, or undefined for an id with no token. */
  tokenText(id: number): string | undefined;
  /** The GGUF metadata that tokenizerFromMetadata() turns back into this tokenizer. */
  toMetadata(): GgufKV[];
}

/** A stream decoder: see Tokenizer.streamDecoder(). */
export interface TokenDecoder {
  push(id: number): string;
  end(): string;
}

/** Python str.isspace() characters, which str.split() splits on. (Differs from JS \s: Python also
 *  has U+001C..U+001F and U+0085; JS \s also has U+FEFF.) */
const PY_WHITESPACE = /[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/;

/** Python's str.split() with no argument. */
export function pythonSplit(text: string): string[] {
  return text.split(PY_WHITESPACE).filter((w) => w.length > 0);
}

const UNK_TEXT = '<UNK>';

abstract class VocabTokenizer implements Tokenizer {
  abstract readonly kind: string;
  readonly size: number;
  readonly pad: number;
  readonly unk: number;
  readonly bos: number;
  readonly eos: number;
  protected readonly tokens: readonly string[];
  protected readonly ids: Map<string, number>;

  constructor(
    tokens: readonly string[],
    specials: SpecialIds,
    readonly lowercase: boolean,
    where: string,
  ) {
    const fail = (why: string): never => {
      throw new IteraError(`${where}: ${why}`, 'TOKENIZER_BAD_VOCAB');
    };
    if (!Array.isArray(tokens) || tokens.length === 0) fail('the token list is empty');
    if (tokens.length > MAX_TOKENIZER_SIZE) fail(`${tokens.length} tokens is more than ${MAX_TOKENIZER_SIZE}`);
    this.ids = new Map();
    tokens.forEach((tok, id) => {
      if (typeof tok !== 'string') fail(`token ${id} is not a string`);
      if (tok === '') return; // an id with no token
      const other = this.ids.get(tok);
      if (other !== undefined) fail(`token ${JSON.stringify(tok)} has two ids, ${other} and ${id}`);
      this.ids.set(tok, id);
    });
    for (const name of ['pad', 'unk', 'bos', 'eos'] as const) {
      const id = specials[name];
      if (!Number.isInteger(id) || id < 0 || id >= tokens.length || tokens[id] === '') {
        fail(`the ${name} id ${String(id)} is not the id of a token (ids are 0..${tokens.length - 1})`);
      }
    }
    this.tokens = tokens.slice();
    this.size = tokens.length;
    this.pad = specials.pad;
    this.unk = specials.unk;
    this.bos = specials.bos;
    this.eos = specials.eos;
  }

  abstract encode(text: string): number[];
  abstract decode(ids: readonly number[]): string;
  abstract decodeToken(id: number, atStart: boolean): string;

  streamDecoder(): TokenDecoder {
    let started = false;
    return {
      push: (id: number) => {
        const s = this.decodeToken(id, !started);
        if (s !== '') started = true;
        return s;
      },
      end: () => '',
    };
  }

  tokenText(id: number): string | undefined {
    if (!Number.isInteger(id) || id < 0 || id >= this.tokens.length) return undefined;
    const s = this.tokens[id]!;
    return s === '' ? undefined : s;
  }

  /** The text of an id in decoded output, or null if decoding skips it. */
  protected piece(id: number): string | null {
    if (id === this.pad || id === this.bos || id === this.eos) return null;
    return this.tokenText(id) ?? this.tokenText(this.unk) ?? UNK_TEXT;
  }

  protected lookup(piece: string): number {
    return this.ids.get(piece) ?? this.unk;
  }

  toMetadata(): GgufKV[] {
    return [
      { key: TOKENIZER_KEYS.model, value: { type: 'string', value: this.kind } },
      { key: TOKENIZER_KEYS.tokens, value: { type: 'array', itemType: 'string', value: this.tokens.slice() } },
      { key: TOKENIZER_KEYS.bos, value: { type: 'u32', value: this.bos } },
      { key: TOKENIZER_KEYS.eos, value: { type: 'u32', value: this.eos } },
      { key: TOKENIZER_KEYS.unk, value: { type: 'u32', value: this.unk } },
      { key: TOKENIZER_KEYS.pad, value: { type: 'u32', value: this.pad } },
      { key: TOKENIZER_KEYS.lowercase, value: { type: 'bool', value: this.lowercase } },
    ];
  }
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

// ---------------------------------------------------------------------------------------------
// The original's JSON files

function jsonError(why: string): never {
  throw new IteraError(`tokenizer JSON: ${why}`, 'TOKENIZER_BAD_JSON');
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** Build a tokenizer from the parsed JSON of one of the original's tokenizer files (or of our
 *  byte-level BPE: {"format": "itera-bpe", ...}, see docs/tokenizers.md):
 *  word level {vocab_size, token_to_id, id_to_token} or char level {token2id, id2token,
 *  vocab_size, level: 'char'}. Checks the two maps are exact inverses and the four specials exist. */
export function tokenizerFromOriginalJson(json: unknown): Tokenizer {
  if (!isObject(json)) jsonError('expected an object');
  if (isBpeJson(json)) return bpeFromJson(json);
  let level: 'word' | 'char';
  let toId: unknown;
  let toToken: unknown;
  if ('token2id' in json || json.level === 'char') {
    level = 'char';
    if (json.level !== undefined && json.level !== 'char') jsonError(`level is ${JSON.stringify(json.level)}; only 'char' has token2id/id2token`);
    toId = json.token2id;
    toToken = json.id2token;
    if (!isObject(toId) || !isObject(toToken)) jsonError('a char-level tokenizer needs objects token2id and id2token');
  } else if ('token_to_id' in json || 'id_to_token' in json) {
    level = 'word';
    toId = json.token_to_id;
    toToken = json.id_to_token;
    if (!isObject(toId) || !isObject(toToken)) jsonError('a word-level tokenizer needs objects token_to_id and id_to_token');
  } else {
    jsonError('neither a word-level (token_to_id, id_to_token) nor a char-level (token2id, id2token, level: "char") tokenizer');
  }
  const vocabSize = json.vocab_size;
  if (vocabSize !== undefined && (!Number.isInteger(vocabSize) || (vocabSize as number) < 1)) {
    jsonError(`vocab_size is ${JSON.stringify(vocabSize)}, not a positive integer`);
  }

  const byId = new Map<number, string>();
  let maxId = -1;
  for (const [key, tok] of Object.entries(toToken)) {
    if (!/^(0|[1-9][0-9]*)$/.test(key)) jsonError(`id ${JSON.stringify(key)} is not a non-negative integer`);
    const id = Number(key);
    if (id >= MAX_TOKENIZER_SIZE) jsonError(`id ${id} is too large`);
    if (vocabSize !== undefined && id >= (vocabSize as number)) jsonError(`id ${id} is not below vocab_size ${String(vocabSize)}`);
    if (typeof tok !== 'string') jsonError(`the token of id ${id} is not a string`);
    if (tok === '') jsonError(`id ${id} has an empty token`);
    byId.set(id, tok);
    maxId = Math.max(maxId, id);
  }
  const entries = Object.entries(toId);
  if (entries.length !== byId.size) {
    jsonError(`the token->id map has ${entries.length} entries but the id->token map has ${byId.size}`);
  }
  for (const [tok, id] of entries) {
    if (!Number.isInteger(id)) jsonError(`token ${JSON.stringify(tok)} has id ${JSON.stringify(id)}, not an integer`);
    if (byId.get(id as number) !== tok) {
      jsonError(`token ${JSON.stringify(tok)} -> id ${String(id)}, but id ${String(id)} -> ${JSON.stringify(byId.get(id as number) ?? null)}`);
    }
  }
  const special = (name: string): number => {
    const id = (toId as Record<string, unknown>)[name];
    if (!Object.hasOwn(toId as object, name) || typeof id !== 'number') jsonError(`the special token ${name} is missing`);
    return id;
  };
  const specials = { pad: special('<PAD>'), unk: special('<UNK>'), bos: special('<BOS>'), eos: special('<EOS>') };
  const tokens: string[] = new Array<string>(maxId + 1).fill('');
  for (const [id, tok] of byId) tokens[id] = tok;
  return level === 'word'
    ? new WordTokenizer(tokens, specials, true, 'tokenizer JSON')
    : new CharTokenizer(tokens, specials, false, 'tokenizer JSON');
}

// ---------------------------------------------------------------------------------------------
// GGUF metadata

export type TokenizerMetadataReader = (meta: ReadonlyMap<string, GgufValue>) => Tokenizer;

const kinds = new Map<string, TokenizerMetadataReader>();

/** Make tokenizerFromMetadata() understand another tokenizer.ggml.model value. */
export function registerTokenizerKind(kind: string, reader: TokenizerMetadataReader): void {
  kinds.set(kind, reader);
}

function metaError(why: string): never {
  throw new IteraError(`model file tokenizer: ${why}`, 'TOKENIZER_BAD_METADATA');
}

function getTyped<T extends GgufValue['type']>(
  meta: ReadonlyMap<string, GgufValue>,
  key: string,
  type: T,
): GgufValue & { type: T } {
  const v = meta.get(key);
  if (v === undefined) metaError(`${key} is missing`);
  if (v.type !== type) metaError(`${key} must be a ${type}, found ${v.type}`);
  return v as GgufValue & { type: T };
}

function readVocab(meta: ReadonlyMap<string, GgufValue>): { tokens: string[]; specials: SpecialIds; lowercase: boolean } {
  const tokens = getTyped(meta, TOKENIZER_KEYS.tokens, 'array');
  if (tokens.itemType !== 'string') metaError(`${TOKENIZER_KEYS.tokens} must be an array of strings, found an array of ${tokens.itemType}`);
  const specials = {
    pad: getTyped(meta, TOKENIZER_KEYS.pad, 'u32').value,
    unk: getTyped(meta, TOKENIZER_KEYS.unk, 'u32').value,
    bos: getTyped(meta, TOKENIZER_KEYS.bos, 'u32').value,
    eos: getTyped(meta, TOKENIZER_KEYS.eos, 'u32').value,
  };
  const lowercase = getTyped(meta, TOKENIZER_KEYS.lowercase, 'bool').value;
  return { tokens: tokens.value as string[], specials, lowercase };
}

registerTokenizerKind('itera-word', (meta) => {
  const v = readVocab(meta);
  return new WordTokenizer(v.tokens, v.specials, v.lowercase, 'model file tokenizer');
});
registerTokenizerKind('itera-char', (meta) => {
  const v = readVocab(meta);
  return new CharTokenizer(v.tokens, v.specials, v.lowercase, 'model file tokenizer');
});
registerTokenizerKind('itera-bpe', bpeFromMetadata);

/** The tokenizer stored in a model file's metadata. */
export function tokenizerFromMetadata(metadata: ReadonlyMap<string, GgufValue> | readonly GgufKV[]): Tokenizer {
  const meta: ReadonlyMap<string, GgufValue> = Array.isArray(metadata)
    ? new Map((metadata as readonly GgufKV[]).map((kv) => [kv.key, kv.value]))
    : (metadata as ReadonlyMap<string, GgufValue>);
  const model = getTyped(meta, TOKENIZER_KEYS.model, 'string').value;
  const reader = kinds.get(model);
  if (!reader) {
    throw new IteraError(
      `model file tokenizer: tokenizer.ggml.model is '${model}', which this runtime does not know (known: ${[...kinds.keys()].join(', ')})`,
      'TOKENIZER_UNSUPPORTED',
    );
  }
  return reader(meta);
}
