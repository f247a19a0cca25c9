#!/usr/bin/env node
// The device tests: plain `node device-tests/run.mjs` on any device with the built runtime (dist/
// and build/ beside this folder); no dev dependencies. Prints TAP; exits 1 if a check fails.
//
//   node device-tests/run.mjs                     run the cases, check the golden ids / logits
//   node device-tests/run.mjs --results x86.json  also save this engine's results
//   node device-tests/run.mjs --compare x86.json  also require the same ids and logits within 1e-5
//                                                 as those results (from Node on x86)
//   node device-tests/run.mjs --write-inputs DIR  write the models and cases for other engines
//   options: --inputs DIR (use written inputs), --build simd|scalar|relaxed, --shared DIR (../shared)
//   (relaxed: the opt-in relaxed-SIMD build, run only where this engine validates it and its
//   self-test passes, else one failing check saying why; its results compare with the relaxed
//   build's on another host, not with the SIMD build's)
//
// Models: a tiny synthetic one always; the micro reference model (converted from ../shared's
// checkpoint, or --reference-model FILE) when ../shared is there.
import { readFileSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { arch, platform } from 'node:os';
import { buildCases, runCases, checkResults, toTap, maxAbsDiff, base64ToF32, GOLDEN_BOUND } from './conformance.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..');
const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const dist = (p) => pathToFileURL(join(root, 'dist', 'host', p)).href;

if (!existsSync(join(root, 'dist', 'host', 'runtime', 'api.js'))) {
  console.log(
    'TAP version 13\nnot ok 1 - the runtime is built (dist/host/runtime is missing: run npm run build, or deploy dist/)\n1..1',
  );
  process.exit(1);
}
const { IteraModel } = await import(dist('runtime/api.js'));
const { modelTensorSpecs } = await import(dist('runtime/model-file.js'));
const { writeModelFile } = await import(dist('convert/model-write.js'));
const { stateDictToModel } = await import(dist('convert/state-dict.js'));
const { WordTokenizer, tokenizerFromOriginalJson } = await import(dist('runtime/tokenizer/index.js'));

const build = opt('--build') ?? 'simd';
const FILES = { simd: 'itera.wasm', scalar: 'itera-scalar.wasm', relaxed: 'itera-relaxed.wasm' };
if (!(build in FILES)) {
  console.error(`run.mjs: --build must be simd, scalar or relaxed, got '${build}'`);
  process.exit(2);
}
const wasmFile = join(root, 'build', FILES[build]);
const shared = resolve(opt('--shared') ?? process.env.ITERA_SHARED_DIR ?? join(root, '..', 'shared'));
const GOLD = join(shared, 'reference', 'golden', 'micro');

/** The tiny synthetic model: random weights from a fixed LCG, a made-up word vocabulary. T = 16,
 *  so the generations run past the context (the exact window recomputation). */
export function tinyModel() {
  const config = {
    vocabSize: 50,
    hiddenSize: 8,
    numLayers: 2,
    ssmStateSize: 4,
    ssmConvKernel: 4,
    ssmInnerSize: 16,
    numExperts: 4,
    expertSize: 8,
    topK: 2,
    moeLayers: [1],
    maxSeqLength: 16,
    layerNormEps: 1e-5,
  };
  let x = 20240611;
  const rnd = () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 2147483648 - 1;
  };
  const tensors = modelTensorSpecs(config, true).map((s) => {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    const fan = s.shape[s.shape.length - 1];
    for (let i = 0; i < n; i++) {
      data[i] = s.name.endsWith('norm.weight')
        ? 1 + 0.1 * rnd()
        : s.name.endsWith('a_log')
          ? Math.log(1 + (i % 8))
          : rnd() / Math.sqrt(fan);
    }
    return { name: s.name, shape: s.shape, data };
  });
  const words = ['<PAD>', '<UNK>', '<BOS>', '<EOS>'];
  for (let i = words.length; i < config.vocabSize; i++) words.push(`w${i}`);
  return writeModelFile({
    config,
    tensors,
    tokenizer: new WordTokenizer(words, { pad: 0, unk: 1, bos: 2, eos: 3 }),
    name: 'tiny',
  });
}

