// A model file back to the PyTorch state_dict our trainer writes (scripts/train/train.py), as a
// safetensors file: so that a shipped model can be trained further (`train.py --init`) or read by
// other tools. Every tensor the configuration implies, under the original's names and shapes, as
// f32 (quantized tensors dequantized: a Q8_0 / Q4_0 file gives its quantized values, not the
// weights it was made from). The configuration goes into __metadata__ as the trainer's JSON.

import { readModelFile, modelTensorSpecs, numel, tensorAsF32 } from '../runtime/model-file.js';
import type { IteraConfig, RawTensor } from '../runtime/types.js';
import { writeSafetensors } from '../convert/import/safetensors.js';

/** The configuration as the trainer's IteraConfig.to_json writes it (sorted keys; the key
 *  position_embedding only when false, as the trainer omits it for the original's layout). */
export function trainerConfigJson(c: IteraConfig): string {
  const d: Record<string, unknown> = {
    expert_size: c.expertSize,
    hidden_size: c.hiddenSize,
    layer_norm_eps: c.layerNormEps,
    max_seq_length: c.maxSeqLength,
    moe_layers: c.moeLayers,
    num_experts: c.numExperts,
    num_layers: c.numLayers,
    ssm_conv_kernel: c.ssmConvKernel,
    ssm_expand_factor: c.ssmInnerSize / c.hiddenSize,
    ssm_state_size: c.ssmStateSize,
    top_k_experts: c.topK,
    vocab_size: c.vocabSize,
  };
  if (c.positionEmbedding === false) d.position_embedding = false;
  return JSON.stringify(Object.fromEntries(Object.entries(d).sort(([a], [b]) => (a < b ? -1 : 1))));
}

export interface SafetensorsExport {
  bytes: Uint8Array;
  tensors: number;
  /** Whether any tensor was stored quantized (its f32 values are then the dequantized ones). */
  dequantized: boolean;
}

/** The model file's weights as a safetensors state_dict (see the file comment). */
export function exportSafetensors(modelBytes: Uint8Array): SafetensorsExport {
  const file = readModelFile(modelBytes);
  const out: RawTensor[] = [];
  let dequantized = false;
  const f32Bytes = (v: Float32Array): Uint8Array => new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  for (const spec of modelTensorSpecs(file.config, file.tiedEmbeddings)) {
    const t = file.tensors.get(spec.name)!;
    if (t.type !== 0) dequantized = true;
    const values = tensorAsF32(t);
    const per = numel(spec.sourceShape);
    // stacked experts [E, ...] go back to one tensor per expert; conv1d [di, K] to [di, 1, K]
    spec.sources.forEach((name, i) => {
      out.push({
        name,
        dtype: 'f32',
        shape: [...spec.sourceShape],
        data: f32Bytes(values.slice(i * per, (i + 1) * per)),
      });
    });
  }
  const metadata: Record<string, string> = {
    format: 'itera-lite',
    config: trainerConfigJson(file.config),
    tied_embeddings: file.tiedEmbeddings ? 'true' : 'false',
    source: `exported from the model file '${file.name}' by itera export safetensors`,
  };
  return { bytes: writeSafetensors(out, metadata), tensors: out.length, dequantized };
}
