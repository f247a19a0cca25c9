import type { Command } from '../command.js';
import { fmtBytes, fmtInt } from '../command.js';
import { modelHelp, modelOptions, openModel } from './model-option.js';
import { GgmlType, ggmlTypeName } from '../../runtime/gguf.js';

export const info: Command = {
  name: 'info',
  summary: 'show a model file: configuration, tokenizer, tensors, sizes',
  help: `Usage: itera info [--model FILE] [--json]

Reads and validates a model file and prints what is in it.

Options:
${modelHelp}
      --json           print as JSON
  -h, --help           this help`,
  options: { ...modelOptions, json: { type: 'boolean' } },
  async run(v, _p, io) {
    const model = await openModel(v);
    try {
      const i = model.info();
      if (v.json) {
        const tensors = Object.fromEntries(
          [...model.file.tensors].map(([n, t]) => [n, { type: ggmlTypeName(t.type), shape: t.shape }]),
        );
        io.out.write(
          JSON.stringify({ ...i, tensors, loadMs: model.loadMs, memoryBytes: model.memoryBytes() }, null, 2) + '\n',
        );
        return 0;
      }
      const c = i.config;
      io.out.write(
        `name         ${i.name}\n` +
          `file         ${fmtBytes(i.fileBytes)}, ${fmtInt(i.parameters)} parameters\n` +
          `config       V=${c.vocabSize} d=${c.hiddenSize} L=${c.numLayers} N=${c.ssmStateSize} K=${c.ssmConvKernel} di=${c.ssmInnerSize} ` +
          `E=${c.numExperts} f=${c.expertSize} k=${c.topK} moe_layers=[${c.moeLayers.join(',')}] T=${c.maxSeqLength} eps=${c.layerNormEps}\n` +
          `tokenizer    ${i.tokenizer}, ${fmtInt(model.tokenizer.size)} tokens\n` +
          `runtime      ${i.simd ? 'SIMD' : 'scalar'} build, ${fmtBytes(model.memoryBytes())} of WebAssembly memory, loaded in ${model.loadMs.toFixed(1)} ms\n` +
          `tensors (type, shape in PyTorch order):\n` +
          Object.entries(i.tensorTypes)
            .map(
              ([n, t]) =>
                `  ${n.padEnd(30)} ${ggmlTypeName(t).padEnd(5)} ${shapeOf(model.file.tensors.get(n)?.shape)}${/\.ssm_c$/.test(n) && t !== GgmlType.F32 && t !== GgmlType.F16 ? ' (stored transposed, as ssm_c_t [N, di])' : ''}`,
            )
            .join('\n') +
          '\n',
      );
      return 0;
    } finally {
      model.dispose();
    }
  },
};

function shapeOf(shape: readonly number[] | undefined): string {
  return shape ? `[${shape.join(', ')}]` : '?';
}
