// Checkpoint import: one entry point that recognises a PyTorch zip or a safetensors file by its
// bytes and hands back its tensors. Nothing here executes code from the file.

import { IteraError } from '../../runtime/types.js';
import { importTorchZip, type TorchImportOptions } from './pytorch.js';
import { looksLikeSafetensors, readSafetensors } from './safetensors.js';
import { looksLikeZip } from './zip.js';
import type { ImportedCheckpoint } from './checkpoint.js';

export type { ImportedCheckpoint } from './checkpoint.js';

export type CheckpointKind = 'pytorch-zip' | 'safetensors' | 'pytorch-legacy' | 'gguf' | 'unknown';

/** What the bytes look like, from their first bytes only. */
export function sniffCheckpoint(bytes: Uint8Array): CheckpointKind {
  if (looksLikeZip(bytes)) return 'pytorch-zip';
  if (bytes.length >= 4 && bytes[0] === 0x47 && bytes[1] === 0x47 && bytes[2] === 0x55 && bytes[3] === 0x46)
    return 'gguf';
  // torch.save before 1.6 (and with _use_new_zipfile_serialization=False) starts with a pickled
  // magic number: PROTO 2, LONG1 of 10 bytes.
  if (bytes.length >= 4 && bytes[0] === 0x80 && bytes[2] === 0x8a && bytes[3] === 0x0a) return 'pytorch-legacy';
  if (looksLikeSafetensors(bytes)) return 'safetensors';
  return 'unknown';
}

export type ImportOptions = TorchImportOptions;

/** Imports a checkpoint; `hint` (a file name) only sharpens error messages. */
export function importCheckpoint(bytes: Uint8Array, hint?: string, options: ImportOptions = {}): ImportedCheckpoint {
  const kind = sniffCheckpoint(bytes);
  const label = hint ? `'${hint}'` : 'the checkpoint';
  switch (kind) {
    case 'pytorch-zip':
      return importTorchZip(bytes, options);
    case 'safetensors':
      return readSafetensors(bytes);
    case 'gguf':
      throw new IteraError(
        `${label} is a GGUF model file, not a checkpoint to import: load it as a model file`,
        'CHECKPOINT_IS_GGUF',
      );
    case 'pytorch-legacy':
      throw new IteraError(
        `${label} uses PyTorch's legacy (pre-1.6) serialization, which is not supported: re-save it with a current ` +
          'torch.save (the zip format)',
        'CHECKPOINT_LEGACY',
      );
    default: {
      const ext = hint?.toLowerCase().split('.').pop();
      // A file that claims a format by name but does not parse as one: let that reader say why.
      if (ext === 'safetensors') return readSafetensors(bytes);
      if (ext === 'pt' || ext === 'pth' || ext === 'bin' || ext === 'ckpt') return importTorchZip(bytes, options);
      throw new IteraError(
        `${label} is neither a PyTorch zip checkpoint nor a safetensors file (${bytes.length} bytes)`,
        'CHECKPOINT_UNKNOWN_FORMAT',
      );
    }
  }
}

export { importTorchZip, type TorchImportOptions } from './pytorch.js';
export { readSafetensors, writeSafetensors, looksLikeSafetensors } from './safetensors.js';
export { openZip, writeZip, crc32, looksLikeZip, ZipArchive, type ZipEntry } from './zip.js';
export { unpickle, type PickleValue, type UnpickleOptions } from './pickle.js';
export { unpickleCheckpoint, allowedGlobalNames } from './torch-pickle.js';
