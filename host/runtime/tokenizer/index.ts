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
// Byte-level BPE ('itera-bpe', bpe.ts, specified in docs/tokenizers.md): registered
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

import { IteraError } from '../types.js';
import type { GgufKV, GgufValue } from '../gguf.js';
import { bpeFromJson, bpeFromMetadata, isBpeJson } from './bpe.js';
import { CharTokenizer } from './char.js';
import { MAX_TOKENIZER_SIZE, TOKENIZER_KEYS, type SpecialIds, type Tokenizer } from './types.js';
import { WordTokenizer } from './word.js';

export { MAX_TOKENIZER_SIZE, TOKENIZER_KEYS, type SpecialIds, type TokenDecoder, type Tokenizer } from './types.js';
export { pythonSplit, WordTokenizer } from './word.js';
export { CharTokenizer } from './char.js';

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
    if (json.level !== undefined && json.level !== 'char')
      jsonError(`level is ${JSON.stringify(json.level)}; only 'char' has token2id/id2token`);
    toId = json.token2id;
    toToken = json.id2token;
    if (!isObject(toId) || !isObject(toToken)) jsonError('a char-level tokenizer needs objects token2id and id2token');
  } else if ('token_to_id' in json || 'id_to_token' in json) {
    level = 'word';
    toId = json.token_to_id;
    toToken = json.id_to_token;
    if (!isObject(toId) || !isObject(toToken))
      jsonError('a word-level tokenizer needs objects token_to_id and id_to_token');
  } else {
    jsonError(
      'neither a word-level (token_to_id, id_to_token) nor a char-level (token2id, id2token, level: "char") tokenizer',
    );
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
    if (vocabSize !== undefined && id >= (vocabSize as number))
      jsonError(`id ${id} is not below vocab_size ${String(vocabSize)}`);
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
      jsonError(
        `token ${JSON.stringify(tok)} -> id ${String(id)}, but id ${String(id)} -> ${JSON.stringify(byId.get(id as number) ?? null)}`,
      );
    }
  }
  const special = (name: string): number => {
    const id = (toId as Record<string, unknown>)[name];
    if (!Object.hasOwn(toId as object, name) || typeof id !== 'number')
      jsonError(`the special token ${name} is missing`);
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

function readVocab(meta: ReadonlyMap<string, GgufValue>): {
  tokens: string[];
  specials: SpecialIds;
  lowercase: boolean;
} {
  const tokens = getTyped(meta, TOKENIZER_KEYS.tokens, 'array');
  if (tokens.itemType !== 'string')
    metaError(`${TOKENIZER_KEYS.tokens} must be an array of strings, found an array of ${tokens.itemType}`);
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
