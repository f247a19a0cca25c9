// itera train: from a text to deployable model files (docs/training.md). Tokenizer, corpus,
// scripts/train/train.py (PyTorch), conversion, quantization, held-out scores and a model card.
// A workstation tool: it needs a clone of the repository and Python 3 with PyTorch.

import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { Command, Io } from '../command.js';
import { fmtBytes, fmtInt, num, str, UsageError } from '../command.js';
import { loadModel, packageRoot } from '../../node/index.js';
import { loadCorpus, trainingTexts } from '../../data/corpus.js';
import { trainBpe } from '../../tokenize/bpe-train.js';
import { readTokenizerFile } from '../../tokenize/files.js';
import { quantizeFixed } from '../../quant/quantize.js';
import { compressorBaselines, formatBaselines, type Baseline } from '../../bench/compressors.js';
import { IteraError } from '../../runtime/types.js';
import { prepareCorpus } from './data.js';
import { Progress } from '../progress.js';
import { findPython, parseTrainLine, pythonCandidates, runTrainer, trainScript } from '../../train/python.js';
import { checkTextSource, etaSeconds, SIZES, sizeFlags } from '../../train/plan.js';
import { parseCandidates, runToF32, sweepTable, vocabSweep, VOCAB_LADDER, type Sweep } from './train-vocab.js';

const sizeList = Object.entries(SIZES)
  .map(([n, s]) => `${' '.repeat(25)}${n.padEnd(7)} d=${s.d} L=${s.layers} E=${s.experts} f=${s.expertSize}: ${s.note}`)
  .join('\n');

const help = `Usage: itera train --text FILE|DIR|brown -o OUT/ [--vocab N|auto] [--size S] [--epochs E | --steps N]
                   [--time-budget D] [--seed S] [--distill-from MODEL] [--resume] [--baselines]

Trains a model on your text and writes files the runtime loads, in one command:
  0. with --vocab auto: each candidate size (--vocab-candidates) gets its own tokenizer and a
                 short run (--sweep-epochs) of the same model and seed; the size whose run gives
                 the validation text the fewest bits per character is used    OUT/vocab-sweep.json
  1. tokenizer   byte-level BPE of --vocab tokens, learned on the training split  OUT/tokenizer.json
  2. corpus      the text split by documents (every 10th test, the 5th of every 10 validation;
                 fewer than 10 documents all train) and tokenized                 OUT/corpus/
  3. training    scripts/train/train.py (PyTorch), position-free, one thread;
                 the best weights on validation are kept                          OUT/run/
  4. files       F32, Q8_0 and Q4_0                                               OUT/model-*.gguf
  5. card        held-out perplexity and bits per character of each file
                 (and, with --baselines, of xz, zstd, bzip2 and PPMd)             OUT/README.md, OUT/scores.json
Progress and the time left come from the trainer's log lines. Ctrl-C (SIGINT) finishes the
current step, writes OUT/run/checkpoint.pt and exits with status 130; the same command with
--resume continues, and the files come out byte for byte as from an uninterrupted run (the same
--seed gives the same files). The text is checked (UTF-8, not empty, enough tokens) before any
training starts.

Needs: a clone of the repository (the npm package leaves out scripts/train) and Python 3 with
PyTorch and NumPy (Debian/Ubuntu: sudo apt install python3-torch python3-numpy).

Options:
      --text SRC         the text: a UTF-8 file (documents separated by blank lines), a directory of
                         .txt files (one document each), or brown (the Brown Corpus; also
                         brown-train, brown-validation, brown-test, tinystories: as itera data)
  -o, --out DIR          where everything goes (required)
      --vocab N|auto     BPE vocabulary size, specials and 256 bytes included (default 2000; at
                         least 260; a small text may give fewer); auto: chosen on the validation
                         split by a sweep (step 0; the test split is never looked at)
      --vocab-candidates LIST  the sizes --vocab auto tries (default ${VOCAB_LADDER.join(',')}; a size
                         the text cannot reach ends the sweep)
      --sweep-epochs E   each candidate's training, in passes over its training tokens (default 0.5)
      --size S           the model's size (default small), all position-free:
${sizeList}
      --epochs E         passes over the training tokens (default 3)
      --steps N          instead of --epochs: optimizer steps
      --time-budget D    stop training after this long in all (90m, 2h, 1h30m, 600s); alone it also
                         sets the schedule's length from the measured speed (then not reproducible)
      --seq-len S        training window in tokens (default 128)
      --batch-size B     windows per step (default 16)
      --lr X             peak learning rate (default 3e-3)
      --dropout P        residual dropout while training (default 0: off); 0.1 helps a model that
                         overfits its text (validation loss well above training loss: docs/training.md)
      --eval-every N     validate every N steps (default 200)
      --patience N       stop after N validations without improvement (default 4; 0: never)
      --seed S           seed of the initialisation and the data order (default 1)
      --distill-from M   a teacher (.safetensors from an earlier itera train's OUT/run/model.safetensors,
                         same --vocab and --text): distillation at temperature 2, alpha 0.5
      --resume           continue an interrupted run in OUT (else an existing checkpoint is an error)
      --baselines        also run xz, zstd, bzip2 and PPMd on the held-out text, given the training text
      --name NAME        the model's name in its files (default: OUT's name)
      --python PATH      the Python 3 with PyTorch (default: $ITERA_PYTHON, /usr/bin/python3, python3)
      --threads N        PyTorch threads (default 1; more is not deterministic across thread counts)
      --log-every N      a progress line every N steps (default 20)
  -h, --help             this help

Examples:
  itera train --text my-notes.txt -o runs/notes                      (small model, 3 epochs)
  itera train --text brown --size medium --time-budget 2h -o runs/brown-medium
  itera train --text brown --size medium --time-budget 2h -o runs/brown-medium --resume   (after Ctrl-C)`;

