// Training the byte-level BPE tokenizer (host/runtime/tokenizer/bpe.ts) on a corpus. Deterministic: the
// same documents give the same tokenizer, whatever the order of Map iteration.
//
// 1. Every document is pre-tokenized exactly as encoding does (pretokenize()); identical chunks
//    are counted once with their frequency. Merges never cross a chunk boundary.
// 2. The vocabulary starts as <PAD> <UNK> <BOS> <EOS> (ids 0..3) and one token per byte value
//    (id 4 + byte, all 256, so no text ever needs <UNK>).
// 3. Repeatedly, the adjacent pair with the highest count (occurrences in all chunks, weighted by
//    chunk frequency; every adjacent position counts, overlapping ones too) becomes a new token
//    with the next id; ties go to the pair with the smaller left id, then the smaller right id.
//    Its occurrences are replaced left to right. A pair whose merged text would equal a special's
//    name is never merged. Training stops at the requested size, or earlier when no pair occurs
//    at least twice.

import { IteraError } from '../runtime/types.js';
import { BpeTokenizer, BPE_SPECIAL_NAMES, byteChar, pretokenize } from '../runtime/tokenizer/bpe.js';

export const BPE_BASE_SIZE = 4 + 256;

export interface BpeTrainResult {
  tokenizer: BpeTokenizer;
  /** Distinct chunks seen, and chunks in all. */
  distinctChunks: number;
  chunks: number;
  /** Merges learned (size - 260); fewer than asked when the corpus ran out of repeated pairs. */
  merges: number;
  stoppedEarly: boolean;
}

const KEY = 16777216; // pair key = left * KEY + right

/** A max-heap of (count, key) with ties to the smaller key; entries go stale and are checked on pop. */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];
  get length(): number {
    return this.counts.length;
  }
  private above(c1: number, k1: number, c2: number, k2: number): boolean {
    return c1 > c2 || (c1 === c2 && k1 < k2);
  }
  push(count: number, key: number): void {
    const cs = this.counts;
    const ks = this.keys;
    let i = cs.length;
    cs.push(count);
    ks.push(key);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.above(count, key, cs[p]!, ks[p]!)) break;
      cs[i] = cs[p]!;
      ks[i] = ks[p]!;
      i = p;
    }
    cs[i] = count;
    ks[i] = key;
  }
  pop(): [number, number] {
    const cs = this.counts;
    const ks = this.keys;
    const top: [number, number] = [cs[0]!, ks[0]!];
    const c = cs.pop()!;
    const k = ks.pop()!;
    const n = cs.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const m = r < n && this.above(cs[r]!, ks[r]!, cs[l]!, ks[l]!) ? r : l;
        if (!this.above(cs[m]!, ks[m]!, c, k)) break;
        cs[i] = cs[m]!;
        ks[i] = ks[m]!;
        i = m;
      }
      cs[i] = c;
      ks[i] = k;
    }
    return top;
  }
}

