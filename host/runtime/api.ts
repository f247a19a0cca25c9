// The runtime API every host shares: load a model file into its own WebAssembly instance,
// open sessions, generate (streaming), score text, read logits. Platform-neutral: the shims
// (host/node, host/web) hand it the module's bytes or a compiled module.

import { IteraConfig, IteraError } from './types.js';
import { readModelFile } from './model-file.js';
import type { Tokenizer } from './tokenizer/index.js';
import { instantiate, SamplerSettings, validateSampler, WasmModel, WasmSession, type IteraExports } from './runtime.js';
import { fnv1a64 } from './state.js';

export interface GenerateOptions extends SamplerSettings {
  /** Most tokens to generate (default 64). */
  maxTokens?: number;
  /** Stop after the tokenizer's end-of-sequence token (default true). */
  stopAtEos?: boolean;
  /** A prompt longer than the model's T positions: 'error' (default) or 'left' (keep its last T
   *  tokens, as the original generator did). */
  truncate?: 'error' | 'left';
  /** Past T positions: 'exact' (the original's window recomputation, default) or 'slide'
   *  (an approximation that keeps the recurrent state; much faster past T). */
  window?: 'exact' | 'slide';
  /** Stops the generation: stream() checks it before every token and ends with an IteraError
   *  of code 'ABORTED' (its session freed at once, even while the stream waits for its reader);
   *  generate(), one synchronous call, checks it before it begins and after the prompt. */
  signal?: AbortSignal;
}

export interface GeneratedToken {
  id: number;
  /** The text this token adds to the output so far. */
  text: string;
  /** Milliseconds spent in the module for this token (sampling and the forward step). */
  ms: number;
}

export interface GenerationResult {
  promptIds: number[];
  ids: number[];
  text: string;
  /** Milliseconds: prompt prefill, then all generated tokens. */
  prefillMs: number;
  decodeMs: number;
}

export interface ScoreResult {
  /** Tokens the text encodes to. */
  tokens: number;
  /** Tokens that were predicted (every token after the first of each window). */
  predicted: number;
  characters: number;
  /** Sum of -ln p over predicted tokens (nats). */
  nll: number;
  /** Total log-likelihood = -nll. */
  logLikelihood: number;
  perplexity: number;
  bitsPerToken: number;
  /** -log2 likelihood divided by the characters of the text. */
  bitsPerCharacter: number;
}

export interface ModelInfo {
  name: string;
  config: IteraConfig;
  parameters: number;
  fileBytes: number;
  /** Bytes of weights laid into the module's memory. */
  weightBytes: number;
  tensorTypes: Record<string, number>;
  simd: boolean;
  /** The module build that runs this model: 'simd' (the default, the same bits on every host),
   *  'scalar', or 'relaxed' (fused multiply-adds where the CPU has them; docs/runtime.md). */
  build: 'simd' | 'scalar' | 'relaxed';
  /** Why this build runs, when another was asked for (the relaxed build refused here), else null. */
  buildNote: string | null;
  tokenizer: string;
}

/** -ln softmax(row)[target], computed stably. */
export function tokenNll(row: Float32Array, target: number): number {
  let mx = -Infinity;
  for (let v = 0; v < row.length; v++) mx = Math.max(mx, row[v]);
  let sum = 0;
  for (let v = 0; v < row.length; v++) sum += Math.exp(row[v] - mx);
  return Math.log(sum) + mx - row[target];
}

/** Clamps nothing, checks everything a user can get wrong about generation options. */
export function validateGenerate(o: GenerateOptions, vocabSize: number): void {
  validateSampler(o, vocabSize);
  const max = o.maxTokens ?? 64;
  if (!Number.isInteger(max) || max < 0)
    throw new IteraError(`max tokens must be a whole number >= 0, got ${max}`, 'BAD_PARAM');
  if (o.truncate !== undefined && o.truncate !== 'error' && o.truncate !== 'left') {
    throw new IteraError(`truncate must be 'error' or 'left', got '${o.truncate}'`, 'BAD_PARAM');
  }
  if (o.window !== undefined && o.window !== 'exact' && o.window !== 'slide') {
    throw new IteraError(`window must be 'exact' or 'slide', got '${o.window}'`, 'BAD_PARAM');
  }
  const signal: unknown = o.signal;
  if (
    signal !== undefined &&
    (typeof signal !== 'object' ||
      signal === null ||
      typeof (signal as AbortSignal).aborted !== 'boolean' ||
      typeof (signal as AbortSignal).addEventListener !== 'function')
  ) {
    throw new IteraError('signal must be an AbortSignal', 'BAD_PARAM');
  }
}

