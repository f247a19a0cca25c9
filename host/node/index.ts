// The Node shim: finds the module build, picks SIMD or the scalar fallback (or, when asked for
// and this engine passes its checks, the relaxed-SIMD build), reads model files from disk.
// Everything else is host/runtime.

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

export { engineHasSimd, relaxedVerdict } from '../runtime/features.js';
import { engineHasSimd, relaxedVerdict } from '../runtime/features.js';

export type Build = 'simd' | 'scalar' | 'relaxed' | 'auto';

const FILES = { simd: 'itera.wasm', scalar: 'itera-scalar.wasm', relaxed: 'itera-relaxed.wasm' };

/** Path of a module build's file; 'auto' is SIMD where the engine has it, else scalar. 'relaxed'
 *  names the file only: resolveBuild decides whether it may run here. */
export function wasmPath(build: Build = 'auto'): string {
  const b = build === 'auto' ? (engineHasSimd() ? 'simd' : 'scalar') : build;
  const p = join(packageRoot(), 'build', FILES[b]);
  if (!existsSync(p))
    throw new IteraError(`the WebAssembly module is not built (${p} is missing): run 'npm run build'`, 'NO_WASM');
  return p;
}

export interface ResolvedBuild {
  build: 'simd' | 'scalar' | 'relaxed';
  bytes: Uint8Array;
  /** Why another build than the one asked for runs (the relaxed build refused here), else null. */
  note: string | null;
  /** For the relaxed build: whether its multiply-adds fuse on this engine (else null). */
  fused: boolean | null;
}

/** The module to run for a build choice. 'relaxed' runs only where this engine validates it and
 *  its self-test passes; otherwise the SIMD build (or scalar), with `note` saying why. */
export async function resolveBuild(build: Build = 'auto'): Promise<ResolvedBuild> {
  if (build === 'relaxed') {
    const bytes = readFileSync(wasmPath('relaxed'));
    const v = await relaxedVerdict(bytes);
    if (v.ok) return { build: 'relaxed', bytes, note: null, fused: v.fused };
    const fallback = engineHasSimd() ? 'simd' : 'scalar';
    return {
      build: fallback,
      bytes: readFileSync(wasmPath(fallback)),
      note: `relaxed-SIMD build not used: ${v.reason}; running the ${fallback === 'simd' ? 'SIMD' : 'scalar'} build`,
      fused: null,
    };
  }
  const b = build === 'auto' ? (engineHasSimd() ? 'simd' : 'scalar') : build;
  return { build: b, bytes: readFileSync(wasmPath(b)), note: null, fused: null };
}

/** The default model: the distilled student as a mix of Q8_0 and Q4_0, at most 400 KB (models/student.md), or null while
 *  models/ does not have it. */
export const DEFAULT_MODEL = 'student-mix.gguf';

export function defaultModelPath(): string | null {
  const p = join(packageRoot(), 'models', DEFAULT_MODEL);
  return existsSync(p) ? p : null;
}

export interface NodeLoadOptions {
  build?: Build;
  /** Told why the relaxed build was refused, when it was asked for (default: console.warn). */
  onWarning?: (message: string) => void;
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
  const r = await resolveBuild(opts.build);
  if (r.note !== null) (opts.onWarning ?? ((m: string) => console.warn(`itera: warning: ${m}`)))(r.note);
  const m = await CoreModel.fromBytes(bytes, r.bytes, () => performance.now());
  m.buildNote = r.note;
  return m;
}

/** The runtime API on Node: IteraModel.load(path | bytes). */
export class IteraModel extends CoreModel {
  static async load(model: string | Uint8Array, opts: NodeLoadOptions = {}): Promise<CoreModel> {
    return loadModel(model, opts);
  }
}
