// A model file re-stored with its weight matrices in another type, in memory, for `itera bench
// --quant`: every tensor of rank >= 2 gets the type, vectors stay F32. The model-file writer
// decides which types it can store (F32 and F16 today; Q8_0 and Q4_0 with the quantization work).

import { readModelFile, tensorAsF32, writeModelFile, type ModelTensor } from '../core/model-file.js';
import { IteraError } from '../core/types.js';

export function requantize(bytes: Uint8Array, type: string): Uint8Array {
  const file = readModelFile(bytes);
  const tensors: ModelTensor[] = [];
  for (const [name, t] of file.tensors) {
    tensors.push({ name, shape: t.shape, data: Float32Array.from(tensorAsF32(t)), typeName: (t.shape.length >= 2 ? type : 'F32') as ModelTensor['typeName'] });
  }
  try {
    return writeModelFile({ config: file.config, tensors, tokenizer: file.tokenizer, name: `${file.name}-${type.toLowerCase()}` });
  } catch (e) {
    throw new IteraError(`cannot store the model as ${type}: ${(e as Error).message}`, 'BENCH_QUANT');
  }
}
