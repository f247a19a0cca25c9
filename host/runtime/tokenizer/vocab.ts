// The original's vocabulary tokenizers share one base: a token list with ids, the four
// specials, optional lowercasing. The word level (word.ts) and the character level (char.ts)
// differ only in how text is cut into pieces and how pieces are joined.

import { IteraError } from '../types.js';
import type { GgufKV } from '../gguf.js';
import { MAX_TOKENIZER_SIZE, TOKENIZER_KEYS, type SpecialIds, type TokenDecoder, type Tokenizer } from './types.js';

const UNK_TEXT = '<UNK>';

export abstract class VocabTokenizer implements Tokenizer {
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
