// The browser / WebView bundle's entry (scripts/build-web.mjs bundles it into dist/web/itera.js).
// The same file is the page's API and the worker's code: loaded as a module worker, it answers
// requests; loaded in a page, it exports IteraWeb. In a shell without workers (jsc), use
// Engine directly.

import { installWorker } from './worker.js';
import { isWorkerScope } from './engine.js';

export { IteraWeb, IteraWebError } from './client.js';
export type { StartOptions, LoadOptions } from './client.js';
export { Engine, engineHasSimd, pickBuild, fetchBytes, sourceBytes, diagnostics } from './engine.js';
export { wasmBytes, wasmUrl, INLINED } from './wasm-source.js';
export type { Diagnostics, GenerationStats, LoadInfo, ModelSource, TokenEvent, BuildChoice } from './protocol.js';
export { IteraError } from '../runtime/types.js';

if (isWorkerScope()) installWorker();
