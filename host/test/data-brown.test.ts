import t from 'tap';
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brownIndex, loadBrown, restoreBrownFile, restoreWords, splitOf, stripTag, SPLITS } from '../data/brown.js';
import { loadCorpus, splitDocuments, trainingTexts, documentsOf } from '../data/corpus.js';
import { expectIteraError, repoRoot } from './shared.js';

// Real lines of the corpus (ca01, ck01, ca02, cf01).
const LINE_CA01 =
  "\tThe/at Fulton/np-tl County/nn-tl Grand/jj-tl Jury/nn-tl said/vbd Friday/nr an/at investigation/nn of/in Atlanta's/np$ recent/jj primary/nn election/nn produced/vbd ``/`` no/at evidence/nn ''/'' that/cs any/dti irregularities/nns took/vbd place/nn ./.";
const LINE_QUOTES =
  "\t``/`` Only/rb a/at relative/jj handful/nn of/in such/jj reports/nns was/bedz received/vbn ''/'' ,/, the/at jury/nn said/vbd ,/, ``/`` considering/in the/at widespread/jj interest/nn in/in the/at election/nn ''/'' ./.";

t.test('tag stripping: the word is everything before the last slash', async (t) => {
  t.equal(stripTag("Atlanta's/np$"), "Atlanta's");
  t.equal(stripTag('County/nn-tl'), 'County');
  t.equal(stripTag("I'm/ppss+bem"), "I'm");
  t.equal(stripTag('1/2/cd'), '1/2', 'a word with a slash');
  t.equal(stripTag('and/or/cc'), 'and/or');
  t.equal(stripTag('//in'), '/', 'the word "/"');
  t.equal(stripTag('mg/l/hr/nns'), 'mg/l/hr');
  t.equal(stripTag('``/``'), '``');
  t.equal(stripTag('--/---hl'), '--', 'compound tag of a dash');
  t.equal(stripTag('untagged'), 'untagged');
  const words = LINE_CA01.trim().split(/\s+/).map(stripTag);
  t.same(words.slice(0, 9), ['The', 'Fulton', 'County', 'Grand', 'Jury', 'said', 'Friday', 'an', 'investigation']);
  t.notOk(
    words.some((w) => /\/(?:at|nn|np|jj)/.test(w)),
    'no tag left',
  );
});

t.test('text restoration: spacing and quotes', async (t) => {
  t.equal(
    restoreBrownFile(LINE_CA01),
    'The Fulton County Grand Jury said Friday an investigation of Atlanta\'s recent primary election produced "no evidence" that any irregularities took place.',
  );
  t.equal(
    restoreBrownFile(LINE_QUOTES),
    '"Only a relative handful of such reports was received", the jury said, "considering the widespread interest in the election".',
  );
  t.equal(
    restoreWords(['pitch', '3', '(', 'pretty', 'high', ')', 'on', 'emeralds', ';', ';']),
    'pitch 3 (pretty high) on emeralds;',
    "';/. ;/.' collapses",
  );
  t.equal(restoreWords(['Mr.', 'Allen', 'Jr.', '.']), 'Mr. Allen Jr.', "the '.' after 'Jr.' is dropped");
  t.equal(
    restoreWords(['getting', 'more', "'", 'pro', "'", 'letters']),
    "getting more 'pro' letters",
    'single quotes alternate open/close',
  );
  t.equal(restoreWords(['Do', "n't", 'go', '!', 'he', "'s", 'here', '?']), "Don't go! he's here?", 'clitics attach');
  t.equal(restoreWords(['a', '--', 'b', ':', 'c', '[', 'd', ']']), 'a -- b: c [d]');
  // paragraphs: groups of lines; sentences joined with a space; blank lines between paragraphs
  const file = `\n\n${LINE_CA01}\n\n\n\tHe/pps left/vbd ./.\nShe/pps stayed/vbd ./.\n\n`;
  t.equal(restoreBrownFile(file).split('\n\n').length, 2, 'two paragraphs');
  t.match(restoreBrownFile(file), /\n\nHe left\. She stayed\.$/);
});

