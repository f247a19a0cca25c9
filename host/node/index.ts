// The Node shim: finds the module build, picks SIMD or the scalar fallback, reads model files
// from disk. Everything else is host/runtime.

import { readFileSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IteraModel as CoreModel } from '../runtime/api.js';
import { IteraError } from '../runtime/types.js';

export type { GenerateOptions, GeneratedToken, GenerationResult, ScoreResult, ModelInfo } from '../runtime/api.js';
export { IteraError } from '../runtime/types.js';

/** The package root (the folder with our package.json), from dist/host/node or host/node. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const p = join(dir, 'package.json');
    if (existsSync(p)) {
      try {
        if ((JSON.parse(readFileSync(p, 'utf8')) as { name?: string }).name === 'itera-lite') return dir;
      } catch {
        /* keep climbing */
      }
    }
    const up = dirname(dir);
    if (up === dir) throw new IteraError('cannot find the itera-lite package root', 'NO_ROOT');
    dir = up;
  }
}

export { engineHasSimd } from '../runtime/features.js';
import { engineHasSimd } from '../runtime/features.js';

export type Build = 'simd' | 'scalar' | 'auto';

/** Path of the module build to use. */
export function wasmPath(build: Build = 'auto'): string {
  const simd = build === 'simd' || (build === 'auto' && engineHasSimd());
  const p = join(packageRoot(), 'build', simd ? 'itera.wasm' : 'itera-scalar.wasm');
  if (!existsSync(p))
    throw new IteraError(`the WebAssembly module is not built (${p} is missing): run 'npm run build'`, 'NO_WASM');
  return p;
}

/** The default model: the distilled student in Q4_0, at most 400 KB (models/student.md), or null while
 *  models/ does not have it. */
export const DEFAULT_MODEL = 'student-q4_0.gguf';

export function defaultModelPath(): string | null {
  const p = join(packageRoot(), 'models', DEFAULT_MODEL);
  return existsSync(p) ? p : null;
}

export interface NodeLoadOptions {
  build?: Build;
}

/** Loads a model from a path or bytes. */
export async function loadModel(model: string | Uint8Array, opts: NodeLoadOptions = {}): Promise<CoreModel> {
  let bytes: Uint8Array;
  if (typeof model === 'string') {
    const p = resolve(model);
    if (!existsSync(p)) throw new IteraError(`model file not found: ${p}`, 'NO_FILE');
    bytes = readFileSync(p);
  } else {
    bytes = model;
  }
  const wasm = readFileSync(wasmPath(opts.build));
  return CoreModel.fromBytes(bytes, wasm, () => performance.now());
}

/** The runtime API on Node: IteraModel.load(path | bytes). */
export class IteraModel extends CoreModel {
  static async load(model: string | Uint8Array, opts: NodeLoadOptions = {}): Promise<CoreModel> {
    return loadModel(model, opts);
  }
}
