// itera train end to end: a tiny model on a few KB of real text, trained straight through, and
// the same run interrupted by SIGINT and resumed with --resume, must give the same files byte for
// byte (tokenizer, corpus, safetensors, F32/Q8_0/Q4_0 GGUF). Also: the checks made before any
// training (empty and non-UTF-8 text, no PyTorch, no clone) and train.py's log lines read back.
// The end-to-end part needs /usr/bin/python3 with torch: skipped with the reason on a plain
// machine, failed under CI (scripts/ci/setup-torch.sh installs it).
import t, { type Test } from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../cli/itera.js';
import { captureIo } from './helpers.js';
import { repoRoot } from './shared.js';
import { PY, skipWithoutTorch, torchOk, writeSmallText } from './train-helpers.js';
import { findPython, parseTrainLine, trainScript } from '../train/python.js';
import { checkUtf8Text } from '../train/plan.js';

const root = repoRoot();
const skip = skipWithoutTorch;

const dir = mkdtempSync(join(tmpdir(), 'itera-train-cli-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

// about 12 KB of real text in 20 documents
const textFile = writeSmallText(join(dir, 'text.txt'));

t.test('--help, and the checks made before training', async (t) => {
  const h = captureIo();
  t.equal(await main(['train', '--help'], h.io), 0);
  t.match(h.out(), /--resume/);
  t.match(h.out(), /apt install python3-torch/);

  const empty = join(dir, 'empty.txt');
  writeFileSync(empty, '\n  \n');
  let c = captureIo();
  t.equal(await main(['train', '--text', empty, '-o', join(dir, 'x')], c.io), 1);
  t.match(c.err(), /empty: it has no text/);

  const latin1 = join(dir, 'latin1.txt');
  writeFileSync(latin1, Buffer.from('caf\xe9 au lait\n', 'latin1'));
  c = captureIo();
  t.equal(await main(['train', '--text', latin1, '-o', join(dir, 'x')], c.io), 1);
  t.match(c.err(), /not UTF-8 text.*iconv/);
  t.throws(() => checkUtf8Text(new Uint8Array([0x61, 0xff]), 'bytes'), /offset/);
  t.doesNotThrow(() => checkUtf8Text(new TextEncoder().encode('café'), 'ok'));

  c = captureIo();
  t.equal(await main(['train', '--text', join(dir, 'missing.txt'), '-o', join(dir, 'x')], c.io), 1);
  t.match(c.err(), /does not exist/);

  c = captureIo();
  t.equal(await main(['train', '--text', textFile, '-o', join(dir, 'x'), '--size', 'huge'], c.io), 2);
  t.match(c.err(), /--size must be one of tiny, small/);

  c = captureIo();
  t.equal(await main(['train', '--text', textFile, '-o', join(dir, 'x'), '--dropout', '1'], c.io), 2);
  t.match(c.err(), /--dropout must be at most 0.9/);

  // no PyTorch: a Python that does not exist, and one that cannot import torch
  c = captureIo();
  t.equal(await main(['train', '--text', textFile, '-o', join(dir, 'x'), '--python', join(dir, 'nope')], c.io), 1);
  t.match(c.err(), /needs Python 3 with PyTorch.*not found.*apt install python3-torch python3-numpy/s);
  const fake = join(dir, 'python-without-torch');
  writeFileSync(fake, '#!/bin/sh\necho "ModuleNotFoundError: No module named \'torch\'" >&2\nexit 1\n', {
    mode: 0o755,
  });
  t.throws(() => findPython([fake]), /No module named 'torch'.*pip install torch numpy/s);

  // the npm package has no scripts/train: the message says a clone is needed
  const pkg = join(dir, 'installed');
  mkdirSync(pkg);
  t.throws(() => trainScript(pkg), /needs a clone of the repository/);
  t.equal(trainScript(root), join(root, 'scripts', 'train', 'train.py'));
});

t.test("train.py's log lines are read back", async (t) => {
  t.same(
    parseTrainLine(
      'step 40/300  loss 5.1627  ce 5.1500  aux 1.000  lr 1.00e-03  |g| 0.50  9,000 tok/s  ep 0.50  trained 0:00:03  eta 0:01:05',
    ),
    { kind: 'step', step: 40, total: 300, loss: 5.1627, eta: '0:01:05' },
  );
  t.same(parseTrainLine('eval step 20: val loss 5.6442, 8.142 bits/token, ppl 282.6  (best, saved)'), {
    kind: 'eval',
    step: 20,
    valLoss: 5.6442,
    bitsPerToken: 8.142,
    best: true,
  });
  t.equal(parseTrainLine('eval step 40: val loss 5.7, 8.2 bits/token, ppl 300  (no better for 1)').kind, 'eval');
  t.equal(parseTrainLine('model: 36,496 parameters').kind, 'other');
});

// with dropout, so that its random numbers are part of what an interrupted run must resume exactly
const FLAGS = [
  '--size',
  'tiny',
  '--vocab',
  '300',
  '--steps',
  '240',
  '--seq-len',
  '32',
  '--batch-size',
  '4',
  '--dropout',
  '0.1',
];
const FLAGS_MORE = ['--eval-every', '50', '--log-every', '1', '--seed', '7', '--name', 'tiny', '--python', PY];
const itera = join(root, 'bin', 'itera.js');
const FILES = [
  'tokenizer.json',
  'corpus/train.bin',
  'corpus/val.bin',
  'run/model.safetensors',
  'run/last.safetensors',
  'model-f32.gguf',
  'model-q8_0.gguf',
  'model-q4_0.gguf',
];

function runCli(args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [itera, 'train', ...args], { encoding: 'utf8', timeout: 300_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Checks the exit status; the command's stderr is shown only when it is not the expected one. */
function exits(t: Test, got: { code: number | null; err: string }, want: number, what: string): void {
  t.equal(got.code, want, what);
  if (got.code !== want) t.comment(got.err);
}

t.test('SIGINT then --resume gives the files of an uninterrupted run, byte for byte', { skip }, async (t) => {
  if (!torchOk) {
    t.fail(`${PY} cannot import torch and numpy (CI is set, so that is a failure)`);
    return;
  }
  const straight = join(dir, 'straight');
  const s = runCli(['--text', textFile, '-o', straight, ...FLAGS, ...FLAGS_MORE]);
  exits(t, s, 0, 'the straight run exits 0');
  t.match(s.err, /step 240\/240 \(100%\).*time left/);
  t.match(s.err, /validation at step 50: .* bits\/char/);
  t.match(s.out, /model-q8_0\.gguf .*held-out perplexity/);
  t.match(readFileSync(join(straight, 'README.md'), 'utf8'), /\| Q4_0 \| `model-q4_0.gguf`/);

  // the same command, interrupted with SIGINT a third of the way
  const part = join(dir, 'resumed');
  const args = ['--text', textFile, '-o', part, ...FLAGS, ...FLAGS_MORE];
  const first = await new Promise<{ code: number | null; err: string }>((resolve) => {
    const p = spawn(process.execPath, [itera, 'train', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    let sent = false;
    p.stderr.on('data', (b: Buffer) => {
      err += b.toString();
      if (!sent && /step 80\/240/.test(err)) {
        sent = true;
        p.kill('SIGINT');
      }
    });
    p.stdout.resume();
    p.on('close', (code) => resolve({ code, err }));
  });
  exits(t, first, 130, 'the interrupted run exits 130');
  t.match(first.err, /interrupted during training; checkpoint in .*run the same command with --resume/);
  t.ok(existsSync(join(part, 'run', 'checkpoint.pt')), 'the checkpoint is there');
  t.notOk(existsSync(join(part, 'model-f32.gguf')), 'no model files yet');

  // without --resume the run is not overwritten
  const again = runCli(args);
  t.equal(again.code, 1);
  t.match(again.err, /add --resume to continue it/);

  const resumed = runCli([...args, '--resume']);
  exits(t, resumed, 0, 'the resumed run exits 0');
  t.match(resumed.err, /resumed from .* at step (\d+)\/240/);
  const at = Number(/resumed from .* at step (\d+)\/240/.exec(resumed.err)?.[1]);
  t.ok(at >= 80 && at < 240, `resumed part way (step ${at})`);
  for (const f of FILES)
    t.ok(readFileSync(join(straight, f)).equals(readFileSync(join(part, f))), `${f}: the same bytes`);

  // too little text for the window: a clear error before training
  const short = join(dir, 'short.txt');
  writeFileSync(short, 'A few words only.\n');
  const r = runCli(['--text', short, '-o', join(dir, 'short'), ...FLAGS, '--seq-len', '128', '--python', PY]);
  t.equal(r.code, 1);
  t.match(r.err, /too little text: the training split has \d+ tokens/);
  t.notOk(existsSync(join(dir, 'short', 'run')), 'nothing trained');
});
