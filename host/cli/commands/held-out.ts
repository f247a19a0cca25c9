// The Brown Corpus splits as one text each (documents joined by a blank line; see docs/data.md):
// the test split is the default held-out text of the quality commands.
import { existsSync, readFileSync } from 'node:fs';
import { loadBrown, type Split } from '../../data/brown.js';
import { documentsOf, loadCorpus } from '../../data/corpus.js';
import { IteraError } from '../../runtime/types.js';

export function brownText(split: Split): string {
  return loadBrown({ split })
    .map((d) => d.text)
    .join('\n\n');
}

export function heldOutText(): string {
  return brownText('test');
}

/** A quality command's text argument: a file, or brown-test (the held-out Brown test split). */
export function qualityText(arg: string, option: string): string {
  if (arg === 'brown-test') return heldOutText();
  if (!existsSync(arg)) throw new IteraError(`${option}: text file not found: ${arg}`, 'NO_FILE');
  return readFileSync(arg, 'utf8');
}

/** The training text the compressors are given (--train FILE|brown|brown+sotu), or undefined
 *  without one. */
export function baselineTrainingText(arg: string | undefined): string | undefined {
  if (arg === undefined) return undefined;
  if (arg === 'brown') return brownText('train');
  if (arg === 'brown+sotu')
    return documentsOf(loadCorpus(arg, process.cwd()), 'train')
      .map((d) => d.text)
      .join('\n\n');
  if (!existsSync(arg)) throw new IteraError(`training text not found: ${arg}`, 'NO_FILE');
  return readFileSync(arg, 'utf8');
}

/** Refuses a comparison with the compressors when a tokenizer does not give `text` back exactly:
 *  then the model's bits per character and a compressor's would not measure the same text. */
export function checkRoundTrip(decoded: string, text: string, who: string): void {
  if (decoded === text) return;
  throw new IteraError(
    `--baselines: ${who}'s tokenizer does not give the text back exactly (decode(encode(text)) differs), ` +
      "so its bits per character and a compressor's would not measure the same text; use a model with a " +
      'byte-level tokenizer (itera-bpe)',
    'BASELINE_UNFAIR',
  );
}
