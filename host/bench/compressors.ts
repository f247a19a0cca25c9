// Classic compressors as quality baselines for a language model (issue 15): a model that predicts
// text well compresses it well, so bits per character under xz, zstd, bzip2 and PPMd (7-Zip) are
// the yardstick beside the model's own bits per character. The real programs run (Debian's
// xz-utils, zstd, bzip2, p7zip-full); nothing is estimated.
//
// "alone": the compressed size of the text by itself (container headers included).
// "given the training text": size(train + text) - size(train), the cost of the text for a
// compressor that has seen what the model was trained on. Both in bits, divided by the text's
// characters (UTF-16 code units, as `itera score` counts them) and by its UTF-8 bytes.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Compressor {
  name: string;
  /** The program and its arguments as a person would type them (for the report). */
  command: string;
  /** Compressed size in bytes of the file at `input`, or an error saying what is missing. */
  size(input: string, work: string): number;
}

function run(program: string, args: string[], work: string): Buffer {
  const r = spawnSync(program, args, { cwd: work, maxBuffer: 1 << 30, timeout: 600_000 });
  if (r.error) {
    const missing = (r.error as NodeJS.ErrnoException).code === 'ENOENT';
    throw new Error(
      missing
        ? `${program} is not installed (Debian: apt-get install ${PACKAGES[program] ?? program})`
        : `${program}: ${r.error.message}`,
    );
  }
  if (r.status !== 0)
    throw new Error(`${program} ${args.join(' ')} exited with ${r.status}: ${String(r.stderr).trim()}`);
  return r.stdout;
}

const PACKAGES: Record<string, string> = { xz: 'xz-utils', zstd: 'zstd', bzip2: 'bzip2', '7z': 'p7zip-full' };

/** A compressor that writes to standard output. */
function piped(name: string, program: string, args: string[]): Compressor {
  return {
    name,
    command: `${program} ${args.join(' ')}`,
    size: (input, work) => run(program, [...args, input], work).length,
  };
}

export const COMPRESSORS: readonly Compressor[] = [
  piped('xz', 'xz', ['-9e', '-c', '-T1']),
  piped('zstd', 'zstd', ['-19', '-c', '-q']),
  piped('bzip2', 'bzip2', ['-9', '-c']),
  {
    name: 'PPMd',
    command: '7z a -m0=PPMd:mem=1g:o=8',
    size(input, work) {
      const out = join(work, 'out.7z');
      rmSync(out, { force: true });
      run('7z', ['a', '-bd', '-bso0', '-bsp0', '-m0=PPMd:mem=1g:o=8', '-mmt=1', out, input], work);
      return statSync(out).size;
    },
  },
];

export interface BaselineFigures {
  bytes: number;
  bitsPerCharacter: number;
  bitsPerByte: number;
}

export interface Baseline {
  name: string;
  command: string;
  alone: BaselineFigures | null;
  /** null without a training text. */
  givenTraining: BaselineFigures | null;
  /** Why the figures are missing (a program not installed, say). */
  error?: string;
}

/** Runs every compressor on `text` alone and, with `train`, on train + text. */
export function compressorBaselines(
  text: string,
  train?: string,
  compressors: readonly Compressor[] = COMPRESSORS,
  onProgress?: (name: string) => void,
): Baseline[] {
  const chars = Math.max(1, text.length);
  const bytes = Math.max(1, Buffer.byteLength(text, 'utf8'));
  const figures = (size: number): BaselineFigures => ({
    bytes: size,
    bitsPerCharacter: (size * 8) / chars,
    bitsPerByte: (size * 8) / bytes,
  });
  const work = mkdtempSync(join(tmpdir(), 'itera-baselines-'));
  try {
    const textFile = join(work, 'text.txt');
    writeFileSync(textFile, text);
    let trainFile: string | null = null;
    let bothFile: string | null = null;
    if (train !== undefined) {
      trainFile = join(work, 'train.txt');
      bothFile = join(work, 'train-and-text.txt');
      writeFileSync(trainFile, train);
      // the text follows the training text after a blank line, as documents are joined
      writeFileSync(bothFile, train + '\n\n' + text);
    }
    const out: Baseline[] = [];
    for (const c of compressors) {
      onProgress?.(c.name);
      try {
        const alone = figures(c.size(textFile, work));
        const given = trainFile && bothFile ? figures(c.size(bothFile, work) - c.size(trainFile, work)) : null;
        out.push({ name: c.name, command: c.command, alone, givenTraining: given });
      } catch (e) {
        out.push({ name: c.name, command: c.command, alone: null, givenTraining: null, error: (e as Error).message });
      }
    }
    return out;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The baselines as a text table, in the units of `itera score`. */
export function formatBaselines(rows: readonly Baseline[], model?: { name: string; bitsPerCharacter: number }): string {
  const f = (x: BaselineFigures | null) => (x ? x.bitsPerCharacter.toFixed(4) : '-');
  const g = (x: BaselineFigures | null) => (x ? x.bitsPerByte.toFixed(4) : '-');
  let s = 'baselines (bits per character / per byte; "given" = given the training text)\n';
  s += `  ${'compressor'.padEnd(12)} ${'alone'.padStart(9)} ${'given'.padStart(9)} ${'alone/B'.padStart(9)} ${'given/B'.padStart(9)}  command\n`;
  for (const r of rows) {
    s += `  ${r.name.padEnd(12)} ${f(r.alone).padStart(9)} ${f(r.givenTraining).padStart(9)} ${g(r.alone).padStart(9)} ${g(r.givenTraining).padStart(9)}  ${r.error ? `(${r.error})` : r.command}\n`;
  }
  if (model) s += `  ${model.name.padEnd(12)} ${model.bitsPerCharacter.toFixed(4).padStart(9)}  (the model)\n`;
  return s;
}
