// The conformance cases in the JavaScriptCore shell (the engine of iOS's WKWebView), with the web
// bundle: jsc -m device-tests/jsc/conformance-jsc.mjs -- INPUTS_DIR [simd|scalar|auto]
// The module is compiled synchronously (new WebAssembly.Module). jsc exits 0 even on an unhandled
// rejection, so the outcome is printed explicitly: a line "ITERA-RESULT <json>" or "ITERA-ERROR <message>".
import './polyfill.mjs';
import { Engine, pickBuild } from '../../dist/web/itera.js';
import { runCases } from '../conformance.mjs';

const dir = arguments[0];
const choice = arguments[1] ?? 'auto';
const build = pickBuild(choice);
try {
  const spec = JSON.parse(readFile(dir + '/cases.json'));
  const models = {};
  for (const [name, file] of Object.entries(spec.models))
    models[name] = new Uint8Array(read(dir + '/' + file, 'binary'));
  const module = new WebAssembly.Module(
    read(dir + '/' + (build === 'simd' ? 'itera.wasm' : 'itera-scalar.wasm'), 'binary'),
  );
  const engine = {
    label: 'jsc',
    load: (_name, bytes) => Engine.load(bytes, module, build),
    logits: (e, ids) => e.logits(ids),
    generate: (e, prompt, o) => e.generate(prompt, o),
  };
  runCases(engine, spec.cases, models, () => performance.now()).then(
    (r) => {
      r.build = build;
      print('ITERA-RESULT ' + JSON.stringify(r));
    },
    (e) => print('ITERA-ERROR ' + (e && e.message ? e.message : String(e))),
  );
} catch (e) {
  print('ITERA-ERROR ' + (e && e.message ? e.message : String(e)));
}
