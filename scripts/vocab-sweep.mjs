#!/usr/bin/env node
// The vocabulary sweep behind docs/vocabulary.md: for each tokenizer kind and vocabulary size,
// train the tokenizer on Brown's train split, measure it on the held-out test split, tokenize the
// corpus, run a short training with scripts/train/train.py, convert, and score the held-out test
// text with the runtime. Prints the table (markdown) and writes results.json.
//
//   npm run build && node scripts/vocab-sweep.mjs [--out DIR] [--steps 300] [--sizes 500,1000,2000,4000,8000] [--kinds word,bpe]
//
// Everything runs one job at a time on one thread (train.py --threads 1).

import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values: o } = parseArgs({
  options: {
    out: { type: 'string', default: '/tmp/itera-vocab-sweep' },
    steps: { type: 'string', default: '300' },
    sizes: { type: 'string', default: '500,1000,2000,4000,8000' },
    kinds: { type: 'string', default: 'word,bpe' },
    'batch-size': { type: 'string', default: '4' },
    stride: { type: 'string', default: '128' },
    seed: { type: 'string', default: '0' },
    python: { type: 'string', default: '/usr/bin/python3' },
  },
});
const out = resolve(o.out);
mkdirSync(out, { recursive: true });
const itera = join(root, 'bin', 'itera.js');
const sizes = o.sizes.split(',').map(Number);
const kinds = o.kinds.split(',');

// the model of the sweep: the micro preset (d=64, L=3, MoE in layer 1, T=128); only V changes
const TRAIN_ARGS = [
  '--preset',
  'micro',
  '--steps',
  o.steps,
  '--batch-size',
  o['batch-size'],
  '--seq-len',
  '128',
  '--lr',
  '3e-3',
  '--warmup',
  String(Math.max(1, Math.round(Number(o.steps) / 10))),
  '--threads',
  '1',
  '--seed',
  o.seed,
  '--eval-every',
  '0',
  '--eval-tokens',
  '32768',
  '--log-every',
  '100',
  '--quiet',
];
const TEACHER_D = 128;
const D = 64;

function run(cmd, args, label) {
  const t0 = Date.now();
  process.stderr.write(`$ ${[cmd, ...args].join(' ')}\n`);
  const s = execFileSync(cmd, args, {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 1 << 26,
  });
  process.stderr.write(`  (${label}: ${((Date.now() - t0) / 1000).toFixed(1)} s)\n`);
  return s;
}
const lastJson = (s) =>
  JSON.parse(
    s
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .pop(),
  );

const rows = [];
const tStart = Date.now();
for (const kind of kinds) {
  for (const V of sizes) {
    const name = `${kind}${V}`;
    const tok = join(out, `${name}.json`);
    const corpus = join(out, `corpus-${name}`);
    const runDir = join(out, `run-${name}`);
    const gguf = join(out, `${name}.gguf`);
    const trained = lastJson(
      run(
        'node',
        [itera, 'tokenizer', 'train', '--kind', kind, '--vocab', String(V), '--corpus', 'brown', '-o', tok, '--json'],
        'tokenizer',
      ),
    );
    const stats = lastJson(
      run(
        'node',
        [itera, 'tokenizer', 'stats', '--tokenizer', tok, '--corpus', 'brown', '--split', 'test', '--json'],
        'stats',
      ),
    );
    run('node', [itera, 'data', 'prepare', '--tokenizer', tok, '--corpus', 'brown', '-o', corpus], 'prepare');
    const t0 = Date.now();
    const summary = lastJson(
      run(o.python, [join(root, 'scripts/train/train.py'), '--data', corpus, '--out', runDir, ...TRAIN_ARGS], 'train'),
    );
    const trainSeconds = (Date.now() - t0) / 1000;
    run('node', [itera, 'convert', join(runDir, 'last.safetensors'), '--tokenizer', tok, '-o', gguf], 'convert');
    const score = lastJson(
      run(
        'node',
        [itera, 'score', '--model', gguf, '--text', join(corpus, 'test.txt'), '--stride', o.stride, '--json'],
        'score',
      ),
    );
    const unkBits = stats.unkSpellingBits ?? 0;
    const row = {
      kind,
      V: trained.vocab,
      unkRate: stats.unkRate,
      tokensPerChar: stats.tokensPerCharacter,
      embedD64: trained.vocab * D,
      embedTeacher: trained.vocab * TEACHER_D,
      parameters: summary.parameters,
      steps: summary.steps,
      trainTokens: Number(o.steps) * Number(o['batch-size']) * 128,
      trainSeconds,
      valLoss: summary.best_val_loss,
      testTokens: score.tokens,
      testCharacters: score.characters,
      perplexity: score.perplexity,
      bpc: score.bitsPerCharacter,
      bpcWithUnkSpelling: score.bitsPerCharacter + unkBits / score.characters,
    };
    rows.push(row);
    writeFileSync(join(out, 'results.json'), JSON.stringify({ args: o, trainArgs: TRAIN_ARGS, rows }, null, 1) + '\n');
    process.stderr.write(`${JSON.stringify(row)}\n`);
  }
}

const f = (x, n) => x.toFixed(n);
const int = (x) => x.toLocaleString('en-US');
const lines = [
  '| kind | V | unknown-token rate (test) | tokens / char | embedding params d=64 | d=128 (teacher) | model params (micro) | held-out bpc | bpc incl. spelling of <UNK> words | token perplexity |',
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...rows.map(
    (r) =>
      `| ${r.kind} | ${int(r.V)} | ${f(r.unkRate * 100, 2)}% | ${f(r.tokensPerChar, 4)} | ${int(r.embedD64)} | ${int(r.embedTeacher)} | ${int(r.parameters)} | ${f(r.bpc, 3)} | ${r.kind === 'word' ? f(r.bpcWithUnkSpelling, 3) : f(r.bpc, 3)} | ${f(r.perplexity, 1)} |`,
  ),
];
process.stdout.write(
  lines.join('\n') +
    `\n\n(total ${((Date.now() - tStart) / 1000 / 60).toFixed(1)} min; results in ${join(out, 'results.json')})\n`,
);
