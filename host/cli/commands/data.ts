// itera data prepare | text: corpora for scripts/train (docs/data.md).

import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from '../command.js';
import { fmtInt, str, UsageError } from '../command.js';
import { packageRoot } from '../../node/index.js';
import { CORPUS_HELP, documentsOf, joinDocuments, loadCorpus, type Corpus } from '../../data/corpus.js';
import { SPLITS, type Split } from '../../data/brown.js';
import { readTokenizerFile } from '../../tokenize/files.js';
import type { Tokenizer } from '../../runtime/tokenizer/index.js';
import { IteraError } from '../../runtime/types.js';
import { Progress } from '../progress.js';

const help = `Usage: itera data prepare --tokenizer TOKENIZER.json [--corpus C] -o DIR
       itera data text [--corpus C] [--split S] -o FILE

prepare  Tokenizes a corpus into the directory scripts/train/train.py reads (docs/data.md):
           train.bin, val.bin, test.bin   token ids (little-endian uint16, or int32 above 65,536
                                          tokens), every document followed by <EOS>
           tokenizer.json                 a copy of the tokenizer
           meta.json                      dtype, vocab_size, eos_id, token/document counts, and
                                          per split: files, genres, characters, bytes, tokens
           train.txt, val.txt, test.txt   the text of each split (documents separated by a blank
                                          line): 'itera score --text DIR/test.txt' gives held-out
                                          bits per character
text     Writes the restored text of a corpus split.

Options:
      --tokenizer FILE   tokenizer JSON (word level or itera-bpe)
      --corpus C         ${CORPUS_HELP} (default: brown)
      --split S          train, validation or test (text; default test)
  -o, --output PATH      output directory (prepare) or file (text)
  -h, --help             this help

Example:
  itera tokenizer train --kind bpe --vocab 2000 -o bpe2000.json
  itera data prepare --tokenizer bpe2000.json --corpus brown -o corpus/
  /usr/bin/python3 scripts/train/train.py --data corpus/ --out runs/micro --preset micro`;

const FILES: Record<Split, { bin: string; txt: string; key: string }> = {
  train: { bin: 'train.bin', txt: 'train.txt', key: 'train' },
  validation: { bin: 'val.bin', txt: 'val.txt', key: 'val' },
  test: { bin: 'test.bin', txt: 'test.txt', key: 'test' },
};

export interface PreparedSplit {
  documents: number;
  tokens: number;
  characters: number;
  bytes: number;
  files: string[];
  genres: Record<string, number>;
}

/** Writes the corpus directory; returns meta.json's content. */
export function prepareCorpus(
  corpus: Corpus,
  tok: Tokenizer,
  tokenizerPath: string,
  dir: string,
): Record<string, unknown> {
  if (tok.size > 2 ** 31 - 1) throw new IteraError('tokenizer too large for int32 ids', 'VOCAB_TOO_LARGE');
  const dtype = tok.size <= 65536 ? 'uint16' : 'int32';
  mkdirSync(dir, { recursive: true });
  const splits: Record<string, PreparedSplit> = {};
  const enc = new TextEncoder();
  const bar = new Progress('tokenizing', corpus.documents.length);
  let done = 0;
  for (const split of SPLITS) {
    const docs = documentsOf(corpus, split);
    const ids: number[] = [];
    const genres: Record<string, number> = {};
    for (const d of docs) {
      for (const id of tok.encode(d.text)) ids.push(id);
      ids.push(tok.eos);
      if (d.genre) genres[d.genre] = (genres[d.genre] ?? 0) + 1;
      bar.update(++done);
    }
    const arr = dtype === 'uint16' ? new Uint16Array(ids) : new Int32Array(ids);
    // little-endian on disk
    const bytes = new Uint8Array(arr.length * arr.BYTES_PER_ELEMENT);
    const view = new DataView(bytes.buffer);
    arr.forEach((x, i) => (dtype === 'uint16' ? view.setUint16(i * 2, x, true) : view.setInt32(i * 4, x, true)));
    writeFileSync(join(dir, FILES[split].bin), bytes);
    const text = joinDocuments(docs);
    writeFileSync(join(dir, FILES[split].txt), text);
    splits[split] = {
      documents: docs.length,
      tokens: ids.length,
      characters: text.length,
      bytes: enc.encode(text).length,
      files: docs.map((d) => d.id),
      genres,
    };
  }
  bar.done();
  copyFileSync(tokenizerPath, join(dir, 'tokenizer.json'));
  const meta: Record<string, unknown> = {
    dtype,
    vocab_size: tok.size,
    eos_id: tok.eos,
    train_tokens: splits.train!.tokens,
    val_tokens: splits.validation!.tokens,
    test_tokens: splits.test!.tokens,
    train_documents: splits.train!.documents,
    val_documents: splits.validation!.documents,
    test_documents: splits.test!.documents,
    tokenizer_kind: tok.kind,
    corpus: corpus.name,
    corpus_description: corpus.description,
    toy: corpus.toy,
    split_rule:
      'Brown: within each genre, files sorted by id, index % 10 == 0 -> test, == 5 -> validation, else train; other corpora: the same rule on document order (fewer than 10 documents: all train)',
    characters_note:
      "characters = length of the split's .txt file (UTF-16 code units, documents joined by a blank line), as 'itera score' counts them; tokens include one <EOS> per document",
    splits,
  };
  writeFileSync(join(dir, 'meta.json'), JSON.stringify(meta, null, 1) + '\n');
  return meta;
}

