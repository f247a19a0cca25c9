// Where the bundle finds the module builds. The ES module bundles (dist/web/itera.js, and the
// build for bundlers: dist/web/itera.module.js + worker.js) fetch them beside themselves;
// scripts/build-web.mjs swaps this file for one with both builds inlined as base64 for the
// single-file variant (dist/web/itera.inline.js).

import { fetchBytes } from './engine.js';

/** True in the inlined variant. */
export const INLINED = false;

export function wasmUrl(build: 'simd' | 'scalar' | 'relaxed'): string {
  // one literal new URL(...) per file, the form bundlers follow to emit the files they name; the
  // opt-in relaxed build's name is not a literal, so that bundlers do not emit it for every app:
  // beside dist/web/itera.js it is found, elsewhere pass its URL as wasm.relaxed
  if (build === 'relaxed') return new URL(RELAXED, import.meta.url).href;
  return build === 'simd'
    ? new URL('./itera.wasm', import.meta.url).href
    : new URL('./itera-scalar.wasm', import.meta.url).href;
}
const RELAXED = ['.', 'itera-relaxed.wasm'].join('/');

/** The module's bytes for a build (an explicit URL or bytes override the default place). */
export async function wasmBytes(
  build: 'simd' | 'scalar' | 'relaxed',
  override?: string | ArrayBuffer,
): Promise<Uint8Array> {
  if (override instanceof ArrayBuffer) return new Uint8Array(override);
  return fetchBytes(override ?? wasmUrl(build), undefined, 'WebAssembly module');
}
