// --model and --build, shared by every command that runs a model.

import { DEFAULT_MODEL, defaultModelPath, loadModel, type Build } from '../../node/index.js';
import type { IteraModel } from '../../runtime/api.js';
import { IteraError } from '../../runtime/types.js';
import { str, UsageError, type Options, type Values } from '../command.js';

export const modelOptions: Options = {
  model: { type: 'string', short: 'm' },
  build: { type: 'string' },
};

export const modelHelp = `  -m, --model FILE     model file (.gguf); default: the shipped default model in models/
      --build B        WebAssembly build: auto (default: SIMD if the engine has it), simd, scalar,
                       relaxed (opt-in, faster where it runs; tokens may differ across hosts:
                       docs/runtime.md; falls back to simd with a warning where refused)`;

export function modelPathFrom(v: Values): string {
  const m = str(v, 'model');
  if (m !== undefined) return m;
  const d = defaultModelPath();
  if (d === null) {
    throw new IteraError(
      `no default model: models/${DEFAULT_MODEL} is not there (rebuild the shipped models with 'npm run models'). Pass --model FILE, or make one from a PyTorch checkpoint with\n` +
        '  itera convert checkpoint.pt --tokenizer tokenizer.json -o model.gguf',
      'NO_DEFAULT_MODEL',
    );
  }
  return d;
}

export function buildFrom(v: Values): Build {
  const b = str(v, 'build') ?? 'auto';
  if (b !== 'auto' && b !== 'simd' && b !== 'scalar' && b !== 'relaxed')
    throw new UsageError(`--build must be auto, simd, scalar or relaxed, got '${b}'`);
  return b;
}

export async function openModel(v: Values): Promise<IteraModel> {
  return loadModel(modelPathFrom(v), { build: buildFrom(v) });
}