t.test('the real corpus: splits are fixed, by file, every genre in each', async (t) => {
  const idx = brownIndex();
  t.equal(idx.length, 500, '500 files');
  const genres = new Set(idx.map((f) => f.genre));
  t.equal(genres.size, 15, '15 genres');
  for (const g of genres) {
    for (const s of SPLITS)
      t.ok(
        idx.some((f) => f.genre === g && f.split === s),
        `${g} has ${s} files`,
      );
  }
  const count = (s: string): number => idx.filter((f) => f.split === s).length;
  t.same([count('train'), count('validation'), count('test')], [395, 51, 54], 'split sizes');
  t.same(brownIndex(), idx, 'deterministic');
  // the documented rule on a known genre: news (ca01..ca44)
  const news = idx.filter((f) => f.genre === 'news');
  t.same(
    news.filter((f) => f.split === 'test').map((f) => f.id),
    ['ca01', 'ca11', 'ca21', 'ca31', 'ca41'],
  );
  t.same(
    news.filter((f) => f.split === 'validation').map((f) => f.id),
    ['ca06', 'ca16', 'ca26', 'ca36'],
  );
  t.same([0, 5, 9, 10, 15, 23].map(splitOf), ['test', 'validation', 'train', 'test', 'validation', 'train']);

  const test = loadBrown({ split: 'test' });
  t.equal(test.length, 54);
  for (const d of test) {
    t.notMatch(
      d.text,
      /\/(?:at|nn|nns|np|jj|in|vb[dgnz]?|cc|rb|pps|ppss)(?:-tl|-hl|\$)?(?:\s|$)/,
      `${d.id}: no tags left`,
    );
    t.notMatch(d.text, /``|(?:^|\s)''/, `${d.id}: quotes converted (4' 10'' for feet and inches stays)`);
    t.notMatch(d.text, / [,.;:!?)](?:\s|$)/, `${d.id}: no space before closing punctuation`);
    t.equal(d.text, d.text.trim(), `${d.id}: trimmed`);
  }
  t.match(test[0]!.text, /^The Fulton County Grand Jury said Friday/);
});

t.test('corpora by name and path; bad input', async (t) => {
  const root = repoRoot();
  const dir = mkdtempSync(join(tmpdir(), 'itera-corpus-'));
  expectIteraError(
    t,
    () => loadCorpus(join(dir, 'nope.txt'), root),
    'NO_CORPUS',
    /corpus not found: .*nope\.txt does not exist/,
    'missing path',
  );
  writeFileSync(join(dir, 'empty.txt'), '  \n\n \n');
  expectIteraError(t, () => loadCorpus(join(dir, 'empty.txt'), root), 'EMPTY_CORPUS', /is empty/, 'empty file');
  mkdirSync(join(dir, 'emptydir'));
  expectIteraError(
    t,
    () => loadCorpus(join(dir, 'emptydir'), root),
    'EMPTY_CORPUS',
    /no non-empty \.txt files/,
    'empty directory',
  );

  t.same(splitDocuments('a b\nc\n\n\nd\r\n\r\ne\n \n'), ['a b\nc', 'd', 'e']);
  const docs = Array.from({ length: 12 }, (_, i) => `document ${i}`).join('\n\n');
  writeFileSync(join(dir, 'docs.txt'), docs);
  const c = loadCorpus(join(dir, 'docs.txt'), root);
  t.same(
    c.documents.map((d) => d.split),
    ['test', 'train', 'train', 'train', 'train', 'validation', 'train', 'train', 'train', 'train', 'test', 'train'],
  );
  t.equal(trainingTexts(c).length, 9, 'tokenizers train on the train split');
  writeFileSync(join(dir, 'few.txt'), 'one\n\ntwo');
  const few = loadCorpus(join(dir, 'few.txt'), root);
  t.same(
    few.documents.map((d) => d.split),
    ['train', 'train'],
    'fewer than 10 documents: all train',
  );
  const bt = loadCorpus('brown-test', root);
  t.equal(bt.documents.length, 54);
  t.equal(trainingTexts(bt).length, 54, 'a single-split corpus is taken whole');
  t.equal(documentsOf(loadCorpus('brown', root), 'validation').length, 51);
});
