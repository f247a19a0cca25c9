// `itera train --vocab auto`: the vocabulary size chosen on the validation split. Each candidate
// size gets its own tokenizer (learned on the training split), its own corpus and a short
// training run of the same model size and seed; the run's best weights are scored on the
// validation text by the runtime itself (bits per character, so that sizes with different
// tokens per character compare fairly), and the lowest wins. The test split is never read.
// Each candidate's result is kept in OUT/vocab-sweep/V/result.json, and its run resumes from its
// own checkpoint, so an interrupted sweep continues where it stopped.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel } from '../../node/index.js';
import type { Corpus } from '../../data/corpus.js';
import { trainingTexts } from '../../data/corpus.js';
import { trainBpe } from '../../tokenize/bpe-train.js';
import { readTokenizerFile } from '../../tokenize/files.js';
import type { Tokenizer } from '../../runtime/tokenizer/index.js';
import { importCheckpoint } from '../../convert/import/index.js';
import { stateDictToModel } from '../../convert/state-dict.js';
import { writeModelFile } from '../../convert/model-write.js';
import { IteraError } from '../../runtime/types.js';
import { UsageError } from '../command.js';
import { prepareCorpus } from './data.js';
import { runTrainer, type TrainerExit } from '../../train/python.js';

/** The sizes tried by default (specials and the 256 bytes included). */
export const VOCAB_LADDER: readonly number[] = [500, 1000, 2000, 4000, 8000];

export interface SweepRow {
  /** the size asked for */
  vocab: number;
  /** the size the text gave (less than asked when it has no more repeated pairs) */
  tokenizerSize: number;
  trainTokens: number;
  validationTokens: number;
  validationCharacters: number;
  steps: number;
  /** bits per character of the validation text under the run's best weights (F32) */
  validationBitsPerCharacter: number;
  seconds: number;
}

export interface Sweep {
  split: 'validation';
  epochs: number;
  rows: SweepRow[];
  /** the vocab of the best row */
  chosen: number;
}

/** --vocab-candidates: a comma-separated list of sizes, each at least 260, in increasing order. */
export function parseCandidates(s: string | undefined): number[] {
  if (s === undefined) return [...VOCAB_LADDER];
  const out = s.split(',').map((x) => Number(x.trim()));
  if (out.length < 2 || out.some((x) => !Number.isInteger(x) || x < 260))
    throw new UsageError(`--vocab-candidates: two or more whole sizes of at least 260, comma-separated; got '${s}'`);
  for (let i = 1; i < out.length; i++)
    if (out[i]! <= out[i - 1]!) throw new UsageError(`--vocab-candidates must increase; got '${s}'`);
  return out;
}

export interface SweepOptions {
  corpus: Corpus;
  out: string;
  candidates: readonly number[];
  epochs: number;
  python: string;
  script: string;
  /** train.py's flags other than --data, --out and the schedule (size, window, batch, seed, ...) */
  trainFlags: readonly string[];
  topK: number;
  seqLen: number;
  say: (s: string) => void;
  onLine: (line: string, stream: 'out' | 'err') => void;
}

