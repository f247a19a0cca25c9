// Quality of one model against another on the same tokens: logit differences, top-1 agreement,
// perplexity and bits per character.

import type { IteraModel } from '../runtime/api.js';
import { IteraError } from '../runtime/types.js';

export interface ModelComparison {
  /** Against the first model (0 for the first itself). */
  maxAbsDiff: number;
  meanAbsDiff: number;
  top1Agreement: number;
  perplexity: number;
  bitsPerCharacter: number;
}

export interface ComparisonResult {
  tokens: number;
  characters: number;
  models: ModelComparison[];
}

function argmax(a: Float32Array, o: number, V: number): number {
  let b = 0;
  for (let v = 1; v < V; v++) if (a[o + v] > a[o + b]) b = v;
  return b;
}

/** Compares models on a text encoded by the first model's tokenizer, in non-overlapping windows
 *  of the context length (logits) and by each model's score() (perplexity). */
export function compareModels(
  models: IteraModel[],
  text: string,
  opts: { maxTokens?: number; onProgress?: (done: number) => void } = {},
): ComparisonResult {
  const ref = models[0];
  const V = ref.config.vocabSize;
  for (const m of models.slice(1)) {
    if (
      m.config.vocabSize !== V ||
      m.tokenizer.kind !== ref.tokenizer.kind ||
      m.tokenizer.size !== ref.tokenizer.size
    ) {
      throw new IteraError(
        'the models do not share a vocabulary: compare needs the same tokenizer and vocabulary size',
        'COMPARE_VOCAB',
      );
    }
  }
  let ids = ref.encode(text);
  if (opts.maxTokens !== undefined) ids = ids.slice(0, opts.maxTokens);
  if (ids.length < 2) throw new IteraError('the text is too short to compare on (fewer than 2 tokens)', 'TOO_SHORT');
  const chars = ref.decode(ids).length;
  const T = ref.config.maxSeqLength;
  const windows: number[][] = [];
  for (let i = 0; i < ids.length; i += T) windows.push(ids.slice(i, i + T));
  const refLogits = windows.map((w) => ref.logits(w));
  const out: ModelComparison[] = [];
  models.forEach((m, mi) => {
    let maxd = 0,
      sumd = 0,
      n = 0,
      agree = 0,
      pos = 0;
    windows.forEach((w, wi) => {
      const lg = mi === 0 ? refLogits[wi] : m.logits(w);
      const rl = refLogits[wi];
      for (let p = 0; p < w.length; p++) {
        const o = p * V;
        for (let v = 0; v < V; v++) {
          const d = Math.abs(lg[o + v] - rl[o + v]);
          if (d > maxd) maxd = d;
          sumd += d;
        }
        n += V;
        if (argmax(lg, o, V) === argmax(rl, o, V)) agree++;
        pos++;
      }
    });
    const s = m.score(ids);
    out.push({
      maxAbsDiff: maxd,
      meanAbsDiff: sumd / n,
      top1Agreement: agree / pos,
      perplexity: s.perplexity,
      bitsPerCharacter: s.nll / Math.LN2 / chars,
    });
    opts.onProgress?.(mi + 1);
  });
  return { tokens: ids.length, characters: chars, models: out };
}
