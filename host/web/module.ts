// The page entry of the build for bundlers (scripts/build-web.mjs: dist/web/itera.module.js,
// `itera-lite/web`). It starts its worker, dist/web/worker.js (worker-main.ts), with a literal
// `new Worker(new URL('./worker.js', import.meta.url), { type: 'module' })`, and the worker finds
// the module builds with literal `new URL('./itera.wasm', import.meta.url)`: Vite, webpack 5 and
// Parcel follow both and emit the files. It works unbundled too (plain ES modules).

export * from './exports.js';