/** Runs (or resumes) the sweep; 'interrupted' when a run was stopped by SIGINT/SIGTERM. */
export async function vocabSweep(o: SweepOptions): Promise<Sweep | 'interrupted'> {
  const rows: SweepRow[] = [];
  const seen = new Set<number>();
  for (const vocab of o.candidates) {
    const dir = join(o.out, 'vocab-sweep', String(vocab));
    const resultPath = join(dir, 'result.json');
    if (existsSync(resultPath)) {
      const r = JSON.parse(readFileSync(resultPath, 'utf8')) as SweepRow;
      seen.add(r.tokenizerSize);
      rows.push(r);
      o.say(
        `vocabulary ${vocab}: ${r.validationBitsPerCharacter.toFixed(4)} bits/char on validation (kept from before)`,
      );
      continue;
    }
    mkdirSync(dir, { recursive: true });
    const tokPath = join(dir, 'tokenizer.json');
    if (!existsSync(tokPath)) {
      const r = trainBpe(trainingTexts(o.corpus), vocab);
      writeFileSync(tokPath, JSON.stringify(r.tokenizer.toJson()) + '\n');
    }
    const tok = readTokenizerFile(tokPath);
    if (seen.has(tok.size)) {
      o.say(`vocabulary ${vocab}: the text gives only ${tok.size} tokens, already tried; the sweep ends here`);
      break;
    }
    seen.add(tok.size);
    const corpusDir = join(dir, 'corpus');
    const meta = (
      existsSync(join(corpusDir, 'meta.json'))
        ? JSON.parse(readFileSync(join(corpusDir, 'meta.json'), 'utf8'))
        : prepareCorpus(o.corpus, tok, tokPath, corpusDir)
    ) as { splits: Record<string, { tokens: number; characters: number }> };
    const val = meta.splits.validation!;
    if (val.tokens === 0)
      throw new IteraError('--vocab auto needs a validation split: give at least 10 documents', 'TOO_LITTLE_TEXT');
    o.say(
      `vocabulary ${vocab}: ${tok.size} tokens; training for ${o.epochs} epoch(s) of ${meta.splits.train!.tokens} tokens`,
    );
    const runDir = join(dir, 'run');
    const exit: TrainerExit = await runTrainer(
      o.python,
      o.script,
      ['--data', corpusDir, '--out', runDir, '--epochs', String(o.epochs), ...o.trainFlags, '--resume'],
      o.onLine,
    );
    if (exit.interrupted || exit.code === 130 || exit.code === 143) return 'interrupted';
    if (exit.code !== 0)
      throw new IteraError(
        `train.py failed in the vocabulary sweep (size ${vocab}, exit status ${exit.code ?? exit.signal}):\n${exit.stderr.trim().split('\n').slice(-8).join('\n')}`,
        'TRAIN_FAILED',
      );
    const st = join(runDir, 'model.safetensors');
    const bits = await validationBits(st, tok, o.topK, o.seqLen, readFileSync(join(corpusDir, 'val.txt'), 'utf8'));
    const log = readFileSync(join(runDir, 'train_log.jsonl'), 'utf8');
    const summary = lastSummary(log);
    const row: SweepRow = {
      vocab,
      tokenizerSize: tok.size,
      trainTokens: meta.splits.train!.tokens,
      validationTokens: val.tokens,
      validationCharacters: val.characters,
      steps: summary.steps,
      validationBitsPerCharacter: bits,
      seconds: summary.seconds,
    };
    writeFileSync(resultPath, JSON.stringify(row, null, 2) + '\n');
    o.say(`vocabulary ${vocab}: ${bits.toFixed(4)} bits/char on validation`);
    rows.push(row);
  }
  const best = rows.reduce((a, b) => (b.validationBitsPerCharacter < a.validationBitsPerCharacter ? b : a));
  const sweep: Sweep = { split: 'validation', epochs: o.epochs, rows, chosen: best.vocab };
  writeFileSync(join(o.out, 'vocab-sweep.json'), JSON.stringify(sweep, null, 2) + '\n');
  return sweep;
}

/** A run's weights (train.py's model.safetensors) as an F32 model file with its tokenizer: what
 *  the sweep scores, and the first file itera train writes. */
export function runToF32(st: string, tok: Tokenizer, topK: number, seqLen: number, name: string): Uint8Array {
  const imported = importCheckpoint(readFileSync(st), st);
  const m = stateDictToModel(imported.tensors, { topK, maxSeqLength: seqLen });
  return writeModelFile({ config: m.config, tensors: m.tensors, tokenizer: tok, name, type: 'F32' });
}

/** The validation text's bits per character under a run's weights, as the runtime computes them. */
async function validationBits(st: string, tok: Tokenizer, topK: number, seqLen: number, text: string): Promise<number> {
  const model = await loadModel(runToF32(st, tok, topK, seqLen, 'sweep'));
  try {
    return model.score(text).bitsPerCharacter;
  } finally {
    model.dispose();
  }
}

function lastSummary(log: string): { steps: number; seconds: number } {
  for (const line of log.trim().split('\n').reverse()) {
    try {
      const o = JSON.parse(line) as { summary?: { steps: number; seconds: number } };
      if (o.summary) return o.summary;
    } catch {
      // a line cut short by an interrupt: look further back
    }
  }
  return { steps: 0, seconds: 0 };
}

/** The sweep as a Markdown table for the card. */
export function sweepTable(s: Sweep): string[] {
  return [
    `Vocabulary size chosen by \`--vocab auto\` on the validation split (each size: its own tokenizer and ${s.epochs} epoch(s) of the same model and seed; bits per character of the validation text under the run's best weights):`,
    '',
    '| vocabulary | tokens per character (validation) | steps | validation bits per character |',
    '| ---: | ---: | ---: | ---: |',
    ...s.rows.map(
      (r) =>
        `| ${r.tokenizerSize}${r.vocab === s.chosen ? ' (chosen)' : ''} | ${(r.validationTokens / Math.max(1, r.validationCharacters)).toFixed(3)} | ${r.steps} | ${r.validationBitsPerCharacter.toFixed(4)} |`,
    ),
  ];
}
