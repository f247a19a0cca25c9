// The browser / WebView bundle's entry (scripts/build-web.mjs bundles it into dist/web/itera.js).
// The same file is the page's API and the worker's code: loaded as a module worker, it answers
// requests; loaded in a page, it exports IteraWeb. In a shell without workers (jsc), use
// Engine directly.

import { installWorker } from './worker.js';
import { isWorkerScope } from './engine.js';

export * from './exports.js';

if (isWorkerScope()) installWorker();