const QUANTS = ['f32', 'q8_0', 'q4_0'] as const;

interface ScoreRow {
  file: string;
  bytes: number;
  parameters: number;
  tokens: number;
  perplexity: number;
  bitsPerCharacter: number;
}

/** Turns an interrupt during the Node phases into a flag the pipeline checks between phases. */
function interruptFlag(): { get: () => boolean; dispose: () => void } {
  let hit = false;
  const on = (): void => {
    hit = true;
  };
  process.on('SIGINT', on);
  process.on('SIGTERM', on);
  return {
    get: () => hit,
    dispose: () => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
    },
  };
}

function stepFlags(v: Record<string, unknown>): string[] {
  const out: string[] = [];
  const pass = (name: string, flag = name): void => {
    const x = v[name];
    if (typeof x === 'string') out.push(`--${flag}`, x);
  };
  if (v.steps !== undefined && v.epochs !== undefined) throw new UsageError('--steps and --epochs are alternatives');
  pass('steps');
  pass('epochs');
  if (v.steps === undefined && v.epochs === undefined && v['time-budget'] === undefined) out.push('--epochs', '3');
  pass('time-budget');
  return out;
}

export const train: Command = {
  name: 'train',
  summary: 'train a model on your text (tokenizer, PyTorch training, F32/Q8_0/Q4_0 files, card)',
  help,
  options: {
    text: { type: 'string' },
    out: { type: 'string', short: 'o' },
    vocab: { type: 'string' },
    'vocab-candidates': { type: 'string' },
    'sweep-epochs': { type: 'string' },
    size: { type: 'string' },
    epochs: { type: 'string' },
    steps: { type: 'string' },
    'time-budget': { type: 'string' },
    'seq-len': { type: 'string' },
    'batch-size': { type: 'string' },
    lr: { type: 'string' },
    dropout: { type: 'string' },
    'eval-every': { type: 'string' },
    patience: { type: 'string' },
    seed: { type: 'string' },
    'distill-from': { type: 'string' },
    resume: { type: 'boolean' },
    baselines: { type: 'boolean' },
    name: { type: 'string' },
    python: { type: 'string' },
    threads: { type: 'string' },
    'log-every': { type: 'string' },
  },
  async run(v, _p, io) {
    const textArg = str(v, 'text');
    if (textArg === undefined) throw new UsageError('--text FILE|DIR|brown is required (the text to train on)');
    const outArg = str(v, 'out');
    if (outArg === undefined) throw new UsageError('--out DIR is required (where the model files go)');
    const out = resolve(outArg);
    const auto = v.vocab === 'auto';
    let vocab = auto ? 0 : (num(v, 'vocab', { int: true, min: 260 }) ?? 2000);
    if (!auto && (v['vocab-candidates'] !== undefined || v['sweep-epochs'] !== undefined))
      throw new UsageError('--vocab-candidates and --sweep-epochs go with --vocab auto');
    const candidates = parseCandidates(str(v, 'vocab-candidates'));
    const sweepEpochs = num(v, 'sweep-epochs', { min: 0.01, max: 100 }) ?? 0.5;
    const sizeName = str(v, 'size') ?? 'small';
    const size = SIZES[sizeName];
    if (!size) throw new UsageError(`--size must be one of ${Object.keys(SIZES).join(', ')}, got '${sizeName}'`);
    num(v, 'steps', { int: true, min: 1 });
    num(v, 'epochs', { min: 0 });
    const seqLen = num(v, 'seq-len', { int: true, min: 2 }) ?? 128;
    const batch = num(v, 'batch-size', { int: true, min: 1 }) ?? 16;
    const seed = num(v, 'seed', { int: true, min: 0 }) ?? 1;
    const threads = num(v, 'threads', { int: true, min: 1 }) ?? 1;
    const evalEvery = num(v, 'eval-every', { int: true, min: 1 }) ?? 200;
    const patience = num(v, 'patience', { int: true, min: 0 }) ?? 4;
    const logEvery = num(v, 'log-every', { int: true, min: 1 }) ?? 20;
    const lr = num(v, 'lr', { min: 0 });
    const dropout = num(v, 'dropout', { min: 0, max: 0.9 });
    const teacher = str(v, 'distill-from');
    if (teacher !== undefined && !existsSync(teacher))
      throw new IteraError(`--distill-from: ${teacher} does not exist`, 'NO_FILE');
    const schedule = stepFlags(v);
    const name = str(v, 'name') ?? basename(out);
    const resume = v.resume === true;
    const say = (s: string): void => {
      io.err.write(`itera train: ${s}\n`);
    };

    // 1. the text, checked before anything else
    const isBrown = /^brown(-(train|validation|val|test))?$/.test(textArg);
    if (!isBrown && textArg !== 'tinystories') {
      if (!existsSync(textArg)) throw new IteraError(`--text: ${textArg} does not exist`, 'NO_CORPUS');
      checkTextSource(textArg);
    }
    // 2. the tools
    const script = trainScript(packageRoot());
    const py = findPython(pythonCandidates(str(v, 'python')));
    say(`Python ${py.python} with PyTorch ${py.torch}; trainer ${script}`);

    const runDir = join(out, 'run');
    const ckpt = join(runDir, 'checkpoint.pt');
    const sweepDir = join(out, 'vocab-sweep');
    if ((existsSync(ckpt) || existsSync(sweepDir)) && !resume)
      throw new IteraError(
        `${out} holds a run already (${existsSync(ckpt) ? ckpt : sweepDir}): add --resume to continue it, or choose another --out`,
        'RUN_EXISTS',
      );
    mkdirSync(out, { recursive: true });
    const stop = interruptFlag();
    const t0 = performance.now();
    try {
      // 3. tokenizer and corpus (reused on --resume: they are deterministic, and train.py checks them)
      const tokPath = join(out, 'tokenizer.json');
      const corpusDir = join(out, 'corpus');
      const corpus = loadCorpus(textArg, packageRoot());
      // the model's shape and training flags, shared by the sweep's runs and the final one
      const common = [
        ...sizeFlags(size),
        '--seq-len',
        String(seqLen),
        '--batch-size',
        String(batch),
        '--seed',
        String(seed),
        '--threads',
        String(threads),
        '--eval-every',
        String(evalEvery),
        '--patience',
        String(patience),
        '--log-every',
        String(logEvery),
        '--ckpt-every',
        '200',
        '--ckpt-minutes',
        '5',
        ...(lr !== undefined ? ['--lr', String(lr)] : []),
        ...(dropout ? ['--dropout', String(dropout)] : []),
      ];
      let sweep: Sweep | undefined;
      if (auto) {
        const r = await vocabSweep({
          corpus,
          out,
          candidates,
          epochs: sweepEpochs,
          python: py.python,
          script,
          trainFlags: common,
          topK: size.topK,
          seqLen,
          say,
          onLine: (line, stream) => {
            const l = parseTrainLine(line);
            if (l.kind === 'step' && l.total && l.step % (logEvery * 10) === 0)
              say(`  step ${l.step}/${l.total}, time left ${l.eta}`);
            else if (stream === 'err' && l.kind === 'other' && line.trim() !== '') io.err.write(`  ${line}\n`);
          },
        });
        if (r === 'interrupted') return interrupted(io, out, 'during the vocabulary sweep');
        sweep = r;
        vocab = r.chosen;
        say(`vocabulary: ${vocab} chosen on the validation split (${join(out, 'vocab-sweep.json')})`);
      }
      if (sweep) {
        // the chosen size's tokenizer, learned once already by the sweep (trainBpe is deterministic)
        copyFileSync(join(out, 'vocab-sweep', String(vocab), 'tokenizer.json'), tokPath);
        say(`tokenizer: byte-level BPE, the sweep's ${vocab}`);
      } else if (!(resume && existsSync(tokPath))) {
        const bar = new Progress('tokenizer merges', vocab - 260);
        const r = trainBpe(trainingTexts(corpus), vocab, (d) => bar.update(d));
        bar.done();
        writeFileSync(tokPath, JSON.stringify(r.tokenizer.toJson()) + '\n');
        say(
          `tokenizer: byte-level BPE, ${fmtInt(r.tokenizer.size)} tokens` +
            (r.tokenizer.size < vocab ? ` (the text has no more repeated pairs than that; asked ${vocab})` : ''),
        );
      }
      const tok = readTokenizerFile(tokPath);
      if (stop.get()) return interrupted(io, out, 'before training');
      const metaPath = join(corpusDir, 'meta.json');
      const meta = (
        resume && existsSync(metaPath)
          ? JSON.parse(readFileSync(metaPath, 'utf8'))
          : prepareCorpus(corpus, tok, tokPath, corpusDir)
      ) as { splits: Record<string, { tokens: number; characters: number; documents: number }> };
      const sp = meta.splits;
      say(
        `corpus: ${corpus.description}; tokens: ${fmtInt(sp.train!.tokens)} train, ${fmtInt(sp.validation!.tokens)} validation, ${fmtInt(sp.test!.tokens)} test`,
      );
      if (sp.train!.tokens < seqLen + 1)
        throw new IteraError(
          `too little text: the training split has ${fmtInt(sp.train!.tokens)} tokens, and windows of ${seqLen} need at least ` +
            `${seqLen + 1}; give more text or a smaller --seq-len`,
          'TOO_LITTLE_TEXT',
        );
      if (sp.test!.documents === 0)
        say('note: fewer than 10 documents, so no held-out test split: the card will have no held-out scores');
      if (stop.get()) return interrupted(io, out, 'before training');

      // 4. training
      const args = [
        '--data',
        corpusDir,
        '--out',
        runDir,
        ...common,
        ...schedule,
        '--resume',
        ...(teacher !== undefined
          ? ['--teacher', resolve(teacher), '--kd-temperature', '2.0', '--kd-alpha', '0.5']
          : []),
      ];
      const valCharsPerToken = sp.validation!.tokens > 0 ? sp.validation!.characters / sp.validation!.tokens : NaN;
      let summary: Record<string, unknown> = {};
      const exit = await runTrainer(py.python, script, args, (line, stream) => {
        const l = parseTrainLine(line);
        if (l.kind === 'step') {
          const pct = l.total ? ` (${((100 * l.step) / l.total).toFixed(0)}%)` : '';
          say(
            `step ${l.step}/${l.total ?? '?'}${pct}  loss ${l.loss.toFixed(4)}  time left ${l.eta}` +
              (etaSeconds(l.eta) >= 60 ? ` (about ${Math.round(etaSeconds(l.eta) / 60)} min)` : ''),
          );
        } else if (l.kind === 'eval') {
          const bpc = l.bitsPerToken / valCharsPerToken;
          say(
            `validation at step ${l.step}: ${l.bitsPerToken.toFixed(3)} bits/token` +
              (Number.isFinite(bpc) ? `, ${bpc.toFixed(3)} bits/char` : '') +
              (l.best ? ' (best so far, saved)' : ''),
          );
        } else if (stream === 'out' && line.startsWith('{')) {
          try {
            summary = JSON.parse(line) as Record<string, unknown>;
          } catch {
            io.err.write(line + '\n');
          }
        } else if (line.trim() !== '') {
          io.err.write(`  ${line}\n`);
        }
      });
      if (exit.interrupted || exit.code === 130 || exit.code === 143) {
        if (exit.code === 0) say('the interrupt came as training ended: the run is complete');
        else return interrupted(io, out, 'during training');
      } else if (exit.code !== 0) {
        throw new IteraError(
          `train.py failed (exit status ${exit.code ?? exit.signal}); its last error lines:\n${exit.stderr.trim().split('\n').slice(-8).join('\n')}`,
          'TRAIN_FAILED',
        );
      }

      // 5. files (a Ctrl-C from here on stops too; --resume then finds the run finished)
      if (stop.get()) return interrupted(io, out, 'after training');
      const st = join(runDir, 'model.safetensors');
      const f32 = runToF32(st, tok, size.topK, seqLen, name);
      const files: Record<string, Uint8Array> = {
        f32,
        q8_0: quantizeFixed(f32, 'Q8_0'),
        q4_0: quantizeFixed(f32, 'Q4_0'),
      };
      for (const q of QUANTS) writeFileSync(join(out, `model-${q}.gguf`), files[q]!);
      say(`wrote ${QUANTS.map((q) => `model-${q}.gguf (${fmtBytes(files[q]!.byteLength)})`).join(', ')}`);

      // 6. held-out scores and the card
      const testText = sp.test!.documents > 0 ? readFileSync(join(corpusDir, 'test.txt'), 'utf8') : '';
      const rows: ScoreRow[] = [];
      for (const q of QUANTS) {
        if (stop.get()) return interrupted(io, out, 'after training');
        const model = await loadModel(files[q]!);
        try {
          const row: ScoreRow = {
            file: `model-${q}.gguf`,
            bytes: files[q]!.byteLength,
            parameters: model.info().parameters,
            tokens: 0,
            perplexity: NaN,
            bitsPerCharacter: NaN,
          };
          if (testText !== '') {
            const s = model.score(testText);
            Object.assign(row, {
              tokens: s.tokens,
              perplexity: s.perplexity,
              bitsPerCharacter: s.nll / Math.LN2 / testText.length,
            });
          }
          rows.push(row);
        } finally {
          model.dispose();
        }
      }
      let baselines: Baseline[] | undefined;
      if (v.baselines && testText !== '') {
        const trainText = readFileSync(join(corpusDir, 'train.txt'), 'utf8');
        baselines = compressorBaselines(testText, trainText, undefined, (n) => say(`baselines: ${n}...`));
      }
      const scores = {
        name,
        text: corpus.description,
        size: sizeName,
        vocab: tok.size,
        seed,
        heldOut: { characters: testText.length, documents: sp.test!.documents },
        results: rows,
        baselines: baselines ?? null,
        vocabSweep: sweep ?? null,
        training: summary,
      };
      writeFileSync(join(out, 'scores.json'), JSON.stringify(scores, null, 2) + '\n');
      writeFileSync(join(out, 'README.md'), card(scores, size.topK, baselines, sweep));
      const secs = (performance.now() - t0) / 1000;
      io.out.write(
        rows
          .map(
            (r) =>
              `${r.file.padEnd(16)} ${fmtBytes(r.bytes).padStart(10)}  ` +
              (testText !== ''
                ? `held-out perplexity ${r.perplexity.toFixed(2)}, ${r.bitsPerCharacter.toFixed(4)} bits/char`
                : 'no held-out text'),
          )
          .join('\n') +
          '\n' +
          (baselines
            ? formatBaselines(baselines, { name: 'model-q8_0', bitsPerCharacter: rows[1]!.bitsPerCharacter })
            : '') +
          `wrote ${out}/ (model-f32.gguf, model-q8_0.gguf, model-q4_0.gguf, README.md, scores.json) in ${(secs / 60).toFixed(1)} min\n` +
          `try: itera run --model ${join(out, 'model-q8_0.gguf')} -p "..."\n`,
      );
      return 0;
    } finally {
      stop.dispose();
    }
  },
};

