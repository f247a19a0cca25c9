import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { Command } from '../command.js';
import { fmtBytes, num, str, UsageError } from '../command.js';
import { buildFrom } from './model-option.js';
import { loadModel, type Build } from '../../node/index.js';
import { isFloatType, quantizeModel, storedTypes, type QuantChoice } from '../../quant/quantize.js';
import { IteraError } from '../../runtime/types.js';
import { Progress } from '../progress.js';

export const QUANT_CHOICES = ['f32', 'f16', 'q8_0', 'q4_0', 'mixed'] as const;

export function parseQuant(x: string | undefined, option: string): QuantChoice | undefined {
  if (x === undefined) return undefined;
  const l = x.toLowerCase();
  if (!(QUANT_CHOICES as readonly string[]).includes(l))
    throw new UsageError(`--${option} must be one of ${QUANT_CHOICES.join(', ')}, got '${x}'`);
  return l === 'mixed' ? 'mixed' : (l.toUpperCase() as QuantChoice);
}

/** Fixed calibration tokens for mixed quantization: the model's own greedy continuation of its
 *  first few token ids, so no corpus is needed. */
export async function calibrationTokens(bytes: Uint8Array, build: Build): Promise<number[]> {
  const m = await loadModel(bytes, { build });
  try {
    const seed = [m.tokenizer.bos < m.config.vocabSize ? 4 : 0, 5, 6, 7].map((x) =>
      Math.min(x, m.config.vocabSize - 1),
    );
    const r = m.generate(seed, {
      temperature: 1,
      seed: 1234,
      maxTokens: m.config.maxSeqLength - seed.length,
      stopAtEos: false,
    });
    return [...seed, ...r.ids];
  } finally {
    m.dispose();
  }
}

export const quantize: Command = {
  name: 'quantize',
  summary: "store a model's large matrices as F16, Q8_0, Q4_0 or a measured mix",
  help: `Usage: itera quantize IN.gguf --type f16|q8_0|q4_0|mixed -o OUT.gguf

Writes a copy of a model with its tensors in another type, in GGUF's own block formats
(Q8_0: 32 int8 + an f16 scale per block; Q4_0: 32 4-bit values + an f16 scale), so other GGUF
tools read the file. Policy: the large matrices (embedding/output head, position embedding, SSM
in/out and delta projections, B, the router, expert and FFN matrices) take the type; C is stored
transposed as Q8_0 (its rows are shorter than a block); norms, biases, A_log, D and the conv taps
stay F32 (tiny, and they set the scan's dynamics), or F16 with --small f16. f16 stores every
tensor as F16. mixed quantizes each large matrix alone to Q4_0, measures how far the model's
output distribution moves (mean KL divergence over 128 calibration tokens the model generates
itself), and keeps the matrices above the mean at Q8_0, the rest at Q4_0; with --max-bytes,
the file's size decides instead: from all Q4_0, the matrices that move the output most per added
byte are raised to Q8_0 while the file still fits.

Options:
      --type T         f32, f16, q8_0, q4_0 or mixed (required)
  -o, --output FILE    the model file to write (required)
      --small T        the small tensors' type beside quantized matrices: f32 (default) or f16
                       (halves them: what a file of at most 100 KB needs)
      --max-bytes N    mixed only: the largest file to write, in bytes (e.g. 400000); refused if
                       even all Q4_0 does not fit
      --build B        WebAssembly build used by mixed: auto, simd, scalar
  -h, --help           this help`,
  options: {
    type: { type: 'string' },
    output: { type: 'string', short: 'o' },
    small: { type: 'string' },
    'max-bytes': { type: 'string' },
    build: { type: 'string' },
  },
  positionals: [1, 1],
  args: ['IN.gguf (the model file to re-type)'],
  async run(v, [input], io) {
    const type = parseQuant(str(v, 'type'), 'type');
    if (type === undefined) throw new UsageError('--type is required');
    const out = str(v, 'output');
    if (out === undefined) throw new UsageError('--output FILE is required');
    const smallArg = (str(v, 'small') ?? 'f32').toLowerCase();
    if (smallArg !== 'f32' && smallArg !== 'f16') throw new UsageError(`--small must be f32 or f16, got '${smallArg}'`);
    const maxBytes = num(v, 'max-bytes', { int: true, min: 1 });
    if (maxBytes !== undefined && type !== 'mixed') throw new UsageError('--max-bytes goes with --type mixed');
    if (!existsSync(input)) throw new IteraError(`model file not found: ${input}`, 'NO_FILE');
    const bytes = readFileSync(input);
    const before = storedTypes(bytes);
    if ([...before.values()].some((t) => !isFloatType(t))) {
      io.err.write(
        `itera quantize: note: ${input} is already quantized; its values are dequantized and quantized again (lossy twice)\n`,
      );
    }
    const build = buildFrom(v);
    const bar = new Progress('measuring sensitivity', 1);
    const r = await quantizeModel(bytes, type, {
      load: (b) => loadModel(b, { build }),
      calibration: type === 'mixed' ? await calibrationTokens(bytes, build) : undefined,
      small: smallArg === 'f16' ? 'F16' : 'F32',
      ...(maxBytes !== undefined ? { maxBytes } : {}),
      onProgress: (d, n) => {
        (bar as unknown as { total: number }).total = n;
        bar.update(d);
      },
    });
    bar.done();
    writeFileSync(out, r.bytes);
    const w = Math.max(...r.choices.map((c) => c.name.length));
    io.out.write(
      r.choices
        .map(
          (c) =>
            `  ${c.name.padEnd(w)}  ${c.type}${c.sensitivity !== undefined ? `  (KL shift at Q4_0: ${c.sensitivity.toExponential(2)})` : ''}`,
        )
        .join('\n') + '\n',
    );
    for (const n of r.notes) io.out.write(`note: ${n}\n`);
    io.out.write(
      `wrote ${out}: ${fmtBytes(r.bytes.byteLength)} (${(r.bytes.byteLength / bytes.byteLength).toFixed(3)}x of ${fmtBytes(bytes.byteLength)})\n`,
    );
    return 0;
  },
};
