// The default held-out text of the quality commands: the Brown Corpus test split (see docs/data.md).
import { loadBrown } from '../../data/brown.js';

export function heldOutText(): string {
  return loadBrown({ split: 'test' })
    .map((d) => d.text)
    .join('\n\n');
}
