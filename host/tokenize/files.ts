// Tokenizer files on disk (Node): reading any tokenizer JSON this project knows with clear
// errors, and the JSON form to write for a tokenizer.

import { existsSync, readFileSync, statSync } from 'node:fs';
import { IteraError } from '../runtime/types.js';
import { tokenizerFromOriginalJson, WordTokenizer, type Tokenizer } from '../runtime/tokenizer/index.js';
import { BpeTokenizer } from '../runtime/tokenizer/bpe.js';
import { wordTokenizerJson } from './word-train.js';

/** Reads a tokenizer JSON file: the original's word or char format, or itera-bpe. */
export function readTokenizerFile(path: string): Tokenizer {
  if (!existsSync(path)) throw new IteraError(`tokenizer file not found: ${path}`, 'NO_FILE');
  if (statSync(path).isDirectory())
    throw new IteraError(`tokenizer ${path} is a directory, not a JSON file`, 'NO_FILE');
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new IteraError(`tokenizer ${path} is not valid JSON: ${(e as Error).message}`, 'TOKENIZER_BAD_JSON');
  }
  try {
    return tokenizerFromOriginalJson(json);
  } catch (e) {
    if (e instanceof IteraError) throw new IteraError(`tokenizer ${path}: ${e.message}`, e.code);
    throw e;
  }
}

/** The JSON to write for a tokenizer (word: the original's format; BPE: itera-bpe). */
export function tokenizerToJson(tok: Tokenizer): unknown {
  if (tok instanceof BpeTokenizer) return tok.toJson();
  if (tok instanceof WordTokenizer) return wordTokenizerJson(tok);
  throw new IteraError(`writing a '${tok.kind}' tokenizer as JSON is not supported`, 'TOKENIZER_UNSUPPORTED');
}
