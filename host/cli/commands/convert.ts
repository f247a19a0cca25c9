import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { Command } from '../command.js';
import { fmtBytes, fmtInt, num, str, UsageError } from '../command.js';
import { importCheckpoint } from '../../convert/import/index.js';
import { readModelFile } from '../../runtime/model-file.js';
import { stateDictToModel } from '../../convert/state-dict.js';
import { writeModelFile } from '../../convert/model-write.js';
import { ggmlTypeName } from '../../runtime/gguf.js';
import { parseQuant } from './quantize.js';
import { tokenizerFromOriginalJson } from '../../runtime/tokenizer/index.js';
import { IteraError } from '../../runtime/types.js';

export const convert: Command = {
  name: 'convert',
  summary: 'turn a PyTorch (.pt) or safetensors checkpoint plus its tokenizer into one model file',
  help: `Usage: itera convert CHECKPOINT --tokenizer TOKENIZER.json -o MODEL.gguf [options]

Reads a checkpoint without Python (torch.save zip archives, parsed and never executed; or
safetensors), infers the configuration from tensor shapes, checks every tensor against it, and
writes one GGUF file holding the configuration, the weights and the tokenizer. Converting the
same inputs twice gives byte-identical files.

Options:
      --tokenizer FILE  the original's tokenizer JSON (word level or character level)
  -o, --output FILE     the model file to write
      --name NAME       general.name in the file (default: the checkpoint's file name)
      --top-k K         experts used per token (not stored in checkpoints; default 2)
      --eps E           LayerNorm epsilon (default 1e-5)
      --context T       the training context of a position-free checkpoint (no position_embedding.weight;
                        default: its export's metadata); models with learned positions take T from them
      --quant TYPE      store the large matrices as f32 (default), f16, q8_0 or q4_0 (see itera quantize);
                        a PyTorch dynamic-INT8 checkpoint keeps its own integers (type I8) whatever this says
  -h, --help            this help

Example:
  itera convert ../shared/reference/checkpoints/itera_lite_micro_distilled.pt \\
      --tokenizer ../shared/reference/tokenizers/tokenizer_2000.json -o micro.gguf`,
  options: {
    tokenizer: { type: 'string' },
    output: { type: 'string', short: 'o' },
    name: { type: 'string' },
    'top-k': { type: 'string' },
    eps: { type: 'string' },
    context: { type: 'string' },
    quant: { type: 'string' },
  },
  positionals: [1, 1],
  args: ['CHECKPOINT (the PyTorch checkpoint or safetensors file to convert)'],
  async run(v, [ckpt], io) {
    const out = str(v, 'output');
    if (out === undefined) throw new UsageError('--output FILE is required');
    const tokPath = str(v, 'tokenizer');
    if (tokPath === undefined)
      throw new UsageError('--tokenizer FILE is required (the tokenizer JSON that goes with the checkpoint)');
    for (const p of [ckpt, tokPath]) if (!existsSync(p)) throw new IteraError(`file not found: ${p}`, 'NO_FILE');
    const topK = num(v, 'top-k', { int: true, min: 1 });
    const eps = num(v, 'eps', { min: 0 });
    let tokJson: unknown;
    try {
      tokJson = JSON.parse(readFileSync(tokPath, 'utf8'));
    } catch (e) {
      throw new IteraError(`tokenizer ${tokPath} is not valid JSON: ${(e as Error).message}`, 'BAD_TOKENIZER');
    }
    const tokenizer = tokenizerFromOriginalJson(tokJson);
    const imported = importCheckpoint(readFileSync(ckpt), ckpt);
    // a position-free checkpoint has no T of its own: --context, else its export's metadata
    const metaConfig = (() => {
      const c = (imported.extra as { config?: unknown }).config;
      try {
        return typeof c === 'string' ? (JSON.parse(c) as { max_seq_length?: unknown }) : {};
      } catch {
        return {};
      }
    })();
    const context =
      num(v, 'context', { int: true, min: 1 }) ??
      (Number.isInteger(metaConfig.max_seq_length) ? (metaConfig.max_seq_length as number) : undefined);
    const m = stateDictToModel(imported.tensors, { topK, eps, maxSeqLength: context });
    const name = str(v, 'name') ?? basename(ckpt).replace(/\.(pt|pth|bin|safetensors)$/i, '');
    const quant = parseQuant(str(v, 'quant'), 'quant');
    if (quant === 'mixed')
      throw new UsageError('--quant mixed needs a measured model: convert, then run itera quantize --type mixed');
    const bytes = writeModelFile({ config: m.config, tensors: m.tensors, tokenizer, name, type: quant });
    writeFileSync(out, bytes);
    const c = m.config;
    const lines = [
      `checkpoint   ${ckpt} (${imported.format}, ${fmtInt(imported.tensors.size)} tensors)`,
      ...imported.notes.map((n) => `  note: ${n}`),
      `config       V=${c.vocabSize} d=${c.hiddenSize} L=${c.numLayers} N=${c.ssmStateSize} K=${c.ssmConvKernel} di=${c.ssmInnerSize} ` +
        `E=${c.numExperts} f=${c.expertSize} k=${c.topK} moe_layers=[${c.moeLayers.join(',')}] T=${c.maxSeqLength} eps=${c.layerNormEps}`,
      `tokenizer    ${tokenizer.kind}, ${fmtInt(tokenizer.size)} tokens`,
      `parameters   ${fmtInt(m.parameters)}`,
      `tensors:`,
      ...[...readModelFile(bytes).tensors.entries()].map(
        ([n, t]) => `  ${n.padEnd(30)} ${t.shape.join(' x ').padEnd(14)} ${ggmlTypeName(t.type)}`,
      ),
      ...m.notes.map((n) => `note: ${n}`),
      `wrote        ${out} (${fmtBytes(bytes.byteLength)})`,
    ];
    io.out.write(lines.join('\n') + '\n');
    return 0;
  },
};
