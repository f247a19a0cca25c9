// What the web bundle exports, shared by its two entries: index.ts (dist/web/itera.js, one file
// that is both the page's API and the worker) and module.ts (dist/web/itera.module.js, the page
// side of the build for bundlers, whose worker is dist/web/worker.js).

export { IteraWeb, IteraWebError } from './client.js';
export type { StartOptions, LoadOptions } from './client.js';
export { Engine, engineHasSimd, pickBuild, fetchBytes, sourceBytes, diagnostics } from './engine.js';
export { wasmBytes, wasmUrl, INLINED } from './wasm-source.js';
export type {
  Diagnostics,
  GenerationStats,
  LoadInfo,
  LoadSource,
  ModelSource,
  StorageWarning,
  TokenEvent,
  BuildChoice,
} from './protocol.js';
export { CACHE_NAME, sha256Hex } from './store.js';
export { memoryNeed } from './budget.js';
export { IteraError } from '../runtime/types.js';
