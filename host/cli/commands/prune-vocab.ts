// itera prune-vocab: drop the embedding/output rows of tokens a corpus never uses.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { Command } from '../command.js';
import { fmtBytes, fmtInt, str, UsageError } from '../command.js';
import { loadModel, packageRoot } from '../../node/index.js';
import { buildFrom } from './model-option.js';
import { CORPUS_HELP, joinDocuments, loadCorpus, trainingTexts, documentsOf } from '../../data/corpus.js';
import { readModelFile } from '../../runtime/model-file.js';
import { writeModelFile } from '../../convert/model-write.js';
import { pruneModel, pruneTokenizer, usedIds } from '../../tokenize/prune.js';
import { IteraError } from '../../runtime/types.js';
import type { IteraModel } from '../../runtime/api.js';
import { Progress } from '../progress.js';
import { charUnigramBits } from '../../tokenize/stats.js';
import { pythonSplit } from '../../runtime/tokenizer/index.js';

const help = `Usage: itera prune-vocab --model MODEL.gguf --corpus C -o PRUNED.gguf [options]

Keeps only the tokens that encoding the corpus produces (plus <PAD> <UNK> <BOS> <EOS>), renumbers
them densely in their old order, keeps their rows of the embedding (and of an untied output head)
and writes the smaller model with the remapped tokenizer. Every other tensor is unchanged, so the
logits of kept tokens are exactly the old ones (the softmax only loses the dropped tokens).

  word / char tokenizers: after pruning, a dropped word encodes as <UNK>.
  itera-bpe: tokens that are parts of kept tokens stay too (their merges are needed), and a merge
    stays exactly when the token it makes stays, so the corpus encodes to the same tokens; all 256
    byte tokens stay unless --drop-bytes, so any text still encodes without <UNK>.

Then it scores a held-out text with both models (perplexity per token and bits per character;
for a word tokenizer also bits per character with every <UNK> word spelled out by a character
unigram model of the held-out text, since predicting <UNK> is cheaper than predicting the word).

Options:
  -m, --model FILE       the model file (.gguf)
      --corpus C         the text whose tokens to keep: ${CORPUS_HELP};
                         for 'brown' its train split (use brown-train / brown-test to be explicit)
  -o, --output FILE      the pruned model file
      --eval C           held-out text to score before and after: a corpus as above, whose
                         test split is used when it has one (default: brown-test); 'none' skips
      --eval-chars N     score only the first N characters of it (default: all)
      --drop-bytes       itera-bpe: drop unused byte tokens too (such bytes become <UNK>)
      --json             one JSON object on stdout
      --build B          WebAssembly build for scoring: auto, simd, scalar
  -h, --help             this help

Example:
  itera prune-vocab --model bpe2000.gguf --corpus brown-train -o bpe2000-pruned.gguf`;

