// Where the bundle finds the module builds. The ES module bundles (dist/web/itera.js, and the
// build for bundlers: dist/web/itera.module.js + worker.js) fetch them beside themselves;
// scripts/build-web.mjs swaps this file for one with both builds inlined as base64 for the
// single-file variant (dist/web/itera.inline.js).

import { fetchBytes } from './engine.js';

/** True in the inlined variant. */
export const INLINED = false;

export function wasmUrl(build: 'simd' | 'scalar'): string {
  // one literal new URL(...) per file, the form bundlers follow to emit the files they name
  return build === 'simd'
    ? new URL('./itera.wasm', import.meta.url).href
    : new URL('./itera-scalar.wasm', import.meta.url).href;
}

/** The module's bytes for a build (an explicit URL or bytes override the default place). */
export async function wasmBytes(build: 'simd' | 'scalar', override?: string | ArrayBuffer): Promise<Uint8Array> {
  if (override instanceof ArrayBuffer) return new Uint8Array(override);
  return fetchBytes(override ?? wasmUrl(build), undefined, 'WebAssembly module');
}
