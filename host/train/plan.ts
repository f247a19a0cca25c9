// What `itera train` asks of train.py: model sizes, the flags that make them, and the checks on
// the user's text made before anything is trained. Node only.

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { IteraError } from '../runtime/types.js';

export interface ModelSize {
  /** hidden size d, layers L, experts E of width f (k per token) in moeLayers; N = 8, K = 4, e = 2. */
  d: number;
  layers: number;
  experts: number;
  expertSize: number;
  topK: number;
  moeLayers: number[];
  note: string;
}

/** Every size is position-free (the conv and the scan carry order; one step per token at any
 *  length): docs/training.md measured that as no worse than learned positions. */
export const SIZES: Record<string, ModelSize> = {
  tiny: { d: 32, layers: 2, experts: 2, expertSize: 16, topK: 1, moeLayers: [1], note: 'for tests and trials' },
  small: { d: 64, layers: 3, experts: 4, expertSize: 32, topK: 2, moeLayers: [1], note: 'the shipped student shape' },
  medium: { d: 96, layers: 3, experts: 4, expertSize: 64, topK: 2, moeLayers: [1], note: 'about 0.55M at V=2000' },
  large: { d: 128, layers: 4, experts: 4, expertSize: 64, topK: 2, moeLayers: [1, 3], note: 'the teacher shape' },
  xl: { d: 192, layers: 4, experts: 4, expertSize: 96, topK: 2, moeLayers: [1, 3], note: 'teacher-d192, 2.3M' },
};

/** train.py's model flags for a size. */
export function sizeFlags(s: ModelSize): string[] {
  return [
    '--no-pos-embedding',
    '--d',
    String(s.d),
    '--layers',
    String(s.layers),
    '--state',
    '8',
    '--kernel',
    '4',
    '--expand',
    '2',
    '--experts',
    String(s.experts),
    '--expert-size',
    String(s.expertSize),
    '--top-k',
    String(s.topK),
    '--moe-layers',
    s.moeLayers.join(','),
  ];
}

/** Throws a clear IteraError unless `bytes` are UTF-8 text with something in it. */
export function checkUtf8Text(bytes: Uint8Array, name: string): void {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    // find the first bad byte for the message
    let at = 0;
    for (let n = 64; at < bytes.length; at += n) {
      try {
        new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, Math.min(bytes.length, at + n + 4)));
      } catch {
        break;
      }
    }
    throw new IteraError(
      `${name} is not UTF-8 text (a byte near offset ${at} is not valid UTF-8); convert it first, ` +
        `e.g. iconv -f latin1 -t utf-8 ${name} > text.txt`,
      'NOT_UTF8',
    );
  }
  if (!/\S/.test(Buffer.from(bytes).toString('utf8')))
    throw new IteraError(`${name} is empty: it has no text to train on`, 'EMPTY_CORPUS');
}

/** Checks a text file, or every .txt of a directory, before loadCorpus reads them leniently. */
export function checkTextSource(path: string): void {
  if (!statSync(path).isDirectory()) {
    checkUtf8Text(readFileSync(path), path);
    return;
  }
  const files = readdirSync(path)
    .filter((f) => f.endsWith('.txt'))
    .sort();
  if (files.length === 0) throw new IteraError(`${path} has no .txt files to train on`, 'EMPTY_CORPUS');
  let any = false;
  for (const f of files) {
    const b = readFileSync(join(path, f));
    try {
      checkUtf8Text(b, join(path, f));
      any = true;
    } catch (e) {
      if ((e as IteraError).code !== 'EMPTY_CORPUS') throw e;
    }
  }
  if (!any) throw new IteraError(`${path}: every .txt file is empty; there is no text to train on`, 'EMPTY_CORPUS');
}

/** Reads 'step S/T ... eta H:MM:SS' back into seconds. */
export function etaSeconds(eta: string): number {
  const [h, m, s] = eta.split(':').map(Number);
  return (h ?? 0) * 3600 + (m ?? 0) * 60 + (s ?? 0);
}