export const data: Command = {
  name: 'data',
  summary: 'tokenize a corpus (Brown by default) into train/val/test files for training',
  help,
  options: {
    tokenizer: { type: 'string' },
    corpus: { type: 'string' },
    split: { type: 'string' },
    output: { type: 'string', short: 'o' },
  },
  positionals: [1, 1],
  args: ['ACTION (prepare or text)'],
  async run(v, [sub], io) {
    const out = str(v, 'output');
    if (sub === 'prepare') {
      const tokPath = str(v, 'tokenizer');
      if (tokPath === undefined)
        throw new UsageError('--tokenizer FILE is required (make one with itera tokenizer train)');
      if (out === undefined) throw new UsageError('--output DIR is required');
      const tok = readTokenizerFile(tokPath);
      const corpus = loadCorpus(str(v, 'corpus') ?? 'brown', packageRoot());
      const t0 = performance.now();
      const meta = prepareCorpus(corpus, tok, tokPath, out);
      const splits = meta.splits as Record<Split, PreparedSplit>;
      io.out.write(
        `corpus      ${corpus.description}\n` +
          (corpus.toy ? 'warning     this is the TOY corpus (synthetic template stories), not real text\n' : '') +
          `tokenizer   ${tok.kind}, ${fmtInt(tok.size)} tokens, ids stored as ${String(meta.dtype)}\n` +
          SPLITS.map(
            (s) =>
              `${s.padEnd(11)} ${fmtInt(splits[s].documents).padStart(5)} documents  ${fmtInt(splits[s].characters).padStart(10)} characters  ${fmtInt(splits[s].tokens).padStart(10)} tokens`,
          ).join('\n') +
          '\n' +
          `time        ${((performance.now() - t0) / 1000).toFixed(1)} s\n` +
          `wrote       ${out}/ (train.bin val.bin test.bin tokenizer.json meta.json train.txt val.txt test.txt)\n`,
      );
      return 0;
    }
    if (sub === 'text') {
      if (out === undefined) throw new UsageError('--output FILE is required');
      const corpus = loadCorpus(str(v, 'corpus') ?? 'brown', packageRoot());
      const split = (str(v, 'split') ?? 'test') as Split;
      if (!SPLITS.includes(split)) throw new UsageError(`--split must be train, validation or test, got '${split}'`);
      const docs = documentsOf(corpus, split);
      if (docs.length === 0) throw new UsageError(`corpus ${corpus.name} has no ${split} documents`);
      const text = joinDocuments(docs);
      writeFileSync(out, text);
      io.out.write(
        `wrote ${out}: ${corpus.name} ${split}, ${fmtInt(docs.length)} documents, ${fmtInt(text.length)} characters\n`,
      );
      return 0;
    }
    throw new UsageError(`unknown subcommand '${sub}': use prepare or text`);
  },
};
