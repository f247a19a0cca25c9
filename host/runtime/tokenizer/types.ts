// The tokenizer interface every kind implements, its special ids and its GGUF metadata keys.
// Platform-neutral. The kinds: word.ts, char.ts, bpe.ts; index.ts reads them from files.

import type { GgufKV } from '../gguf.js';

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
