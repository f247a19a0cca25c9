// The Brown Corpus splits as one text each (documents joined by a blank line; see docs/data.md):
// the test split is the default held-out text of the quality commands.
import { loadBrown, type Split } from '../../data/brown.js';

export function brownText(split: Split): string {
  return loadBrown({ split })
    .map((d) => d.text)
    .join('\n\n');
}

export function heldOutText(): string {
  return brownText('test');
}
