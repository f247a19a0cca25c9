// What every importer hands back.

import type { RawTensor } from '../../runtime/types.js';

export interface ImportedCheckpoint {
  format: 'pytorch-zip' | 'safetensors';
  /** In the checkpoint's order (state_dict order; byte order for safetensors). Tied tensors have
   *  equal storageKeys and may share one data array: treat data as read-only. */
  tensors: Map<string, RawTensor>;
  /** Everything else: other top-level keys of a PyTorch checkpoint (e.g. compression_ratio),
   *  a quantized model's scalars, safetensors __metadata__. Plain data only. */
  extra: Record<string, unknown>;
  /** What the importer found and decided, for people. */
  notes: string[];
}
