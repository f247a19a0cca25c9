import { existsSync, readFileSync } from 'node:fs';
import type { Command, Io, Values } from '../command.js';
import { num, readAll, stillReading, str, UsageError } from '../command.js';
import { IteraError } from '../../runtime/types.js';
import { modelHelp, modelOptions, openModel } from './model-option.js';
import type { GenerateOptions } from '../../runtime/api.js';

export const DEFAULT_PROMPT = 'Once upon a time,';

export const run: Command = {
  name: 'run',
  summary: 'generate text from a prompt, streaming tokens as they are made',
  help: `Usage: itera run [--model FILE] [--prompt TEXT] [options]

Generates text inside the WebAssembly module and streams it to stdout as it is made.

Options:
${modelHelp}
  -p, --prompt TEXT    the prompt (default: "${DEFAULT_PROMPT}"); '-' reads it from stdin
  -f, --file FILE      read the prompt from a file ('-' = stdin); one final newline is dropped
  -n, --max-tokens N   most tokens to generate (default 64)
  -t, --temperature T  0 = greedy (default 0.8)
  -k, --top-k K        sample from the K most likely tokens only (0 = off, default 40)
      --top-p P        sample from the smallest set of tokens with probability >= P (1 = off, default 0.95)
  -s, --seed S         random seed, a whole number (default 0): the same seed gives the same text on every host
      --no-eos         keep going past the end-of-sequence token
      --truncate MODE  a prompt longer than the model's context: error (default) or left (keep its last tokens)
      --window MODE    past the context: exact (the original's recomputation, default) or slide (approximation)
      --json           print one JSON object (prompt ids, generated ids, text, timings) instead of streaming
  -h, --help           this help

Examples:
  itera run --prompt "The jury said"
  itera run --model models/student-q8_0.gguf --temperature 0 --max-tokens 30 --json
  echo "The jury said" | itera run -p - | head -c 200`,
  options: {
    ...modelOptions,
    prompt: { type: 'string', short: 'p' },
    file: { type: 'string', short: 'f' },
    'max-tokens': { type: 'string', short: 'n' },
    temperature: { type: 'string', short: 't' },
    'top-k': { type: 'string', short: 'k' },
    'top-p': { type: 'string' },
    seed: { type: 'string', short: 's' },
    'no-eos': { type: 'boolean' },
    truncate: { type: 'string' },
    window: { type: 'string' },
    json: { type: 'boolean' },
  },
  async run(v, _p, io) {
    const truncate = str(v, 'truncate') ?? 'error';
    if (truncate !== 'error' && truncate !== 'left')
      throw new UsageError(`--truncate must be error or left, got '${truncate}'`);
    const window = str(v, 'window') ?? 'exact';
    if (window !== 'exact' && window !== 'slide')
      throw new UsageError(`--window must be exact or slide, got '${window}'`);
    const o: GenerateOptions = {
      maxTokens: num(v, 'max-tokens', { int: true, min: 0 }) ?? 64,
      temperature: num(v, 'temperature', { min: 0 }) ?? 0.8,
      topK: num(v, 'top-k', { int: true, min: 0 }) ?? 40,
      topP: num(v, 'top-p') ?? 0.95,
      seed: num(v, 'seed', { int: true, min: 0, max: Number.MAX_SAFE_INTEGER }) ?? 0,
      stopAtEos: !v['no-eos'],
      truncate,
      window,
    };
    if (o.topP !== undefined && !(o.topP > 0 && o.topP <= 1))
      throw new UsageError(`--top-p must be greater than 0 and at most 1, got ${o.topP}`);
    const prompt = await readPrompt(v, io);
    const model = await openModel(v);
    try {
      if (v.json) {
        const r = model.generate(prompt, o);
        io.out.write(
          JSON.stringify({
            prompt,
            prompt_ids: r.promptIds,
            generated_ids: r.ids,
            text: r.text,
            prefill_ms: round(r.prefillMs),
            decode_ms: round(r.decodeMs),
            tokens_per_second: r.ids.length > 0 && r.decodeMs > 0 ? round(r.ids.length / (r.decodeMs / 1000)) : null,
          }) + '\n',
        );
        return 0;
      }
      io.out.write(prompt);
      const it = model.stream(prompt, o);
      let n = 0;
      let first = true;
      for (;;) {
        // the reader went away (itera run | head): stop generating, end quietly
        if (!(await stillReading(io))) {
          await it.return(undefined as never);
          return 0;
        }
        const step = await it.next();
        if (step.done) {
          const r = step.value;
          io.out.write('\n');
          const tps = n > 0 && r.decodeMs > 0 ? (n / (r.decodeMs / 1000)).toFixed(0) : '-';
          io.err.write(
            `[${n} tokens, ${tps} tokens/s, prompt ${r.promptIds.length} tokens in ${r.prefillMs.toFixed(2)} ms]\n`,
          );
          break;
        }
        n++;
        // the word tokenizer joins words with spaces: the first piece needs one after the prompt
        io.out.write(
          first && step.value.text !== '' && !/^\s/.test(step.value.text) && model.tokenizer.kind === 'itera-word'
            ? ' ' + step.value.text
            : step.value.text,
        );
        first = false;
      }
      return 0;
    } finally {
      model.dispose();
    }
  },
};

/** The prompt: --prompt, --file, or stdin for '-' in either; one final newline dropped from a
 *  file or stdin (echo adds one). */
async function readPrompt(v: Values, io: Io): Promise<string> {
  const text = str(v, 'prompt');
  const file = str(v, 'file');
  if (text !== undefined && file !== undefined)
    throw new UsageError('give the prompt once: --prompt TEXT or --file FILE, not both');
  const from = text === '-' ? '-' : file;
  if (from === undefined) return text ?? DEFAULT_PROMPT;
  let raw: string;
  if (from === '-') raw = await readAll(io.in ?? process.stdin);
  else {
    if (!existsSync(from)) throw new IteraError(`prompt file not found: ${from}`, 'NO_FILE');
    raw = readFileSync(from, 'utf8');
  }
  return raw.replace(/\r?\n$/, '');
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
