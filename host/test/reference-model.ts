// The micro reference checkpoint converted to our model file, in memory, by the same code
// `itera convert` runs (cached per process).
import { readFileSync } from 'node:fs';
import { importCheckpoint } from '../convert/import/index.js';
import { stateDictToModel } from '../convert/state-dict.js';
import { writeModelFile } from '../convert/model-write.js';
import { tokenizerFromOriginalJson } from '../runtime/tokenizer/index.js';
import { requireShared } from './shared.js';

export const REF_CKPT = 'reference/checkpoints/itera_lite_micro_distilled.pt';
export const REF_TOKENIZER = 'reference/tokenizers/tokenizer_2000.json';

let cached: Uint8Array | null = null;

export function convertReference(): Uint8Array {
  if (cached) return cached;
  const imported = importCheckpoint(readFileSync(requireShared(REF_CKPT)), REF_CKPT);
  const m = stateDictToModel(imported.tensors);
  const tokenizer = tokenizerFromOriginalJson(JSON.parse(readFileSync(requireShared(REF_TOKENIZER), 'utf8')));
  cached = writeModelFile({ config: m.config, tensors: m.tensors, tokenizer, name: 'itera_lite_micro_distilled' });
  return cached;
}
