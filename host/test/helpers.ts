// Shared by the runtime tests: the module builds, instantiated from build/.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { instantiate, type IteraExports } from '../core/runtime.js';
import { repoRoot } from './shared.js';

export const BUILDS = { simd: 'itera.wasm', scalar: 'itera-scalar.wasm' } as const;
export type BuildName = keyof typeof BUILDS;

export function wasmBytes(build: BuildName): Uint8Array {
  return readFileSync(join(repoRoot(), 'build', BUILDS[build]));
}

export async function exportsOf(build: BuildName): Promise<IteraExports> {
  return instantiate(wasmBytes(build));
}

/** A deterministic stream of floats in [-1, 1) (an LCG; tests must not depend on Math.random). */
export function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 2147483648 - 1;
  };
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (Number.isNaN(d)) return Infinity;
    if (d > m) m = d;
  }
  return m;
}
