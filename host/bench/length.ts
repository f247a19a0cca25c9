// Past the context (issue 15, goal 4): does a model stay as good and as fast beyond its training
// context T? Quality: bits per character of the tokens at positions [T, 4T) of each document,
// against those at [T/2, T), every document read from its start. Speed: one greedy generation of
// 10,000 tokens, one call per token, the tokens/s of tokens 9,901-10,000 against tokens 1-100.
// Models with learned positions go past T in the runtime's exact mode (the last T tokens
// recomputed per token); position-free ones take one step per token. Platform-neutral.

import type { IteraModel } from '../runtime/api.js';
import { tokenNll } from '../runtime/api.js';
import type { LengthResult } from './schema.js';
import { itera } from './engines.js';
import { stat } from './runner.js';

export const LENGTH_GOALS = {
  quality: 'bits per character over [T, 4T) at most that over [T/2, T) + 0.01',
  speed: 'tokens 9,901-10,000 at least 90% of the speed of tokens 1-100',
} as const;

/** Per-position negative log-likelihoods (nats) of one document's first n tokens; entry p is the
 *  cost of token p given tokens 0..p-1 (entry 0 is NaN: nothing predicts the first token). */
export function positionNll(model: IteraModel, ids: readonly number[]): Float64Array {
  const V = model.config.vocabSize;
  const lg = model.logits(ids, { window: 'exact' });
  const out = new Float64Array(ids.length);
  out[0] = NaN;
  for (let p = 1; p < ids.length; p++) out[p] = tokenNll(lg.subarray((p - 1) * V, p * V), ids[p]!);
  return out;
}

/** Bits per character over [T/2, T) and [T, 4T) of every document with at least 4T tokens (at
 *  most maxDocuments of them, in order). Characters of a range = the length of the decoded text
 *  up to its end minus up to its start. */
export function lengthQuality(
  model: IteraModel,
  documents: readonly string[],
  textName: string,
  maxDocuments = Infinity,
  onProgress?: (done: number, total: number) => void,
): LengthResult['quality'] {
  const T = model.config.maxSeqLength;
  const ranges = [
    { from: Math.floor(T / 2), to: T, nll: 0, chars: 0, tokens: 0 },
    { from: T, to: 4 * T, nll: 0, chars: 0, tokens: 0 },
  ];
  const long = documents
    .map((d) => model.encode(d))
    .filter((ids) => ids.length >= 4 * T)
    .slice(0, maxDocuments);
  if (long.length === 0) return null;
  // The control: the far positions again, each half-window [k, k + T/2) read from a fresh start
  // T/2 tokens before it, so that every token has T/2 to T tokens of context, as in the near
  // range. far - control is what reading past T does to the model; control - near is how much
  // harder the later text is, whatever the model.
  const half = Math.floor(T / 2);
  let controlNll = 0;
  long.forEach((all, i) => {
    const ids = all.slice(0, 4 * T);
    const nll = positionNll(model, ids);
    const charsTo = (n: number): number => model.decode(ids.slice(0, n)).length;
    for (const r of ranges) {
      for (let p = r.from; p < r.to; p++) r.nll += nll[p]!;
      r.tokens += r.to - r.from;
      r.chars += charsTo(r.to) - charsTo(r.from);
    }
    for (let k = T; k < 4 * T; k += half) {
      const seg = positionNll(model, ids.slice(k - half, Math.min(4 * T, k + half)));
      for (let p = half; p < seg.length; p++) controlNll += seg[p]!;
    }
    onProgress?.(i + 1, long.length);
  });
  const [near, far] = ranges.map((r) => ({
    from: r.from,
    to: r.to,
    tokens: r.tokens,
    characters: r.chars,
    bitsPerCharacter: r.nll / Math.LN2 / Math.max(1, r.chars),
  }));
  const difference = far!.bitsPerCharacter - near!.bitsPerCharacter;
  const control = controlNll / Math.LN2 / Math.max(1, far!.characters);
  return {
    text: textName,
    documents: long.length,
    near: near!,
    far: far!,
    difference,
    farShortContext: {
      bitsPerCharacter: control,
      lengthEffect: far!.bitsPerCharacter - control,
      textEffect: control - near!.bitsPerCharacter,
    },
    goal: LENGTH_GOALS.quality,
    met: difference <= 0.01,
  };
}

/** Greedy decode of `tokens` tokens after a one-token prompt, `runs` times; tokens/s of the first
 *  100 and of the last 100. */
export async function lengthSpeed(model: IteraModel, runs: number, tokens = 10_000): Promise<LengthResult['speed']> {
  const e = itera(model);
  const early: number[] = [];
  const late: number[] = [];
  const ratio: number[] = [];
  const rate = (ms: readonly number[]): number => ms.length / (ms.reduce((a, b) => a + b, 0) / 1000);
  try {
    for (let r = 0; r < runs; r++) {
      const d = await e.decode([Math.min(4, model.config.vocabSize - 1)], tokens);
      const a = rate(d.perTokenMs.slice(0, 100));
      const b = rate(d.perTokenMs.slice(tokens - 100));
      early.push(a);
      late.push(b);
      ratio.push(b / a);
    }
  } finally {
    await e.dispose();
  }
  const ratioStat = stat(ratio);
  return {
    tokens,
    early: { from: 1, to: 100, tokensPerSecond: stat(early) },
    late: { from: tokens - 99, to: tokens, tokensPerSecond: stat(late) },
    ratio: ratioStat,
    goal: LENGTH_GOALS.speed,
    met: ratioStat.median >= 0.9,
  };
}

export async function measureLength(
  model: IteraModel,
  documents: readonly string[],
  textName: string,
  o: { runs: number; maxDocuments?: number; tokens?: number; onProgress?: (label: string) => void },
): Promise<LengthResult> {
  o.onProgress?.('length: quality by position');
  const quality = lengthQuality(model, documents, textName, o.maxDocuments);
  o.onProgress?.('length: decode speed');
  const speed = await lengthSpeed(model, o.runs, o.tokens);
  return {
    context: model.config.maxSeqLength,
    positionEmbedding: model.config.positionEmbedding !== false,
    quality,
    speed,
  };
}