function interrupted(io: Io, out: string, when: string): number {
  io.err.write(
    `itera train: interrupted ${when}; ${when === 'during training' ? `checkpoint in ${join(out, 'run', 'checkpoint.pt')}; ` : ''}` +
      'run the same command with --resume to continue\n',
  );
  return 130;
}

function card(
  s: {
    name: string;
    text: string;
    size: string;
    vocab: number;
    seed: number;
    heldOut: { characters: number; documents: number };
    results: ScoreRow[];
    training: Record<string, unknown>;
  },
  topK: number,
  baselines?: Baseline[],
  sweep?: Sweep,
): string {
  const t = s.training;
  const fmt = (x: number, d: number) => (Number.isFinite(x) ? x.toFixed(d) : '-');
  const lines = [
    `# ${s.name}`,
    '',
    `Trained with \`itera train\` on ${s.text}.`,
    '',
    `- Size: ${s.size} (${fmtInt(s.results[0]!.parameters)} parameters, position-free, top-${topK} experts), byte-level BPE of ${fmtInt(s.vocab)} tokens, seed ${s.seed}.`,
    `- Training: ${String(t.steps ?? '?')} steps, stopped: ${String(t.stop_reason ?? '?')}; best validation loss ${typeof t.best_val_loss === 'number' ? t.best_val_loss.toFixed(4) : '?'} nats/token at step ${String(t.best_step ?? '?')}.`,
    `- Held-out text: the test split, ${fmtInt(s.heldOut.documents)} documents, ${fmtInt(s.heldOut.characters)} characters (\`itera score --text corpus/test.txt\`).`,
    '',
    '| type | file | size | held-out perplexity | bits per character |',
    '| --- | --- | ---: | ---: | ---: |',
    ...s.results.map(
      (r, i) =>
        `| ${QUANTS[i]!.toUpperCase()} | \`${r.file}\` | ${fmtBytes(r.bytes)} | ${fmt(r.perplexity, 2)} | ${fmt(r.bitsPerCharacter, 4)} |`,
    ),
  ];
  if (baselines) {
    lines.push(
      '',
      'Compressors on the same held-out text, alone and given the training text (bits per character):',
      '',
      '| compressor | alone | given the training text | command |',
      '| --- | ---: | ---: | --- |',
      ...baselines.map(
        (b) =>
          `| ${b.name} | ${b.alone ? b.alone.bitsPerCharacter.toFixed(4) : '-'} | ${b.givenTraining ? b.givenTraining.bitsPerCharacter.toFixed(4) : '-'} | ${b.error ?? `\`${b.command}\``} |`,
      ),
    );
  }
  if (sweep) lines.push('', ...sweepTable(sweep));
  return lines.join('\n') + '\n';
}
