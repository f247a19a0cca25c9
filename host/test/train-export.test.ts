// The training smoke test end to end: a few steps of our PyTorch training on a tiny config (the
// loss must fall), the safetensors export converted by our converter, and the runtime's logits
// held to PyTorch's on the same ids within 1e-4. Runs in CI (PyTorch comes from .ci/run).
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { importCheckpoint } from '../convert/import/index.js';
import { stateDictToModel } from '../convert/state-dict.js';
import { writeModelFile } from '../convert/model-write.js';
import { tokenizerFromOriginalJson } from '../runtime/tokenizer/index.js';
import { IteraModel } from '../runtime/api.js';
import { repoRoot } from './shared.js';
import { main } from '../cli/itera.js';
import { maxAbsDiff, wasmBytes, readF32File } from './helpers.js';

const PY = '/usr/bin/python3';
const hasTorch = spawnSync(PY, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;
const opt = hasTorch || process.env.CI ? {} : { skip: `needs PyTorch for ${PY} (apt-get install python3-torch)` };

const PREP = `
import json, os, random, sys
import numpy as np
out = sys.argv[1]
rng = random.Random(0)
V = 40
templates = [[rng.randrange(4, V) for _ in range(rng.randrange(5, 12))] for _ in range(6)]
def stream(n):
    ids = []
    for _ in range(n): ids += rng.choice(templates) + [3]
    return ids
np.asarray(stream(600), dtype='<u2').tofile(os.path.join(out, 'train.bin'))
np.asarray(stream(60), dtype='<u2').tofile(os.path.join(out, 'val.bin'))
names = ['<PAD>', '<UNK>', '<BOS>', '<EOS>'] + ['w%d' % i for i in range(4, V)]
json.dump({'vocab_size': V, 'token_to_id': {n: i for i, n in enumerate(names)}, 'id_to_token': {str(i): n for i, n in enumerate(names)}}, open(os.path.join(out, 'tokenizer.json'), 'w'))
`;

const LOGITS = `
import sys, torch
sys.path.insert(0, sys.argv[1])
from itera_model import load_checkpoint
m, _ = load_checkpoint(sys.argv[2]); m.eval()
ids = [int(x) for x in sys.argv[3].split(',')]
with torch.no_grad(): y = m(torch.tensor([ids]))[0]
y.float().numpy().astype('<f4').tofile(sys.argv[4])
`;

/** Trains the tiny model (with extra train.py flags), checks the loss falls; the run's folder. */
function trainTiny(t: Test, extraArgs: string[]): { dir: string; run: string } {
  t.ok(hasTorch, `${PY} imports torch`);
  const dir = mkdtempSync(join(tmpdir(), 'itera-smoke-'));
  const corpus = join(dir, 'corpus');
  spawnSync('mkdir', ['-p', corpus]);
  let r = spawnSync(PY, ['-c', PREP, corpus], { encoding: 'utf8' });
  t.equal(r.status, 0, `corpus written (${r.stderr.trim()})`);
  const run = join(dir, 'run');
  r = spawnSync(
    PY,
    [
      join(repoRoot(), 'scripts/train/train.py'),
      '--data',
      corpus,
      '--out',
      run,
      '--d',
      '16',
      '--layers',
      '2',
      '--state',
      '4',
      '--expand',
      '2',
      '--experts',
      '4',
      '--expert-size',
      '16',
      '--top-k',
      '2',
      '--max-seq',
      '32',
      '--batch-size',
      '8',
      '--warmup',
      '5',
      '--lr',
      '1e-2',
      '--steps',
      '60',
      '--eval-every',
      '30',
      '--eval-tokens',
      '2000',
      '--seed',
      '0',
      '--quiet',
      ...extraArgs,
    ],
    { encoding: 'utf8' },
  );
  t.equal(r.status, 0, `train.py ran (${r.stderr.trim().split('\n').pop()})`);
  const log = readFileSync(join(run, 'train_log.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, number>);
  const losses = log.filter((e) => typeof e.loss === 'number').map((e) => e.loss);
  t.ok(
    losses.length >= 2 && losses[losses.length - 1] < losses[0] * 0.8,
    `the loss falls (${losses[0]?.toFixed(3)} -> ${losses[losses.length - 1]?.toFixed(3)})`,
  );
  return { dir, run };
}

/** PyTorch's logits of the trained model for ids. */
function torchLogits(t: Test, dir: string, run: string, ids: number[]): Float32Array {
  const out = join(dir, 'torch.f32');
  const r = spawnSync(
    PY,
    ['-c', LOGITS, join(repoRoot(), 'scripts/train'), join(run, 'model.safetensors'), ids.join(','), out],
    { encoding: 'utf8' },
  );
  t.equal(r.status, 0, `PyTorch logits (${r.stderr.trim().split('\n').pop()})`);
  return readF32File(out);
}

t.test('train a few steps, export, convert, run: the runtime matches PyTorch within 1e-4', opt, async (t) => {
  const { dir, run } = trainTiny(t, []);
  const ids = [5, 9, 12, 3, 7, 7, 20, 39, 4, 11];
  const want = torchLogits(t, dir, run, ids);
  const imported = importCheckpoint(readFileSync(join(run, 'model.safetensors')), 'model.safetensors');
  const m = stateDictToModel(imported.tensors);
  const tok = tokenizerFromOriginalJson(JSON.parse(readFileSync(join(run, 'tokenizer.json'), 'utf8')));
  const gguf = writeModelFile({ config: m.config, tensors: m.tensors, tokenizer: tok, name: 'smoke' });
  writeFileSync(join(dir, 'smoke.gguf'), gguf);
  for (const build of ['simd', 'scalar'] as const) {
    const model = await IteraModel.fromBytes(gguf, wasmBytes(build));
    const d = maxAbsDiff(model.logits(ids), want);
    t.ok(d <= 1e-4, `${build}: runtime logits within 1e-4 of PyTorch's (max ${d.toExponential(2)})`);
    const ds = maxAbsDiff(model.logits(ids, { step: true }), want);
    t.ok(ds <= 1e-4, `${build}: step by step too (max ${ds.toExponential(2)})`);
    model.dispose();
  }
});

t.test('position-free: trained without positions, converted, run past T: PyTorch within 1e-4', opt, async (t) => {
  // no learned positions, windows of 24 tokens (T = 24, the training window)
  const { dir, run } = trainTiny(t, ['--no-pos-embedding', '--seq-len', '24']);
  const ids = Array.from({ length: 70 }, (_, i) => 4 + ((i * 7 + (i >> 3)) % 36)); // 70 tokens: past 2T
  const want = torchLogits(t, dir, run, ids);
  // through the CLI: T comes from the export's metadata (there is no position tensor to read it off)
  const file = join(dir, 'nopos.gguf');
  const quiet = { write: () => true } as unknown as NodeJS.WritableStream;
  const code = await main(
    ['convert', join(run, 'model.safetensors'), '--tokenizer', join(run, 'tokenizer.json'), '-o', file],
    { out: quiet, err: quiet },
  );
  t.equal(code, 0, 'itera convert');
  const gguf = readFileSync(file);
  for (const build of ['simd', 'scalar'] as const) {
    const model = await IteraModel.fromBytes(gguf, wasmBytes(build));
    t.equal(model.config.positionEmbedding, false, `${build}: the file says position-free`);
    t.equal(model.config.maxSeqLength, 24, `${build}: T from the export's metadata (its training window)`);
    const d = maxAbsDiff(model.logits(ids), want);
    t.ok(d <= 1e-4, `${build}: 70 tokens by prefill within 1e-4 of PyTorch (max ${d.toExponential(2)})`);
    const ds = maxAbsDiff(model.logits(ids, { step: true }), want);
    t.ok(ds <= 1e-4, `${build}: step by step too (max ${ds.toExponential(2)})`);
    t.equal(
      maxAbsDiff(model.logits(ids), model.logits(ids, { step: true })),
      0,
      `${build}: prefill and steps agree bit for bit`,
    );
    model.dispose();
  }
});
