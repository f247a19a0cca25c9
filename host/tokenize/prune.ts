// Vocabulary pruning of a trained model: keep only the tokens a corpus uses (plus the specials),
// renumber them densely in their old order, and keep the matching rows of the embedding (and of
// an untied output head). Platform-neutral.
//
// Word / char tokenizers: a token is kept if encoding the corpus produces it. After pruning, a
// word the corpus never had encodes as <UNK>.
//
// Byte-level BPE: a token is kept if encoding the corpus produces it, or if it is a part (left or
// right side of the merge that makes it) of a kept token, recursively; a merge is kept exactly
// when the token it makes is kept. Then every merge the corpus's encoding applied is still there
// and every dropped merge was never applied, so the corpus encodes to the same tokens (renumbered).
// Merges whose sides are gone cannot survive: they could never fire again. Byte tokens are all
// kept by default (any text still encodes without <UNK>); with dropBytes, unused byte tokens go
// too and such bytes then encode as <UNK>.

import { IteraError, type IteraConfig } from '../runtime/types.js';
import { CharTokenizer, WordTokenizer, type Tokenizer } from '../runtime/tokenizer/index.js';
import { tensorAsF32, type IteraModelFile } from '../runtime/model-file.js';
import { type ModelTensor } from '../convert/state-dict.js';
import { GgmlType } from '../runtime/gguf.js';
import { BpeTokenizer, TOKEN_TYPE } from '../runtime/tokenizer/bpe.js';

export interface PrunedTokenizer {
  tokenizer: Tokenizer;
  /** Old id of each new id (ascending). */
  keep: number[];
}

/** Ids that encoding the texts produces. */
export function usedIds(tok: Tokenizer, texts: Iterable<string>): Set<number> {
  const used = new Set<number>();
  for (const t of texts) for (const id of tok.encode(t)) used.add(id);
  return used;
}

export function pruneTokenizer(
  tok: Tokenizer,
  used: ReadonlySet<number>,
  opts: { dropBytes?: boolean } = {},
): PrunedTokenizer {
  const specials = [tok.pad, tok.unk, tok.bos, tok.eos];
  const keepSet = new Set<number>(specials);
  if (tok instanceof BpeTokenizer) {
    const madeBy = new Map<number, readonly [number, number]>();
    tok.merges.forEach((pair, r) => madeBy.set(tok.mergeResult(r), pair));
    const stack: number[] = [];
    for (const id of used) if (id >= 0 && id < tok.size) stack.push(id);
    if (!opts.dropBytes)
      for (let id = 0; id < tok.size; id++) if (tok.tokenType(id) === TOKEN_TYPE.byte) stack.push(id);
    while (stack.length > 0) {
      const id = stack.pop()!;
      if (keepSet.has(id)) continue;
      keepSet.add(id);
      const parts = madeBy.get(id);
      if (parts) stack.push(parts[0], parts[1]);
    }
    const keep = [...keepSet].sort((a, b) => a - b);
    const newIndex = new Map(keep.map((old, i) => [old, i]));
    const tokens = keep.map((old) => tok.tokenText(old)!);
    const merges = tok.mergeStrings().filter((_, r) => keepSet.has(tok.mergeResult(r)));
    const sp = {
      pad: newIndex.get(tok.pad)!,
      unk: newIndex.get(tok.unk)!,
      bos: newIndex.get(tok.bos)!,
      eos: newIndex.get(tok.eos)!,
    };
    return { tokenizer: new BpeTokenizer(tokens, merges, sp, 'pruned BPE tokenizer'), keep };
  }
  if (tok instanceof WordTokenizer || tok instanceof CharTokenizer) {
    for (const id of used) if (tok.tokenText(id) !== undefined) keepSet.add(id);
    const keep = [...keepSet].sort((a, b) => a - b);
    const newIndex = new Map(keep.map((old, i) => [old, i]));
    const tokens = keep.map((old) => tok.tokenText(old)!);
    const sp = {
      pad: newIndex.get(tok.pad)!,
      unk: newIndex.get(tok.unk)!,
      bos: newIndex.get(tok.bos)!,
      eos: newIndex.get(tok.eos)!,
    };
    const t =
      tok instanceof WordTokenizer
        ? new WordTokenizer(tokens, sp, tok.lowercase, 'pruned word tokenizer')
        : new CharTokenizer(tokens, sp, tok.lowercase, 'pruned char tokenizer');
    return { tokenizer: t, keep };
  }
  throw new IteraError(
    `pruning a '${tok.kind}' tokenizer is not supported (itera-word, itera-char, itera-bpe are)`,
    'PRUNE_UNSUPPORTED',
  );
}

export interface PrunedModel {
  config: IteraConfig;
  tensors: ModelTensor[];
  tokenizer: Tokenizer;
  keep: number[];
  /** Rows of the embedding before and after. */
  rowsBefore: number;
  rowsAfter: number;
}

/** The model with only the rows of `keep` (old ids, ascending) in token_embd (and output). Every
 *  other tensor is copied as it is; F16 tensors stay F16. */
export function pruneModel(file: IteraModelFile, pruned: PrunedTokenizer): PrunedModel {
  const { keep } = pruned;
  const V = file.config.vocabSize;
  const d = file.config.hiddenSize;
  for (const id of keep)
    if (id < 0 || id >= V) throw new IteraError(`token ${id} has no row in the model (V=${V})`, 'PRUNE_BAD_ID');
  const tensors: ModelTensor[] = [];
  for (const [name, t] of file.tensors) {
    const src = tensorAsF32(t);
    const typeName = t.type === GgmlType.F16 ? 'F16' : 'F32';
    if (name === 'token_embd.weight' || name === 'output.weight') {
      const data = new Float32Array(keep.length * d);
      keep.forEach((old, i) => data.set(src.subarray(old * d, old * d + d), i * d));
      tensors.push({ name, shape: [keep.length, d], data, typeName });
    } else {
      tensors.push({ name, shape: t.shape.slice(), data: Float32Array.from(src), typeName });
    }
  }
  return {
    config: { ...file.config, vocabSize: keep.length },
    tensors,
    tokenizer: pruned.tokenizer,
    keep,
    rowsBefore: V,
    rowsAfter: keep.length,
  };
}
