// itera train --vocab auto: every candidate size gets its own tokenizer and a short run, scored on
// the validation text by the runtime; the size with the fewest bits per character is the one the
// final files use, and the card and vocab-sweep.json say so. The test split is never read by the
// sweep. Needs /usr/bin/python3 with torch (skipped with the reason off CI, failed under CI).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../cli/itera.js';
import { captureIo } from './helpers.js';
import { repoRoot } from './shared.js';
import { PY, skipWithoutTorch, torchOk, writeSmallText } from './train-helpers.js';
import { parseCandidates, VOCAB_LADDER, type Sweep } from '../cli/commands/train-vocab.js';
import { readTokenizerFile } from '../tokenize/files.js';

const skip = skipWithoutTorch;

t.test('--vocab-candidates and the options that go with auto', async (t) => {
  t.same(parseCandidates(undefined), VOCAB_LADDER);
  t.same(parseCandidates('300, 500,900'), [300, 500, 900]);
  t.throws(() => parseCandidates('500'), /two or more/);
  t.throws(() => parseCandidates('500,400'), /must increase/);
  t.throws(() => parseCandidates('200,400'), /at least 260/);
  const c = captureIo();
  t.equal(await main(['train', '--text', 'brown', '-o', '/nonexistent/x', '--sweep-epochs', '1'], c.io), 2);
  t.match(c.err(), /go with --vocab auto/);
  const h = captureIo();
  t.equal(await main(['train', '--help'], h.io), 0);
  t.match(h.out(), /--vocab N\|auto/);
});

t.test('the sweep picks the size with the fewest validation bits per character', { skip }, async (t) => {
  if (!torchOk) {
    t.fail(`${PY} cannot import torch and numpy (CI is set, so that is a failure)`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'itera-train-vocab-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const textFile = writeSmallText(join(dir, 'text.txt'));
  const out = join(dir, 'out');
  const args = ['train', '--text', textFile, '-o', out, '--vocab', 'auto', '--vocab-candidates', '270,320,400'];
  const flags = ['--sweep-epochs', '1', '--size', 'tiny', '--steps', '30', '--seq-len', '32', '--batch-size', '4'];
  const more = ['--eval-every', '10', '--seed', '3', '--python', PY];
  const r = spawnSync(process.execPath, [join(repoRoot(), 'bin', 'itera.js'), ...args, ...flags, ...more], {
    encoding: 'utf8',
    timeout: 300_000,
  });
  t.equal(r.status, 0, 'exits 0');
  if (r.status !== 0) t.comment(r.stderr.slice(-2000));
  const sweep = JSON.parse(readFileSync(join(out, 'vocab-sweep.json'), 'utf8')) as Sweep;
  t.same(
    sweep.rows.map((x) => x.vocab),
    [270, 320, 400],
    'every candidate ran',
  );
  for (const row of sweep.rows) {
    t.ok(Number.isFinite(row.validationBitsPerCharacter) && row.validationBitsPerCharacter > 0, `${row.vocab} scored`);
    t.ok(row.steps > 0, `${row.vocab} trained`);
  }
  const best = Math.min(...sweep.rows.map((x) => x.validationBitsPerCharacter));
  const chosen = sweep.rows.find((x) => x.vocab === sweep.chosen)!;
  t.equal(chosen.validationBitsPerCharacter, best, 'the chosen size has the fewest bits per character');
  t.equal(readTokenizerFile(join(out, 'tokenizer.json')).size, chosen.tokenizerSize, 'the final files use it');
  t.match(r.stderr, new RegExp(`vocabulary: ${sweep.chosen} chosen on the validation split`));
  t.match(readFileSync(join(out, 'README.md'), 'utf8'), /\| \d+ \(chosen\) \|/);
  const scores = JSON.parse(readFileSync(join(out, 'scores.json'), 'utf8')) as { vocabSweep: Sweep };
  t.same(scores.vocabSweep, sweep);

  // the same command again: refused without --resume, and with it the kept results are reused
  const again = spawnSync(process.execPath, [join(repoRoot(), 'bin', 'itera.js'), ...args, ...flags, ...more], {
    encoding: 'utf8',
  });
  t.equal(again.status, 1);
  t.match(again.stderr, /add --resume/);
  t.ok(existsSync(join(out, 'vocab-sweep', '320', 'result.json')));
});
