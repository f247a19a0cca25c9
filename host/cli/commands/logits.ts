import { writeFileSync } from 'node:fs';
import type { Command } from '../command.js';
import { idList, str, UsageError } from '../command.js';
import { modelHelp, modelOptions, openModel } from './model-option.js';

export const logits: Command = {
  name: 'logits',
  summary: 'write the logits of every position to a file (little-endian float32 [position][vocab])',
  help: `Usage: itera logits --ids 2,45,7 -o out.f32 [--model FILE] [--step]

Computes the logits of every position of a token id sequence and writes them as little-endian
float32, row-major [position][vocab] (the format of the reference golden files).

Options:
${modelHelp}
      --ids LIST       comma-separated token ids
      --text TEXT      or: a text to tokenize with the model's tokenizer
  -o, --output FILE    where to write the logits (required)
      --step           compute one token at a time through the recurrence instead of one prefill
      --window MODE    past the context: exact (default) or slide
  -h, --help           this help`,
  options: {
    ...modelOptions,
    ids: { type: 'string' },
    text: { type: 'string' },
    output: { type: 'string', short: 'o' },
    step: { type: 'boolean' },
    window: { type: 'string' },
  },
  async run(v, _p, io) {
    const out = str(v, 'output');
    if (out === undefined) throw new UsageError('--output FILE is required');
    const idsArg = str(v, 'ids');
    const text = str(v, 'text');
    if ((idsArg === undefined) === (text === undefined))
      throw new UsageError('give exactly one of --ids LIST or --text TEXT');
    const window = str(v, 'window') ?? 'exact';
    if (window !== 'exact' && window !== 'slide')
      throw new UsageError(`--window must be exact or slide, got '${window}'`);
    const model = await openModel(v);
    try {
      const ids = idsArg !== undefined ? idList(idsArg, 'ids') : model.promptIds(text!, 'error');
      const t0 = performance.now();
      const lg = model.logits(ids, { step: Boolean(v.step), window });
      const ms = performance.now() - t0;
      writeFileSync(out, new Uint8Array(lg.buffer, lg.byteOffset, lg.byteLength));
      io.err.write(
        `wrote ${ids.length} x ${model.config.vocabSize} logits to ${out} (${v.step ? 'step by step' : 'prefill'}, ${ms.toFixed(2)} ms)\n`,
      );
      return 0;
    } finally {
      model.dispose();
    }
  },
};
