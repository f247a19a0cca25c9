import type { Command } from '../command.js';
import { fmtBytes, str, UsageError } from '../command.js';
import { modelPathFrom } from './model-option.js';
import { exportOnnx, type OnnxGraphKind } from '../../export/itera-onnx.js';
import { exportSafetensors } from '../../export/safetensors.js';
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { IteraError } from '../../runtime/types.js';

export const exportCmd: Command = {
  name: 'export',
  summary: 'write a model as ONNX (for ONNX Runtime) or as a safetensors state_dict (for PyTorch)',
  help: `Usage: itera export onnx [--model FILE] -o OUT.onnx [--step | --last]
       itera export safetensors [--model FILE] -o OUT.safetensors

Writes the model as an ONNX model (opset 17) that ONNX Runtime runs, with the same weights:
  (default)  the full-sequence graph: input_ids int64 [1, S] -> logits float [1, S, V], S <= T
  --last     the same, keeping only the last position's logits [1, V] (a prefill)
  --step     one step of the recurrence, with the state as inputs and outputs, so that a
             generator need not recompute the window: input_ids [1, 1], position [1],
             conv_state_L [K-1, di], ssm_state_L [N] for each layer L -> logits [1, 1, V],
             conv_state_out_L, ssm_state_out_L (start from zeros at position 0)
docs/onnx-export.md describes the graphs.

safetensors: the weights as the PyTorch state_dict our trainer writes (the original's tensor
names and shapes, f32; a quantized file's values dequantized), the configuration in its
metadata, so that scripts/train/train.py --init (or --teacher) can start from a shipped model.

Options:
  -m, --model FILE     model file (.gguf); default: the shipped default model in models/
  -o, --output FILE    where to write the .onnx file (required)
      --step           the single-step graph
      --last           the last-position graph
  -h, --help           this help

Example:
  itera export onnx --model micro.gguf -o micro.onnx
  itera export onnx --model micro.gguf -o micro-step.onnx --step
  itera export safetensors --model models/student-f32.gguf -o student.safetensors`,
  options: {
    model: { type: 'string', short: 'm' },
    output: { type: 'string', short: 'o' },
    step: { type: 'boolean' },
    last: { type: 'boolean' },
  },
  positionals: [1, 1],
  args: ['FORMAT (onnx or safetensors)'],
  async run(v, p, io) {
    if (p[0] !== 'onnx' && p[0] !== 'safetensors')
      throw new UsageError(`unknown export format '${p[0]}': give 'onnx' or 'safetensors'`);
    const out = str(v, 'output');
    if (out === undefined) throw new UsageError('--output FILE is required');
    if (p[0] === 'safetensors' && (v.step || v.last)) throw new UsageError('--step and --last are for onnx only');
    if (v.step && v.last) throw new UsageError('--step and --last exclude each other');
    const kind: OnnxGraphKind = v.step ? 'step' : v.last ? 'last' : 'full';
    const path = modelPathFrom(v);
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(resolve(path));
    } catch {
      throw new IteraError(`model file not found: ${resolve(path)}`, 'NO_FILE');
    }
    if (p[0] === 'safetensors') {
      const st = exportSafetensors(bytes);
      writeFileSync(out, st.bytes);
      io.out.write(
        `wrote ${out} (${st.tensors} tensors, f32, ${fmtBytes(st.bytes.length)})` +
          (st.dequantized ? '; the file was quantized: these are its dequantized values' : '') +
          '\n',
      );
      return 0;
    }
    const onnx = exportOnnx(bytes, { kind });
    writeFileSync(out, onnx);
    io.out.write(`wrote ${out} (${kind} graph, ${fmtBytes(onnx.length)})\n`);
    return 0;
  },
};