/** Trains a byte-level BPE tokenizer of `vocabSize` tokens (at least 260: 4 specials + 256 bytes). */
export function trainBpe(
  documents: Iterable<string>,
  vocabSize: number,
  onProgress?: (merges: number, total: number) => void,
): BpeTrainResult {
  if (!Number.isInteger(vocabSize) || vocabSize < BPE_BASE_SIZE) {
    throw new IteraError(
      `vocabulary size ${String(vocabSize)} is too small for byte-level BPE: the 4 special tokens and the 256 byte tokens need ${BPE_BASE_SIZE} ids; give --vocab ${BPE_BASE_SIZE} or more`,
      'VOCAB_TOO_SMALL',
    );
  }
  if (vocabSize > 1 << 24)
    throw new IteraError(`vocabulary size ${vocabSize} is too large (at most ${1 << 24})`, 'VOCAB_TOO_LARGE');
  const enc = new TextEncoder();
  const chunkCount = new Map<string, number>();
  let chunks = 0;
  for (const doc of documents) {
    const b = enc.encode(doc);
    const bounds = pretokenize(b);
    for (let c = 0; c < bounds.length; c += 2) {
      let key = '';
      for (let i = bounds[c]!; i < bounds[c + 1]!; i++) key += String.fromCharCode(b[i]!);
      chunkCount.set(key, (chunkCount.get(key) ?? 0) + 1);
      chunks++;
    }
  }
  if (chunks === 0) throw new IteraError('the corpus has no text to train a tokenizer on', 'EMPTY_CORPUS');

  // words: symbol id arrays with frequencies, in a fixed order (sorted chunk text)
  const keys = [...chunkCount.keys()].sort();
  const words: number[][] = keys.map((k) => Array.from(k, (ch) => 4 + ch.charCodeAt(0)));
  const freq: number[] = keys.map((k) => chunkCount.get(k)!);

  const tokens: string[] = [...BPE_SPECIAL_NAMES];
  for (let b = 0; b < 256; b++) tokens.push(byteChar(b));
  const forbidden = new Set<string>(BPE_SPECIAL_NAMES);
  const mergeStrings: string[] = [];

  const pairCount = new Map<number, number>();
  const pairWords = new Map<number, number[]>();
  const heap = new PairHeap();
  const addPairs = (w: number, sign: number, touched: Set<number>): void => {
    const s = words[w]!;
    const f = freq[w]! * sign;
    for (let i = 0; i + 1 < s.length; i++) {
      const key = s[i]! * KEY + s[i + 1]!;
      pairCount.set(key, (pairCount.get(key) ?? 0) + f);
      touched.add(key);
      if (sign > 0) {
        let list = pairWords.get(key);
        if (!list) pairWords.set(key, (list = []));
        if (list[list.length - 1] !== w) list.push(w);
      }
    }
  };
  const initial = new Set<number>();
  for (let w = 0; w < words.length; w++) addPairs(w, 1, initial);
  for (const key of initial) heap.push(pairCount.get(key)!, key);

  const target = vocabSize - BPE_BASE_SIZE;
  let stoppedEarly = false;
  while (mergeStrings.length < target) {
    let best = -1;
    while (heap.length > 0) {
      const [c, key] = heap.pop();
      if (pairCount.get(key) !== c) continue; // stale
      const l = Math.floor(key / KEY);
      const r = key - l * KEY;
      if (forbidden.has(tokens[l]! + tokens[r]!)) continue;
      if (c < 2) break;
      best = key;
      break;
    }
    if (best < 0) {
      stoppedEarly = true;
      break;
    }
    const l = Math.floor(best / KEY);
    const r = best - l * KEY;
    const id = tokens.length;
    tokens.push(tokens[l]! + tokens[r]!);
    mergeStrings.push(`${tokens[l]} ${tokens[r]}`);
    const touched = new Set<number>();
    const list = pairWords.get(best) ?? [];
    pairWords.delete(best);
    for (const w of list) {
      const s = words[w]!;
      let has = false;
      for (let i = 0; i + 1 < s.length; i++)
        if (s[i] === l && s[i + 1] === r) {
          has = true;
          break;
        }
      if (!has) continue;
      addPairs(w, -1, touched);
      const out: number[] = [];
      for (let i = 0; i < s.length; i++) {
        if (i + 1 < s.length && s[i] === l && s[i + 1] === r) {
          out.push(id);
          i++;
        } else {
          out.push(s[i]!);
        }
      }
      words[w] = out;
      addPairs(w, 1, touched);
    }
    for (const key of touched) {
      const c = pairCount.get(key)!;
      if (c <= 0) pairCount.delete(key);
      else if (key !== best) heap.push(c, key);
    }
    pairCount.delete(best);
    if (onProgress && (mergeStrings.length % 100 === 0 || mergeStrings.length === target))
      onProgress(mergeStrings.length, target);
  }
  const tokenizer = new BpeTokenizer(tokens, mergeStrings, { pad: 0, unk: 1, bos: 2, eos: 3 }, 'trained BPE tokenizer');
  return { tokenizer, distinctChunks: keys.length, chunks, merges: mergeStrings.length, stoppedEarly };
}