/** The error an aborted generation ends with: code 'ABORTED', named like the platform's
 *  AbortError, with the signal's reason as its cause. */
export function abortedError(signal: AbortSignal): IteraError {
  const r: unknown = signal.reason;
  const why = r instanceof Error ? r.message : typeof r === 'string' ? r : '';
  const e = new IteraError(`generation aborted${why ? ': ' + why : ''}`, 'ABORTED');
  e.name = 'AbortError';
  (e as { cause?: unknown }).cause = r;
  return e;
}

/** What a loaded model remembers of its file: everything but the tensor bytes. */
export interface ModelSummary {
  name: string;
  config: IteraConfig;
  tiedEmbeddings: boolean;
  tokenizer: Tokenizer;
  tensors: Map<string, { type: number; shape: number[] }>;
}

export class IteraModel {
  protected constructor(
    readonly ex: IteraExports,
    /** The model file without its tensor bytes (those live in the module's memory only). */
    readonly file: ModelSummary,
    readonly wasmModel: WasmModel,
    readonly fileBytes: number,
    /** Milliseconds to parse, validate, instantiate and lay the weights into memory. */
    readonly loadMs: number,
  ) {}

  /** Set by a host that loaded another build than the one asked for: why (see ModelInfo). */
  buildNote: string | null = null;

  /** Reads a model file (validating all of it) into a fresh instance of the module. */
  static async fromBytes(
    modelBytes: Uint8Array,
    wasm: BufferSource | WebAssembly.Module,
    now: () => number = () => Date.now(),
  ): Promise<IteraModel> {
    const t0 = now();
    const file = readModelFile(modelBytes);
    const ex = await instantiate(wasm);
    const wasmModel = new WasmModel(
      ex,
      file.config,
      { config: file.config, tensor: (name: string) => file.tensors.get(name) ?? null },
      fnv1a64(modelBytes),
    );
    const summary: ModelSummary = {
      name: file.name,
      config: file.config,
      tiedEmbeddings: file.tiedEmbeddings,
      tokenizer: file.tokenizer,
      tensors: new Map([...file.tensors].map(([n, t]) => [n, { type: t.type, shape: t.shape }])),
    };
    return new IteraModel(ex, summary, wasmModel, modelBytes.byteLength, now() - t0);
  }

  get config(): IteraConfig {
    return this.file.config;
  }
  get tokenizer(): Tokenizer {
    return this.file.tokenizer;
  }

  info(): ModelInfo {
    const tensorTypes: Record<string, number> = {};
    let parameters = 0;
    for (const [name, t] of this.file.tensors) {
      tensorTypes[name] = t.type;
      parameters += t.shape.reduce((a, b) => a * b, 1);
    }
    return {
      name: this.file.name,
      config: this.config,
      parameters,
      fileBytes: this.fileBytes,
      weightBytes: this.wasmModel.weightBytes,
      tensorTypes,
      simd: this.ex.has_simd() === 1,
      build: this.ex.has_relaxed() === 1 ? 'relaxed' : this.ex.has_simd() === 1 ? 'simd' : 'scalar',
      buildNote: this.buildNote,
      tokenizer: this.tokenizer.kind,
    };
  }

  /** Bytes of the module's linear memory right now (weights, sessions, scratch). */
  memoryBytes(): number {
    return this.ex.memory.buffer.byteLength;
  }

  session(): WasmSession {
    return this.wasmModel.newSession();
  }

  /** A new session continuing a state saved by session.save() from this model file (in this
   *  instance or another, on any host with the same build). Throws an IteraError with a STATE_*
   *  code when the bytes belong to another model file, build or sampler version, or were changed,
   *  truncated or extended (see WasmSession.restore). */
  restore(bytes: Uint8Array): WasmSession {
    return this.wasmModel.restore(bytes);
  }

  /** FNV-1a 64 of the model file, as saved states carry it (16 hex digits). */
  get modelHash(): string {
    return Array.from(this.wasmModel.modelHash, (b) => b.toString(16).padStart(2, '0')).join('');
  }

