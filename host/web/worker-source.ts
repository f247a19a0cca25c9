// How the page starts its worker. In dist/web/itera.js (one file) the worker runs the bundle
// itself, from the bundle's own URL. scripts/build-web.mjs swaps this file in the build for
// bundlers (dist/web/itera.module.js) for one that starts dist/web/worker.js with the literal
// expression bundlers look for.

export function startWorker(): Worker {
  return new Worker(import.meta.url, { type: 'module', name: 'itera' });
}
