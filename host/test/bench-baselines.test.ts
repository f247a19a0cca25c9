// itera bench --baselines: the --eval text's bits per character under each model and under the
// real compressors (xz, zstd, bzip2, 7-Zip PPMd) land in the bench document, and itera report puts
// them side by side. Needs the Debian packages .ci/run installs (skipped without them off CI).
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { main } from '../cli/itera.js';
import { compressorBaselines } from '../bench/compressors.js';
import { validateBenchDocument, type BenchDocument } from '../bench/schema.js';
import { buildReport } from '../report/report.js';
import { captureIo, tinyModelFile } from './helpers.js';
import { repoRoot } from './shared.js';

const have = (p: string) => spawnSync(p, ['--help'], { stdio: 'ignore' }).error === undefined;
const missing = ['xz', 'zstd', 'bzip2', '7z'].filter((p) => !have(p));
const model = join(repoRoot(), 'models', 'tiny-q4_0.gguf');

const sentences = Array.from(
  { length: 300 },
  (_, i) =>
    `The ${['jury', 'court', 'city'][i % 3]} said on day ${(i * 37) % 101} that it was ${['fine', 'late'][i % 2]}.`,
);
const train = sentences.join(' ');
const text = sentences.slice(50, 90).join(' ') + '\n\nA last line that the training text never had.\n';

t.test(
  'the figures reach the document, the table and the report',
  { skip: missing.length && !process.env.CI ? `not installed: ${missing.join(', ')}` : false },
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'itera-bench-baselines-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'eval.txt'), text);
    writeFileSync(join(dir, 'train.txt'), train);
    const out = join(dir, 'bench.json');
    const c = captureIo();
    const args = ['bench', '--model', model, '--runs', '1', '--peers', 'none', '--reference', 'none'];
    const code = await main(
      [...args, '--eval', join(dir, 'eval.txt'), '--baselines', '--train', join(dir, 'train.txt'), '--json', out],
      c.io,
    );
    t.equal(code, 0, c.err());
    const doc = JSON.parse(readFileSync(out, 'utf8')) as BenchDocument;
    t.same(validateBenchDocument(doc), []);
    const b = doc.baselines!;
    t.ok(b, 'a baselines section');
    t.equal(b.characters, text.length);
    t.equal(b.training, 'train.txt');
    // the same programs on the same texts give the same sizes
    t.same(b.rows, compressorBaselines(text, train));
    const q = doc.models[0]!.quality.value!;
    t.equal(q.characters, text.length);
    // the model's figure is the one itera score gives for the same text
    const s = captureIo();
    t.equal(await main(['score', '--model', model, '--text', join(dir, 'eval.txt'), '--json'], s.io), 0, s.err());
    t.equal(q.bitsPerCharacter, (JSON.parse(s.out()) as { bitsPerCharacter: number }).bitsPerCharacter);
    t.match(c.out(), /PPMd/);

    const r = buildReport([{ file: 'bench.json', doc }], { png: false, generatedBy: 'test' });
    t.match(r.markdown, /## Quality beside classic compressors/);
    t.match(r.markdown, new RegExp(`\\*\\*${q.bitsPerCharacter!.toFixed(4)}\\*\\*`), "the model's figure");
    for (const row of b.rows) t.match(r.markdown, row.givenTraining!.bitsPerCharacter.toFixed(4), row.name);
    const chart = r.charts.find((x) => x.name === 'baselines.svg');
    t.ok(chart, 'a chart');
    t.match(chart!.content, /PPMd, given the training text/);
  },
);

t.test('usage errors come before any measuring', async (t) => {
  const c = captureIo();
  t.equal(await main(['bench', '--model', model, '--baselines'], c.io), 2, 'no --eval');
  t.match(c.err(), /--baselines needs --eval/);
  const d = captureIo();
  t.equal(await main(['bench', '--model', model, '--eval', model, '--train', 'brown'], d.io), 2, '--train alone');
  const e = captureIo();
  t.equal(await main(['bench', '--model', model, '--eval', '/nonexistent/text.txt'], e.io), 1);
  t.match(e.err(), /--eval: text file not found/);
  // a word-level tokenizer (it lowercases and drops spacing) is refused before the run
  const dir = mkdtempSync(join(tmpdir(), 'itera-bench-baselines-word-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'm.gguf'), tinyModelFile());
  writeFileSync(join(dir, 't.txt'), 'The  Jury said.\n');
  const f = captureIo();
  const args = ['bench', '--model', join(dir, 'm.gguf'), '--eval', join(dir, 't.txt'), '--baselines'];
  t.equal(await main([...args, '--peers', 'none'], f.io), 1);
  t.match(f.err(), /m\.gguf's tokenizer does not give the text back exactly/);
  t.equal(f.out(), '', 'refused before any measuring: no table');
});

t.test('a report from runs made before --baselines has no such section', async (t) => {
  const dir = join(repoRoot(), 'reports', 'results');
  const doc = JSON.parse(readFileSync(join(dir, 'bench-2026-11-26.json'), 'utf8')) as BenchDocument;
  t.same(validateBenchDocument(doc), [], 'old documents still validate');
  t.notMatch(buildReport([{ file: 'x', doc }], { png: false, generatedBy: 'test' }).markdown, /classic compressors/);
});
