import type { Command } from '../command.js';
import { fmtInt, num, str, UsageError } from '../command.js';
import { modelHelp, modelOptions, openModel } from './model-option.js';
import { Progress } from '../progress.js';
import { compressorBaselines, formatBaselines } from '../../bench/compressors.js';
import { baselineTrainingText, checkRoundTrip, qualityText } from './held-out.js';

export const score: Command = {
  name: 'score',
  summary: 'perplexity and bits per character of a text under a model',
  help: `Usage: itera score --text FILE|brown-test [--model FILE] [--baselines [--train FILE|brown]] [--json]

Scores a text file: total log-likelihood, perplexity per token and bits per character.
A text longer than the model's context is scored in windows of T tokens that advance by
--stride tokens; every token after the first is predicted exactly once.

Options:
${modelHelp}
      --text FILE      the text file to score (UTF-8)
      --stride N       window advance in tokens (default: half the context)
      --stream MODE    instead of windows, score the text as one stream through one session, with the
                       position limit handled as exact (the original's recomputation of the last T
                       tokens per token: T times the work) or slide (the faster approximation)
      --baselines      also the same text under xz -9e, zstd -19, bzip2 -9 and PPMd (7z
                       -m0=PPMd:mem=1g:o=8), run for real, alone and given the training text, in bits
                       per character and per byte; refused if the model's tokenizer does not give the
                       text back exactly (then the comparison would not be fair)
      --train FILE     the training text the compressors are given (brown: the Brown Corpus training
                       split, as our models were trained; brown+sotu: that and the State of the Union
                       addresses, as itera data --corpus brown+sotu trains); without it, "given" is
                       not computed
      --json           print the result as one JSON object
  -h, --help           this help`,
  options: {
    ...modelOptions,
    text: { type: 'string' },
    stride: { type: 'string' },
    stream: { type: 'string' },
    baselines: { type: 'boolean' },
    train: { type: 'string' },
    json: { type: 'boolean' },
  },
  async run(v, _p, io) {
    const file = str(v, 'text');
    if (file === undefined)
      throw new UsageError('--text FILE is required (or brown-test: the held-out Brown test split)');
    const text = qualityText(file, '--text');
    const trainArg = str(v, 'train');
    if (trainArg !== undefined && !v.baselines) throw new UsageError('--train is for --baselines');
    // read before any scoring, so that a missing training text fails at once
    const train = v.baselines ? baselineTrainingText(trainArg) : undefined;
    const model = await openModel(v);
    try {
      const stride = num(v, 'stride', { int: true, min: 1, max: model.config.maxSeqLength });
      const ids = model.encode(text);
      const bar = new Progress('scoring', ids.length);
      const t0 = performance.now();
      const stream = str(v, 'stream');
      if (stream !== undefined && stream !== 'exact' && stream !== 'slide')
        throw new UsageError(`--stream must be exact or slide, got '${stream}'`);
      const r = model.score(ids, { stride, stream, onProgress: (d) => bar.update(d) });
      const ms = performance.now() - t0;
      bar.done();
      const res = { ...r, characters: text.length, bitsPerCharacter: r.nll / Math.LN2 / Math.max(1, text.length), ms };
      let baselines;
      if (v.baselines) {
        checkRoundTrip(model.decode(ids), text, 'this model');
        baselines = compressorBaselines(text, train, undefined, (name) => io.err.write(`baselines: ${name}...\n`));
      }
      if (v.json) {
        io.out.write(JSON.stringify(baselines ? { ...res, baselines } : res) + '\n');
      } else {
        io.out.write(
          `tokens              ${fmtInt(res.tokens)} (${fmtInt(res.predicted)} predicted)\n` +
            `characters          ${fmtInt(res.characters)}\n` +
            `log-likelihood      ${res.logLikelihood.toFixed(2)} nats\n` +
            `perplexity          ${res.perplexity.toFixed(3)}\n` +
            `bits per token      ${res.bitsPerToken.toFixed(4)}\n` +
            `bits per character  ${res.bitsPerCharacter.toFixed(4)}\n` +
            `time                ${(ms / 1000).toFixed(2)} s\n`,
        );
        if (baselines)
          io.out.write(formatBaselines(baselines, { name: 'this model', bitsPerCharacter: res.bitsPerCharacter }));
      }
      return 0;
    } finally {
      model.dispose();
    }
  },
};