  encode(text: string): number[] {
    return this.tokenizer.encode(text);
  }
  decode(ids: readonly number[]): string {
    return this.tokenizer.decode(ids);
  }

  /** The prompt as ids, checked: not empty, in range, within T (or cut to its last T). */
  promptIds(prompt: string | readonly number[], truncate: 'error' | 'left' = 'error'): number[] {
    const ids = typeof prompt === 'string' ? this.encode(prompt) : Array.from(prompt);
    if (ids.length === 0) {
      throw new IteraError(
        typeof prompt === 'string'
          ? 'empty prompt: it has no tokens; give some text (for example --prompt "Once upon a time")'
          : 'empty prompt: give at least one token id',
        'EMPTY_PROMPT',
      );
    }
    const T = this.config.maxSeqLength;
    // a position-free model has no position limit: any prompt runs one step per token
    if (ids.length > T && this.config.positionEmbedding !== false) {
      if (truncate === 'left') return ids.slice(ids.length - T);
      throw new IteraError(
        `prompt is ${ids.length} tokens, past this model's context of ${T} positions: shorten it, or keep its last ${T} tokens as the original generator did (--truncate left)`,
        'PROMPT_TOO_LONG',
      );
    }
    return ids;
  }

  /** A session with the options applied and the prompt fed: what stream() and generate() share. */
  private begin(
    prompt: string | readonly number[],
    o: GenerateOptions,
    now: () => number,
  ): { s: WasmSession; promptIds: number[]; prefillMs: number; eos: number } {
    validateGenerate(o, this.config.vocabSize);
    const promptIds = this.promptIds(prompt, o.truncate);
    if (o.signal?.aborted) throw abortedError(o.signal);
    const s = this.session();
    try {
      s.setWindow(o.window ?? 'exact');
      s.setSampler(o);
      const t0 = now();
      s.prefill(promptIds);
      if (o.signal?.aborted) throw abortedError(o.signal);
      return { s, promptIds, prefillMs: now() - t0, eos: (o.stopAtEos ?? true) ? this.tokenizer.eos : -1 };
    } catch (e) {
      s.free();
      throw e;
    }
  }

