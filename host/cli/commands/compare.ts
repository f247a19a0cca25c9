import { existsSync, readFileSync } from 'node:fs';
import type { Command } from '../command.js';
import { fmtBytes, num, str, UsageError } from '../command.js';
import { buildFrom } from './model-option.js';
import { loadModel } from '../../node/index.js';
import { compareModels } from '../../quant/compare.js';
import { IteraError } from '../../runtime/types.js';
import { Progress } from '../progress.js';
import { heldOutText } from './held-out.js';

export const compare: Command = {
  name: 'compare',
  summary: 'compare two or more models on the same tokens: logit differences, top-1 agreement, perplexity',
  help: `Usage: itera compare --model A.gguf --model B.gguf [--model C.gguf ...] [--text FILE] [--json]

Runs every model on the same tokens (the text encoded by the first model's tokenizer, in windows of
the context length) and reports, for each model against the first: the largest and the mean
absolute logit difference and how often the most likely next token agrees (top-1 agreement);
and for each model: perplexity and bits per character on the text.

Options:
  -m, --model FILE     a model file (give two or more; the first is the reference)
      --text FILE      the text to compare on (default: the held-out Brown Corpus test split)
      --max-tokens N   use at most N tokens of the text (default 4096)
      --build B        WebAssembly build: auto, simd, scalar, relaxed
      --json           print the result as JSON
  -h, --help           this help`,
  options: {
    model: { type: 'string', short: 'm', multiple: true },
    text: { type: 'string' },
    'max-tokens': { type: 'string' },
    build: { type: 'string' },
    json: { type: 'boolean' },
  },
  async run(v, _p, io) {
    const paths = (v.model as string[] | undefined) ?? [];
    if (paths.length < 2) throw new UsageError('give at least two --model files');
    for (const p of paths) if (!existsSync(p)) throw new IteraError(`model file not found: ${p}`, 'NO_FILE');
    const textPath = str(v, 'text');
    if (textPath !== undefined && !existsSync(textPath))
      throw new IteraError(`text file not found: ${textPath}`, 'NO_FILE');
    const text = textPath !== undefined ? readFileSync(textPath, 'utf8') : heldOutText();
    const maxTokens = num(v, 'max-tokens', { int: true, min: 2 }) ?? 4096;
    const build = buildFrom(v);
    const models = [];
    try {
      for (const p of paths) models.push(await loadModel(p, { build }));
      const bar = new Progress('comparing', models.length);
      const r = compareModels(models, text, { maxTokens, onProgress: (d) => bar.update(d) });
      bar.done();
      const sizes = paths.map((p) => readFileSync(p).byteLength);
      if (v.json) {
        io.out.write(
          JSON.stringify(
            {
              text: textPath ?? 'brown-test',
              ...r,
              models: r.models.map((m, i) => ({ path: paths[i], bytes: sizes[i], ...m })),
            },
            null,
            2,
          ) + '\n',
        );
        return 0;
      }
      io.out.write(
        `tokens: ${r.tokens} (${r.characters} characters) from ${textPath ?? 'the held-out Brown test split'}\n`,
      );
      const w = Math.max(...paths.map((p) => p.length));
      io.out.write(
        `${'model'.padEnd(w)}  ${'size'.padStart(10)}  ${'max |dlogit|'.padStart(12)}  ${'mean |dlogit|'.padStart(13)}  ${'top-1 agree'.padStart(11)}  ${'perplexity'.padStart(10)}  ${'bits/char'.padStart(9)}\n`,
      );
      r.models.forEach((m, i) => {
        io.out.write(
          `${paths[i].padEnd(w)}  ${fmtBytes(sizes[i]).padStart(10)}  ${(i === 0 ? '-' : m.maxAbsDiff.toFixed(5)).padStart(12)}  ${(i === 0 ? '-' : m.meanAbsDiff.toFixed(6)).padStart(13)}  ${(i === 0 ? '-' : (m.top1Agreement * 100).toFixed(2) + '%').padStart(11)}  ${m.perplexity.toFixed(3).padStart(10)}  ${m.bitsPerCharacter.toFixed(4).padStart(9)}\n`,
        );
      });
      return 0;
    } finally {
      for (const m of models) m.dispose();
    }
  },
};
