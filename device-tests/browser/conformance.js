// Runs the device conformance cases (../conformance.mjs) through the bundle's Web Worker, one
// worker per model, loading each model from its URL. ?inputs=DIR (cases.json and the models).
import { IteraWeb } from '../../dist/web/itera.js';
import { runCases } from '../conformance.mjs';

window.runConformance = async function (inputsBase, build = 'auto') {
  const spec = await (await fetch(inputsBase + 'cases.json')).json();
  const models = {};
  for (const [name, file] of Object.entries(spec.models)) models[name] = new URL(inputsBase + file, location.href).href;
  const workers = [];
  let diagnostics = null;
  const engine = {
    label: 'worker',
    async load(_name, url) {
      const w = IteraWeb.start({ build });
      workers.push(w);
      await w.load(url);
      diagnostics = await w.diagnostics();
      return w;
    },
    logits: (w, ids) => w.logits(ids),
    generate: (w, prompt, o) => w.generate(prompt, o),
  };
  const r = await runCases(engine, spec.cases, models, () => performance.now());
  for (const w of workers) w.terminate();
  r.engine = navigator.userAgent;
  r.diagnostics = diagnostics;
  document.getElementById('log').textContent = `done: ${Object.keys(r.results).length} cases`;
  return r;
};
window.conformanceReady = true;
