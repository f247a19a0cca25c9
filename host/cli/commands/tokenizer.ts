// itera tokenizer train | stats | encode: vocabulary optimization (docs/vocabulary.md,
// docs/tokenizers.md).

import { writeFileSync } from 'node:fs';
import type { Command } from '../command.js';
import { fmtInt, num, str, UsageError } from '../command.js';
import { packageRoot } from '../../node/index.js';
import { CORPUS_HELP, documentsOf, loadCorpus, trainingTexts } from '../../data/corpus.js';
import { SPLITS, type Split } from '../../data/brown.js';
import { trainWordTokenizer } from '../../tokenize/word-train.js';
import { trainBpe } from '../../tokenize/bpe-train.js';
import { readTokenizerFile } from '../../tokenize/files.js';
import { charUnigramBits, tokenizerStats } from '../../tokenize/stats.js';
import { BpeTokenizer } from '../../runtime/tokenizer/bpe.js';
import { Progress } from '../progress.js';

const help = `Usage: itera tokenizer train --kind word|bpe --vocab N [--corpus C] -o TOKENIZER.json
       itera tokenizer stats --tokenizer FILE [--corpus C] [--split S] [--json]
       itera tokenizer encode --tokenizer FILE --text TEXT

train   Learns a vocabulary of N tokens from a corpus's training split.
          word: the original's frequency word-level tokenizer (lowercase, whitespace split, the
                N-4 most frequent words plus <PAD> <UNK> <BOS> <EOS>; ties by code point order);
                written in the original's JSON format. N >= 5.
          bpe:  byte-level BPE (docs/tokenizers.md): 4 specials, 256 byte tokens, then N-260
                merges; exact round trip for any text, never <UNK>. N >= 260.
        Both are deterministic and accepted by 'itera convert --tokenizer' and scripts/train.
stats   Tokens per character, unknown-token rate, ids used and exact round trips on a corpus
        split (default: the held-out test split).
encode  Prints the ids and token texts of a text.

Options:
      --kind word|bpe    tokenizer kind (train)
      --vocab N          vocabulary size, specials included (train)
      --corpus C         ${CORPUS_HELP}
                         (default: brown; train uses its train split, stats its test split)
  -o, --output FILE      where to write the tokenizer JSON (train)
      --tokenizer FILE   a tokenizer JSON (stats, encode)
      --split S          train, validation or test (stats; default test, or the whole corpus
                         when it has a single split)
      --text TEXT        the text to encode (encode)
      --json             one JSON object on stdout (train, stats)
  -h, --help             this help

Examples:
  itera tokenizer train --kind bpe --vocab 2000 -o bpe2000.json
  itera tokenizer train --kind word --vocab 2000 --corpus brown -o word2000.json
  itera tokenizer stats --tokenizer bpe2000.json --corpus brown --split test`;