  /** Streams generated tokens as they are made: one call into the module per token. */
  async *stream(
    prompt: string | readonly number[],
    o: GenerateOptions = {},
    now: () => number = () => performance.now(),
  ): AsyncGenerator<GeneratedToken, GenerationResult> {
    const { s, promptIds, prefillMs, eos } = this.begin(prompt, o, now);
    // an abort frees the session at once, even while this stream waits at a yield for a reader
    // that may never come back; the loop below then ends with ABORTED before touching it
    const signal = o.signal;
    const onAbort = (): void => s.free();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const max = o.maxTokens ?? 64;
      const ids: number[] = [];
      let text = '';
      let decodeMs = 0;
      // this stream's own decoder: a byte-level tokenizer holds back incomplete UTF-8 characters,
      // which the last token's piece flushes
      const dec = this.tokenizer.streamDecoder();
      for (let i = 0; i < max; i++) {
        if (signal?.aborted) throw abortedError(signal);
        const a = now();
        const id = s.next();
        const ms = now() - a;
        decodeMs += ms;
        ids.push(id);
        const last = id === eos || i === max - 1;
        const piece = dec.push(id) + (last ? dec.end() : '');
        text += piece;
        yield { id, text: piece, ms };
        if (id === eos) break;
      }
      return { promptIds, ids, text, prefillMs, decodeMs };
    } finally {
      signal?.removeEventListener('abort', onAbort);
      s.free();
    }
  }

  /** Generates in one call into the module (no streaming). */
  generate(
    prompt: string | readonly number[],
    o: GenerateOptions = {},
    now: () => number = () => performance.now(),
  ): GenerationResult {
    const { s, promptIds, prefillMs, eos } = this.begin(prompt, o, now);
    try {
      const t1 = now();
      const ids = s.generate(o.maxTokens ?? 64, eos);
      const t2 = now();
      return { promptIds, ids, text: this.decode(ids), prefillMs, decodeMs: t2 - t1 };
    } finally {
      s.free();
    }
  }

  /** Logits of every position [n][V]: by prefill (default) or one token at a time (step). */
  logits(ids: readonly number[], opts: { step?: boolean; window?: 'exact' | 'slide' } = {}): Float32Array {
    const s = this.session();
    try {
      s.setWindow(opts.window ?? 'exact');
      if (!opts.step) return s.prefill(ids, true)!;
      const V = this.config.vocabSize;
      if (ids.length === 0) throw new IteraError('empty input: give at least one token id', 'EMPTY_PROMPT');
      const out = new Float32Array(ids.length * V);
      for (let i = 0; i < ids.length; i++) {
        s.prefill([ids[i]]);
        out.set(s.logits(), i * V);
      }
      return out;
    } finally {
      s.free();
    }
  }

  /** Log-likelihood of a text (or ids) under the model, in windows of T tokens that overlap by
   *  T - stride: every token after the first is predicted once, with at least T - stride tokens
   *  of context when the text is longer than T. stride defaults to T / 2. */
  score(
    input: string | readonly number[],
    opts: { stride?: number; stream?: 'exact' | 'slide'; onProgress?: (done: number, total: number) => void } = {},
  ): ScoreResult {
    const ids = typeof input === 'string' ? this.encode(input) : Array.from(input);
    if (ids.length < 2)
      throw new IteraError(`need at least 2 tokens to score, the text has ${ids.length}`, 'TOO_SHORT');
    const T = this.config.maxSeqLength;
    const V = this.config.vocabSize;
    if (opts.stream) return this.scoreStream(input, ids, opts.stream);
    // a position-free model reads any length at one step per token: one pass, no windows
    if (this.config.positionEmbedding === false && opts.stride === undefined)
      return this.scoreStream(input, ids, 'exact');
    const stride = opts.stride ?? Math.max(1, Math.floor(T / 2));
    if (!Number.isInteger(stride) || stride < 1 || stride > T)
      throw new IteraError(`stride must be a whole number from 1 to ${T}, got ${stride}`, 'BAD_PARAM');
    const s = this.session();
    let nll = 0;
    let predicted = 0;
    try {
      // window w covers ids[start, start+T); it scores targets from `from` on (earlier ones were scored before)
      let scoredUpTo = 1; // ids[0] has no prediction
      for (let start = 0; scoredUpTo < ids.length; start += stride) {
        const end = Math.min(start + T, ids.length);
        s.reset();
        const logits = s.prefill(ids.slice(start, end), true)!;
        for (let t = Math.max(scoredUpTo, start + 1); t < end; t++) {
          nll += tokenNll(logits.subarray((t - 1 - start) * V, (t - start) * V), ids[t]);
          predicted++;
        }
        scoredUpTo = end;
        opts.onProgress?.(end, ids.length);
        if (end === ids.length) break;
      }
    } finally {
      s.free();
    }
    return this.scoreResult(input, ids, nll, predicted);
  }

  /** The figures of a score from its total negative log-likelihood (nats) over `predicted` tokens. */
  private scoreResult(input: string | readonly number[], ids: number[], nll: number, predicted: number): ScoreResult {
    const characters = typeof input === 'string' ? input.length : this.decode(ids).length;
    const bits = nll / Math.LN2;
    return {
      tokens: ids.length,
      predicted,
      characters,
      nll,
      logLikelihood: -nll,
      perplexity: Math.exp(nll / predicted),
      bitsPerToken: bits / predicted,
      bitsPerCharacter: bits / Math.max(1, characters),
    };
  }

  /** Scores the whole text as one stream through one session: every token after the first is
   *  predicted from all that came before, within the window mode's handling of the position
   *  limit ('exact': the last T tokens recomputed per token; 'slide': the recurrent state kept). */
  private scoreStream(input: string | readonly number[], ids: number[], mode: 'exact' | 'slide'): ScoreResult {
    const V = this.config.vocabSize;
    const s = this.session();
    let nll = 0;
    try {
      s.setWindow(mode);
      const chunk = 256;
      let prev: Float32Array | null = null;
      for (let i = 0; i < ids.length; i += chunk) {
        const part = ids.slice(i, i + chunk);
        const lg = s.prefill(part, true)!;
        for (let j = 0; j < part.length; j++) {
          const t = i + j;
          if (t === 0) continue;
          nll += tokenNll(j === 0 ? prev! : lg.subarray((j - 1) * V, j * V), ids[t]);
        }
        prev = lg.slice((part.length - 1) * V);
      }
    } finally {
      s.free();
    }
    const predicted = ids.length - 1;
    return this.scoreResult(input, ids, nll, predicted);
  }

  dispose(): void {
    this.wasmModel.free();
  }
}