async function referenceModel() {
  const given = opt('--reference-model');
  if (given) return new Uint8Array(readFileSync(given));
  const ckpt = join(shared, 'reference', 'checkpoints', 'itera_lite_micro_distilled.pt');
  const tokf = join(shared, 'reference', 'tokenizers', 'tokenizer_2000.json');
  if (!existsSync(ckpt) || !existsSync(tokf)) return null;
  const { importCheckpoint } = await import(dist('convert/import/index.js'));
  const m = stateDictToModel(importCheckpoint(readFileSync(ckpt), ckpt).tensors);
  return writeModelFile({
    config: m.config,
    tensors: m.tensors,
    tokenizer: tokenizerFromOriginalJson(JSON.parse(readFileSync(tokf, 'utf8'))),
    name: 'itera_lite_micro_distilled',
  });
}

async function inputs() {
  const dir = opt('--inputs');
  if (dir) {
    const spec = JSON.parse(readFileSync(join(dir, 'cases.json'), 'utf8'));
    const models = {};
    for (const [name, file] of Object.entries(spec.models))
      models[name] = new Uint8Array(readFileSync(join(dir, file)));
    return { cases: spec.cases, models };
  }
  const golden = existsSync(join(GOLD, 'reference.json'))
    ? JSON.parse(readFileSync(join(GOLD, 'reference.json'), 'utf8'))
    : null;
  const models = { tiny: tinyModel() };
  const micro = golden ? await referenceModel() : null;
  if (micro) models.micro = micro;
  return { cases: buildCases(micro ? golden : null), models };
}

const { cases, models } = await inputs();

const out = opt('--write-inputs');
if (out) {
  mkdirSync(out, { recursive: true });
  const files = {};
  for (const [name, bytes] of Object.entries(models)) {
    files[name] = `${name}.gguf`;
    writeFileSync(join(out, files[name]), bytes);
  }
  writeFileSync(join(out, 'cases.json'), JSON.stringify({ models: files, cases }, null, 1));
  console.log(`wrote ${Object.keys(files).length} models and ${cases.length} cases to ${out}`);
  process.exit(0);
}

const wasm = readFileSync(wasmFile);
if (build === 'relaxed') {
  const { relaxedVerdict } = await import(dist('runtime/features.js'));
  const v = await relaxedVerdict(new Uint8Array(wasm));
  if (!v.ok) {
    console.log(`TAP version 13\nnot ok 1 - the relaxed build runs on this engine: ${v.reason}\n1..1`);
    process.exit(1);
  }
  console.log(`# relaxed build: ${v.reason}`);
}
const label = `node ${process.version} ${platform()}-${arch()} ${build}`;
const engine = {
  label,
  load: (_name, bytes) => IteraModel.fromBytes(bytes, wasm),
  logits: (m, ids) => m.logits(ids),
  generate: (m, prompt, o) => m.generate(prompt, o),
};
const t0 = Date.now();
const got = await runCases(engine, cases, models);
const elapsed = Date.now() - t0;
if (opt('--results')) writeFileSync(opt('--results'), JSON.stringify(got));

const checks = [];
for (const c of cases)
  if (c.model in models)
    checks.push({
      ok: !got.results[c.name]?.error,
      name: `${c.name}: ran in ${got.ms[c.name]} ms${got.results[c.name]?.error ? ' — ' + got.results[c.name].error : ''}`,
    });
// the PyTorch golden logits, where ../shared has them
for (const c of cases) {
  if (!c.golden || !got.results[c.name]?.logits) continue;
  const f = join(GOLD, c.golden);
  if (!existsSync(f)) continue;
  const b = readFileSync(f);
  const d = maxAbsDiff(
    base64ToF32(got.results[c.name].logits),
    new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)),
  );
  checks.push({
    ok: d <= GOLDEN_BOUND,
    name: `${c.name}: within ${GOLDEN_BOUND} of PyTorch (max ${d.toExponential(2)})`,
  });
}
const cmp = opt('--compare');
checks.push(...checkResults(cases, got, cmp ? JSON.parse(readFileSync(cmp, 'utf8')) : null));
const notes = [
  `engine: ${label}`,
  `models: ${Object.keys(models).join(', ')}${models.micro ? '' : ' (no ../shared: the golden cases are skipped)'}`,
  `cases took ${elapsed} ms`,
];
if (cmp) notes.push(`compared with: ${cmp}`);
process.stdout.write(toTap(checks, notes));
process.exitCode = checks.every((c) => c.ok) ? 0 : 1;