export const tokenizer: Command = {
  name: 'tokenizer',
  summary: 'train a word-level or byte-level BPE tokenizer on a corpus; measure one',
  help,
  options: {
    kind: { type: 'string' },
    vocab: { type: 'string' },
    corpus: { type: 'string' },
    output: { type: 'string', short: 'o' },
    tokenizer: { type: 'string' },
    split: { type: 'string' },
    text: { type: 'string' },
    json: { type: 'boolean' },
  },
  positionals: [1, 1],
  args: ['ACTION (train, stats or encode)'],
  async run(v, [sub], io) {
    if (sub === 'train') {
      const kind = str(v, 'kind');
      if (kind !== 'word' && kind !== 'bpe')
        throw new UsageError(`--kind must be word or bpe${kind === undefined ? '' : `, got '${kind}'`}`);
      const vocab = num(v, 'vocab', { int: true });
      if (vocab === undefined) throw new UsageError('--vocab N is required');
      const out = str(v, 'output');
      if (out === undefined) throw new UsageError('--output FILE is required');
      const corpus = loadCorpus(str(v, 'corpus') ?? 'brown', packageRoot());
      const texts = trainingTexts(corpus);
      const t0 = performance.now();
      let json: unknown;
      let summary: Record<string, unknown>;
      if (kind === 'word') {
        const r = trainWordTokenizer(texts, vocab);
        json = r.json;
        summary = {
          kind: 'word',
          vocab: r.tokenizer.size,
          requested: vocab,
          distinctWords: r.distinctWords,
          words: r.words,
          coverage: r.coverage,
        };
      } else {
        const bar = new Progress('merges', vocab - 260);
        const r = trainBpe(texts, vocab, (d) => bar.update(d));
        bar.done();
        json = r.tokenizer.toJson();
        summary = {
          kind: 'bpe',
          vocab: r.tokenizer.size,
          requested: vocab,
          merges: r.merges,
          distinctChunks: r.distinctChunks,
          chunks: r.chunks,
          stoppedEarly: r.stoppedEarly,
        };
      }
      writeFileSync(out, JSON.stringify(json) + '\n');
      summary = {
        ...summary,
        corpus: corpus.name,
        documents: texts.length,
        toy: corpus.toy,
        seconds: (performance.now() - t0) / 1000,
        output: out,
      };
      if (v.json) {
        io.out.write(JSON.stringify(summary) + '\n');
      } else {
        const s = summary as Record<string, number | string | boolean>;
        io.out.write(
          `corpus       ${corpus.description}, ${fmtInt(texts.length)} documents used\n` +
            (corpus.toy ? 'warning      this is the TOY corpus (synthetic template stories), not real text\n' : '') +
            `tokenizer    ${kind}, ${fmtInt(s.vocab as number)} tokens` +
            (s.vocab !== vocab
              ? ` (asked for ${fmtInt(vocab)}: the corpus has no more ${kind === 'word' ? 'distinct words' : 'repeated pairs'})`
              : '') +
            '\n' +
            (kind === 'word'
              ? `coverage     ${((s.coverage as number) * 100).toFixed(2)}% of ${fmtInt(s.words as number)} words (${fmtInt(s.distinctWords as number)} distinct)\n`
              : `merges       ${fmtInt(s.merges as number)} over ${fmtInt(s.distinctChunks as number)} distinct chunks (${fmtInt(s.chunks as number)} in all)\n`) +
            `time         ${(s.seconds as number).toFixed(1)} s\n` +
            `wrote        ${out}\n`,
        );
      }
      return 0;
    }
    if (sub === 'stats') {
      const path = str(v, 'tokenizer');
      if (path === undefined) throw new UsageError('--tokenizer FILE is required');
      const tok = readTokenizerFile(path);
      const corpus = loadCorpus(str(v, 'corpus') ?? 'brown', packageRoot());
      const splitArg = str(v, 'split');
      if (splitArg !== undefined && !SPLITS.includes(splitArg as Split))
        throw new UsageError(`--split must be train, validation or test, got '${splitArg}'`);
      const multi = SPLITS.filter((s) => documentsOf(corpus, s).length > 0).length > 1;
      const split = (splitArg as Split | undefined) ?? (multi ? 'test' : undefined);
      const docs = split ? documentsOf(corpus, split) : corpus.documents;
      if (docs.length === 0) throw new UsageError(`corpus ${corpus.name} has no ${split} documents`);
      const spell = tok.kind === 'itera-word' ? charUnigramBits(trainingTexts(corpus)) : undefined;
      const s = {
        corpus: corpus.name,
        split: split ?? 'all',
        ...tokenizerStats(
          tok,
          docs.map((d) => d.text),
          spell,
        ),
      };
      if (v.json) {
        io.out.write(JSON.stringify(s) + '\n');
      } else {
        io.out.write(
          `tokenizer            ${s.kind}, ${fmtInt(s.size)} tokens (${fmtInt(s.idsUsed)} used here)\n` +
            `text                 ${corpus.name} ${s.split}: ${fmtInt(s.documents)} documents, ${fmtInt(s.characters)} characters\n` +
            `tokens               ${fmtInt(s.tokens)} (${s.tokensPerCharacter.toFixed(4)} per character)\n` +
            `unknown tokens       ${fmtInt(s.unkTokens)} (${(s.unkRate * 100).toFixed(3)}%)\n` +
            `exact round trips    ${fmtInt(s.exactRoundTrips)} of ${fmtInt(s.documents)} documents\n`,
        );
      }
      return 0;
    }
    if (sub === 'encode') {
      const path = str(v, 'tokenizer');
      if (path === undefined) throw new UsageError('--tokenizer FILE is required');
      const text = str(v, 'text');
      if (text === undefined) throw new UsageError('--text TEXT is required');
      const tok = readTokenizerFile(path);
      const ids = tok.encode(text);
      const show = (id: number): string => {
        const t = tok.tokenText(id) ?? '?';
        if (!(tok instanceof BpeTokenizer)) return JSON.stringify(t);
        const b = tok.tokenBytes(id);
        try {
          return JSON.stringify(new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(b));
        } catch {
          return `bytes ${[...b].map((x) => x.toString(16).padStart(2, '0')).join(' ')} (part of a character)`;
        }
      };
      io.out.write(`${ids.length} tokens\n${ids.map((id) => `${String(id).padStart(6)}  ${show(id)}`).join('\n')}\n`);
      return 0;
    }
    throw new UsageError(`unknown subcommand '${sub}': use train, stats or encode`);
  },
};
