// PyTorch dynamic INT8 checkpoints: made here with Debian's PyTorch from the micro reference
// checkpoint (torch.quantization.quantize_dynamic), imported with their integers and scales kept
// (type I8), and held to the FP32 model computed from the same dequantized weights: top-1
// agreement >= 99%, and a max logit error no larger than PyTorch's own INT8 kernels show.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { importCheckpoint } from '../convert/import/index.js';
import { readModelFile } from '../runtime/model-file.js';
import { stateDictToModel } from '../convert/state-dict.js';
import { writeModelFile } from '../convert/model-write.js';
import { tokenizerFromOriginalJson } from '../runtime/tokenizer/index.js';
import { IteraModel } from '../runtime/api.js';
import { GgmlType } from '../runtime/gguf.js';
import { needShared, requireShared, repoRoot } from './shared.js';
import { wasmBytes, readF32File } from './helpers.js';
import { REF_CKPT, REF_TOKENIZER } from './reference-model.js';

const PY = '/usr/bin/python3';
const hasTorch = spawnSync(PY, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;
const torchOpt = hasTorch || process.env.CI ? {} : { skip: `needs PyTorch for ${PY} (apt-get install python3-torch)` };

t.test(
  'PyTorch dynamic INT8 checkpoint: imported as stored, as accurate as PyTorch itself or better',
  { ...needShared(REF_CKPT), ...torchOpt },
  async (t) => {
    t.ok(hasTorch, `${PY} imports torch`);
    const ref = JSON.parse(readFileSync(requireShared('reference/golden/micro/reference.json'), 'utf8')) as {
      logits_cases: { input_ids: number[] }[];
    };
    const cases = ref.logits_cases.map((c) => c.input_ids);
    const dir = mkdtempSync(join(tmpdir(), 'itera-int8-'));
    writeFileSync(join(dir, 'cases.json'), JSON.stringify(cases));
    const r = spawnSync(
      PY,
      [
        join(repoRoot(), 'scripts/train/int8_reference.py'),
        '--checkpoint',
        requireShared(REF_CKPT),
        '--cases',
        join(dir, 'cases.json'),
        '--out',
        dir,
      ],
      { encoding: 'utf8' },
    );
    t.equal(r.status, 0, `int8_reference.py ran (${r.stderr.trim().split('\n').pop()})`);
    const f32 = (name: string) => readF32File(join(dir, name));
    const oracle = f32('dequantized.f32');
    const torchInt8 = f32('int8_torch.f32');

    const imported = importCheckpoint(readFileSync(join(dir, 'model_int8.pt')), 'model_int8.pt');
    const conv = stateDictToModel(imported.tensors);
    t.notOk(conv.tiedEmbeddings, 'the INT8 file stores lm_head apart from the embedding');
    const tok = tokenizerFromOriginalJson(JSON.parse(readFileSync(requireShared(REF_TOKENIZER), 'utf8')));
    const bytes = writeModelFile({ config: conv.config, tensors: conv.tensors, tokenizer: tok, name: 'micro-int8' });
    const file = readModelFile(bytes);
    t.equal(file.tensors.get('blk.0.ssm_in.weight')!.type, GgmlType.I8, 'the integers are kept (I8), not re-quantized');
    const stored = imported.tensors.get('layers.0.ssm.in_proj.weight')!;
    t.same(
      Array.from(file.tensors.get('blk.0.ssm_in.weight')!.data.subarray(0, 64)),
      Array.from(stored.data.subarray(0, 64)),
      'the same int8 values as PyTorch stored',
    );
    t.equal(
      file.tensors.get('blk.0.ssm_in.weight')!.scales![0],
      Math.fround(stored.quant!.scale),
      'and the same scale',
    );

    const V = conv.config.vocabSize;
    const stat = (a: Float32Array) => {
      let maxd = 0,
        agree = 0;
      const n = a.length / V;
      for (let p = 0; p < n; p++) {
        let ia = 0,
          ib = 0;
        for (let v = 0; v < V; v++) {
          maxd = Math.max(maxd, Math.abs(a[p * V + v] - oracle[p * V + v]));
          if (a[p * V + v] > a[p * V + ia]) ia = v;
          if (oracle[p * V + v] > oracle[p * V + ib]) ib = v;
        }
        if (ia === ib) agree++;
      }
      return { maxd, agree: agree / n };
    };
    const theirs = stat(torchInt8);
    for (const build of ['simd', 'scalar'] as const) {
      const m = await IteraModel.fromBytes(bytes, wasmBytes(build));
      const ours = new Float32Array(oracle.length);
      let o = 0;
      for (const c of cases) {
        const l = m.logits(c);
        ours.set(l, o);
        o += l.length;
      }
      const s = stat(ours);
      t.ok(
        s.agree >= 0.99,
        `${build}: top-1 agreement with the FP32 model of the dequantized weights ${(s.agree * 100).toFixed(2)}% (>= 99%)`,
      );
      t.ok(
        s.maxd <= theirs.maxd,
        `${build}: max logit error ${s.maxd.toExponential(2)} <= PyTorch's own dynamic INT8 kernels' ${theirs.maxd.toExponential(2)} (their top-1 agreement ${(theirs.agree * 100).toFixed(2)}%)`,
      );
      m.dispose();
    }
  },
);
