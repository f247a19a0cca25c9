// Compressor baselines (itera score --baselines): the real xz, zstd, bzip2 and 7-Zip PPMd run on a
// text alone and given a training text; a model whose tokenizer does not give the text back is
// refused. Needs the Debian packages .ci/run installs; without one, its row says what to install.
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { compressorBaselines, formatBaselines, type Compressor } from '../bench/compressors.js';
import { main } from '../cli/itera.js';
import { tinyModelFile } from './helpers.js';

const have = (p: string) => spawnSync(p, ['--help'], { stdio: 'ignore' }).error === undefined;
const missing = ['xz', 'zstd', 'bzip2', '7z'].filter((p) => !have(p));

// a training text, and a text that repeats much of it (so knowing the training text must help)
const sentences = Array.from(
  { length: 400 },
  (_, i) => `Sentence ${(i * 7919) % 1000} says the jury ${['was', 'is', 'will be'][i % 3]} out.`,
);
const train = sentences.join(' ');
const text = sentences.slice(100, 160).join(' ') + ' And one new line at the end.';

t.test(
  'every compressor runs, alone and given the training text',
  { skip: missing.length && !process.env.CI ? `not installed: ${missing.join(', ')}` : false },
  async (t) => {
    const rows = compressorBaselines(text, train);
    t.same(
      rows.map((r) => r.name),
      ['xz', 'zstd', 'bzip2', 'PPMd'],
    );
    for (const r of rows) {
      t.notOk(r.error, `${r.name} ran`);
      t.ok(r.alone && r.alone.bytes > 0, `${r.name}: a size alone`);
      t.ok(r.givenTraining && r.givenTraining.bytes > 0, `${r.name}: a size given the training text`);
      t.ok(
        r.givenTraining!.bytes < r.alone!.bytes,
        `${r.name}: the training text helps (${r.givenTraining!.bytes} < ${r.alone!.bytes})`,
      );
      t.equal(r.alone!.bitsPerCharacter, (r.alone!.bytes * 8) / text.length, `${r.name}: bits per character`);
      t.equal(r.alone!.bitsPerByte, (r.alone!.bytes * 8) / Buffer.byteLength(text), `${r.name}: bits per byte`);
    }
    t.match(formatBaselines(rows, { name: 'm', bitsPerCharacter: 2 }), /PPMd .*7z a -m0=PPMd:mem=1g:o=8/);
    t.equal(
      compressorBaselines(text).every((r) => r.givenTraining === null),
      true,
      'no training text: no "given" figures',
    );
  },
);

t.test('a missing program is a row that says what to install, not a crash', async (t) => {
  const fake: Compressor = {
    name: 'nope',
    command: 'nope',
    size: () => {
      throw new Error('nope is not installed (Debian: apt-get install nope)');
    },
  };
  const rows = compressorBaselines('abc', undefined, [fake]);
  t.equal(rows[0]!.alone, null);
  t.match(rows[0]!.error, /apt-get install nope/);
});

t.test('--baselines refuses a tokenizer that does not give the text back', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'itera-baselines-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'm.gguf'), tinyModelFile()); // a word-level tokenizer: lowercases, drops spacing
  writeFileSync(join(dir, 't.txt'), 'The  Jury said.\n');
  let err = '';
  const sink = (f: (s: string) => void) =>
    ({ write: (s: string) => (f(String(s)), true) }) as unknown as NodeJS.WritableStream;
  const io = { out: sink(() => {}), err: sink((s) => (err += s)) };
  const code = await main(['score', '--model', join(dir, 'm.gguf'), '--text', join(dir, 't.txt'), '--baselines'], io);
  t.equal(code, 1);
  t.match(err, /does not give the text back exactly/);
  err = '';
  t.equal(
    await main(['score', '--model', join(dir, 'm.gguf'), '--text', join(dir, 't.txt'), '--train', 'x'], io),
    2,
    '--train alone is a usage error',
  );
});
