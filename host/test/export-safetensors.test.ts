// `itera export safetensors`: a model file back to the trainer's state_dict. Held to the file it
// came from (every value, bit for bit, through our own importer and converter), and to PyTorch:
// the trainer's load_checkpoint reads it (also without the expert_counts buffers a model file
// does not keep) and its logits match the runtime's within 1e-4.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportSafetensors, trainerConfigJson } from '../export/safetensors.js';
import { importCheckpoint } from '../convert/import/index.js';
import { stateDictToModel } from '../convert/state-dict.js';
import { readModelFile, tensorAsF32 } from '../runtime/model-file.js';
import { IteraModel } from '../runtime/api.js';
import { main } from '../cli/itera.js';
import { repoRoot } from './shared.js';
import { captureIo as capture, maxAbsDiff, readF32File, wasmBytes } from './helpers.js';

const PY = '/usr/bin/python3';
const hasTorch = spawnSync(PY, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;
const torchOpt = hasTorch || process.env.CI ? {} : { skip: `needs PyTorch for ${PY} (apt-get install python3-torch)` };

const model = (f: string): Uint8Array => new Uint8Array(readFileSync(join(repoRoot(), 'models', f)));

t.test('every tensor comes back through the importer bit for bit, F32 and quantized', async (t) => {
  for (const f of ['student-f32.gguf', 'student-q4_0.gguf', 'teacher-q8_0.gguf']) {
    const bytes = model(f);
    const file = readModelFile(bytes);
    const st = exportSafetensors(bytes);
    t.equal(st.dequantized, f !== 'student-f32.gguf', `${f}: says whether values were dequantized`);
    const imported = importCheckpoint(st.bytes, f);
    const meta = imported.extra as Record<string, string>;
    t.equal(meta.format, 'itera-lite');
    t.equal(meta.config, trainerConfigJson(file.config));
    t.ok(
      [...imported.tensors.keys()].some((k) => k.endsWith('experts.0.w1.weight')),
      `${f}: experts one tensor each`,
    );
    t.notOk(imported.tensors.has('lm_head.weight'), `${f}: a tied lm_head is not written twice`);
    const back = stateDictToModel(imported.tensors, { maxSeqLength: file.config.maxSeqLength, topK: file.config.topK });
    t.same(back.config, file.config, `${f}: the configuration the shapes and T give is the file's`);
    let differ = 0;
    for (const tensor of back.tensors) {
      const want = tensorAsF32(file.tensors.get(tensor.name)!);
      for (let i = 0; i < want.length; i++) if (!Object.is(want[i], tensor.data[i])) differ++;
    }
    t.equal(differ, 0, `${f}: every value of ${back.tensors.length} tensors equal`);
  }
});

t.test('the CLI writes it, and says so', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'itera-export-st-'));
  const out = join(dir, 'student.safetensors');
  const c = capture();
  const code = await main(
    ['export', 'safetensors', '--model', join(repoRoot(), 'models/student-q4_0.gguf'), '-o', out],
    c.io,
  );
  t.equal(code, 0, c.err());
  t.match(c.out(), /wrote .*student\.safetensors \(127 tensors, f32, .*dequantized values/);
  t.same(new Uint8Array(readFileSync(out)), exportSafetensors(model('student-q4_0.gguf')).bytes, 'the same bytes');
  const bad = capture();
  t.equal(await main(['export', 'safetensors', '-o', out, '--step'], bad.io), 2);
  t.match(bad.err(), /--step and --last are for onnx only/);
  const fmt = capture();
  t.equal(await main(['export', 'tflite', '-o', out], fmt.io), 2);
  t.match(fmt.err(), /unknown export format 'tflite': give 'onnx' or 'safetensors'/);
});

const LOGITS = `
import json, sys, torch
sys.path.insert(0, sys.argv[1])
from itera_model import load_checkpoint
m, meta = load_checkpoint(sys.argv[2]); m.eval()
assert json.loads(m.config.to_json()) == json.loads(meta["config"]), (m.config.to_json(), meta["config"])
ids = [int(x) for x in sys.argv[3].split(',')]
with torch.no_grad(): y = m(torch.tensor([ids]))[0]
y.float().numpy().astype('<f4').tofile(sys.argv[4])
`;

t.test("PyTorch's load_checkpoint reads it and gives the runtime's logits within 1e-4", torchOpt, async (t) => {
  t.ok(hasTorch, `${PY} imports torch`);
  const dir = mkdtempSync(join(tmpdir(), 'itera-export-st-'));
  const ids = [5, 100, 7, 300, 42, 9, 1000, 3, 1999, 0];
  // F32 files: a quantized one's runtime also rounds its activations to int16, PyTorch does not
  for (const f of ['student-f32.gguf', 'teacher-f32.gguf']) {
    const bytes = model(f);
    const path = join(dir, f + '.safetensors');
    const c = capture();
    t.equal(await main(['export', 'safetensors', '--model', join(repoRoot(), 'models', f), '-o', path], c.io), 0);
    const out = join(dir, f + '.f32');
    const r = spawnSync(PY, ['-c', LOGITS, join(repoRoot(), 'scripts/train'), path, ids.join(','), out], {
      encoding: 'utf8',
    });
    t.equal(r.status, 0, `PyTorch loaded ${f}'s export (${r.stderr.trim().split('\n').pop()})`);
    const m = await IteraModel.fromBytes(bytes, wasmBytes('scalar'));
    const d = maxAbsDiff(m.logits(ids), readF32File(out));
    t.ok(d <= 1e-4, `${f}: PyTorch's logits within 1e-4 of the runtime's (max ${d.toExponential(2)})`);
  }
});
