// Types shared by the importers, the model file and the runtime.
// host/runtime knows nothing of Node or the browser: only Uint8Array, DataView and plain objects here.

/** The model's configuration, as ../shared/spec/architecture.md names it. Never stored in a
 *  PyTorch checkpoint: read off tensor shapes there, and stored as `itera-lite.*` keys in our GGUF. */
export interface IteraConfig {
  vocabSize: number; // V
  hiddenSize: number; // d
  numLayers: number; // L
  ssmStateSize: number; // N
  ssmConvKernel: number; // K
  ssmInnerSize: number; // di = e * d
  numExperts: number; // E
  expertSize: number; // f (hidden width of an expert or of the dense FFN)
  topK: number; // k
  moeLayers: number[]; // indices of the layers that use MoE, ascending
  maxSeqLength: number; // T
  layerNormEps: number; // eps
  /** false: no learned position embedding (the conv and the scan carry order), so a session runs
   *  one step per token at any length and T is only the context it was trained with. Absent or
   *  true: the original's learned positions, T rows of them. */
  positionEmbedding?: boolean;
}

/** Element types a tensor may have on its way in (importers) or in a model file. */
export type DType = 'f32' | 'f16' | 'bf16' | 'f64' | 'i64' | 'i32' | 'i16' | 'i8' | 'u8' | 'bool' | 'qint8';

/** Bytes per element of each DType. */
export const DTYPE_SIZE: Readonly<Record<DType, number>> = {
  f32: 4,
  f16: 2,
  bf16: 2,
  f64: 8,
  i64: 8,
  i32: 4,
  i16: 2,
  i8: 1,
  u8: 1,
  bool: 1,
  qint8: 1,
};

/** One tensor as an importer found it: contiguous, row-major, little-endian raw bytes. */
export interface RawTensor {
  name: string;
  dtype: DType;
  /** PyTorch order: outermost dimension first. */
  shape: number[];
  /** Contiguous row-major little-endian bytes, shape.reduce(*) elements of dtype. */
  data: Uint8Array;
  /** Identity of the storage the tensor came from (plus offset), so that tied tensors can be
   *  recognised: two tensors with the same storageKey share their values. */
  storageKey?: string;
  /** For dtype 'qint8' (per-tensor affine): real = scale * (q - zeroPoint). */
  quant?: { scale: number; zeroPoint: number };
}

/** A clear, user-facing error: names what is wrong and, where it can, what to do next. */
export class IteraError extends Error {
  constructor(
    message: string,
    /** A short stable code for tests and machines, e.g. 'GGUF_TRUNCATED'. */
    public readonly code: string,
  ) {
    super(message);
    this.name = 'IteraError';
  }
}