export const pruneVocab: Command = {
  name: 'prune-vocab',
  summary: 'drop the rows of tokens a corpus never uses; remap the tokenizer',
  help,
  options: {
    model: { type: 'string', short: 'm' },
    corpus: { type: 'string' },
    output: { type: 'string', short: 'o' },
    eval: { type: 'string' },
    'eval-chars': { type: 'string' },
    'drop-bytes': { type: 'boolean' },
    json: { type: 'boolean' },
    build: { type: 'string' },
  },
  async run(v, _p, io) {
    const modelPath = str(v, 'model');
    if (modelPath === undefined) throw new UsageError('--model FILE is required');
    const corpusSpec = str(v, 'corpus');
    if (corpusSpec === undefined)
      throw new UsageError('--corpus C is required (the text whose tokens to keep, e.g. brown-train)');
    const out = str(v, 'output');
    if (out === undefined) throw new UsageError('--output FILE is required');
    const evalChars = str(v, 'eval-chars') === undefined ? undefined : Number(str(v, 'eval-chars'));
    if (evalChars !== undefined && (!Number.isInteger(evalChars) || evalChars < 2))
      throw new UsageError('--eval-chars must be a whole number >= 2');
    const build = buildFrom(v);
    if (!existsSync(modelPath)) throw new IteraError(`model file not found: ${modelPath}`, 'NO_FILE');
    const root = packageRoot();
    const corpus = loadCorpus(corpusSpec, root);
    const texts = trainingTexts(corpus);
    const evalSpec = str(v, 'eval') ?? 'brown-test';
    let evalText: string | null = null;
    if (evalSpec !== 'none') {
      const ec = loadCorpus(evalSpec, root);
      const test = documentsOf(ec, 'test');
      evalText = joinDocuments(test.length > 0 && ec.documents.some((d) => d.split !== 'test') ? test : ec.documents);
      if (evalChars !== undefined) evalText = evalText.slice(0, evalChars);
    }

    const bytes = readFileSync(modelPath);
    const file = readModelFile(bytes);
    const t0 = performance.now();
    const used = usedIds(file.tokenizer, texts);
    const pruned = pruneTokenizer(file.tokenizer, used, { dropBytes: Boolean(v['drop-bytes']) });
    const m = pruneModel(file, pruned);
    const outBytes = writeModelFile({ config: m.config, tensors: m.tensors, tokenizer: m.tokenizer, name: file.name });
    writeFileSync(out, outBytes);
    const pruneSeconds = (performance.now() - t0) / 1000;

    let spell: ((w: string) => number) | undefined;
    const score = async (b: Uint8Array, label: string): Promise<Record<string, number> | null> => {
      if (evalText === null) return null;
      let model: IteraModel | null = null;
      try {
        model = await loadModel(b, { build });
        const ids = model.encode(evalText);
        const bar = new Progress(`scoring ${label}`, ids.length);
        const r = model.score(ids, { onProgress: (d) => bar.update(d) });
        bar.done();
        const unk = ids.filter((id) => id === model!.tokenizer.unk).length;
        const res: Record<string, number> = {
          tokens: r.tokens,
          unkTokens: unk,
          perplexity: r.perplexity,
          bitsPerToken: r.bitsPerToken,
          bitsPerCharacter: r.nll / Math.LN2 / evalText.length,
        };
        if (model.tokenizer.kind === 'itera-word') {
          // what <UNK> hides: the bits to spell each unknown word (docs/vocabulary.md)
          spell ??= charUnigramBits([evalText]);
          const words = pythonSplit(evalText.toLowerCase());
          let extra = 0;
          ids.forEach((id, i) => {
            if (id === model!.tokenizer.unk) extra += spell!(words[i]!);
          });
          res.bitsPerCharacterWithUnkSpelling = res.bitsPerCharacter! + extra / evalText.length;
        }
        return res;
      } finally {
        model?.dispose();
      }
    };
    const before = await score(bytes, 'before');
    const after = await score(outBytes, 'after');
    const d = file.config.hiddenSize;
    const rowTensors = file.tiedEmbeddings ? 1 : 2;
    const res = {
      model: modelPath,
      output: out,
      tokenizer: file.tokenizer.kind,
      corpus: corpus.name,
      rowsBefore: m.rowsBefore,
      rowsAfter: m.rowsAfter,
      rowsDropped: m.rowsBefore - m.rowsAfter,
      usedByCorpus: used.size,
      parametersDropped: (m.rowsBefore - m.rowsAfter) * d * rowTensors,
      bytesBefore: bytes.byteLength,
      bytesAfter: outBytes.byteLength,
      bytesSaved: bytes.byteLength - outBytes.byteLength,
      eval: evalText === null ? null : { corpus: evalSpec, characters: evalText.length, before, after },
      seconds: pruneSeconds,
    };
    if (v.json) {
      io.out.write(JSON.stringify(res) + '\n');
      return 0;
    }
    const pct = (a: number, b: number): string => `${((a / b) * 100).toFixed(1)}%`;
    const lines = [
      `model        ${modelPath} (${file.tokenizer.kind}, V=${fmtInt(m.rowsBefore)}, d=${d}${file.tiedEmbeddings ? ', tied head' : ''})`,
      `corpus       ${corpus.description}: ${fmtInt(used.size)} distinct tokens used`,
      `rows         ${fmtInt(m.rowsBefore)} -> ${fmtInt(m.rowsAfter)} (${fmtInt(res.rowsDropped)} dropped, ${pct(res.rowsDropped, m.rowsBefore)})`,
      `parameters   ${fmtInt(res.parametersDropped)} fewer`,
      `file         ${fmtBytes(res.bytesBefore)} -> ${fmtBytes(res.bytesAfter)} (${fmtBytes(res.bytesSaved)} saved, ${pct(res.bytesSaved, res.bytesBefore)})`,
    ];
    if (before && after && res.eval) {
      lines.push(
        `held-out     ${evalSpec}, ${fmtInt(res.eval.characters)} characters`,
        ...(
          [
            ['before', before],
            ['after ', after],
          ] as const
        ).map(
          ([l, r]) =>
            `  ${l}     ${fmtInt(r.tokens!)} tokens (${fmtInt(r.unkTokens!)} <UNK>)  perplexity ${r.perplexity!.toFixed(3)}  bits/char ${r.bitsPerCharacter!.toFixed(4)}` +
            (r.bitsPerCharacterWithUnkSpelling !== undefined
              ? `  (${r.bitsPerCharacterWithUnkSpelling.toFixed(4)} with <UNK> words spelled out)`
              : ''),
        ),
      );
      if (file.tokenizer.kind === 'itera-word' && after.unkTokens! > before.unkTokens!) {
        lines.push(
          '  note       words dropped by pruning now encode as <UNK>: predicting <UNK> is easier than the word, so a lower perplexity here is not a better model',
        );
      }
    }
    lines.push(`wrote        ${out}`);
    io.out.write(lines.join('\n') + '\n');
    return 0;
  },
};
