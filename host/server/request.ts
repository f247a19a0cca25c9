// Reading an OpenAI-style completion request: every field we use is checked for its type and range,
// and a wrong one is a 400 that names it. Fields we do not know are ignored, as OpenAI's clients
// send more than any one server uses.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string = 'invalid_request_error',
    readonly param: string | null = null,
    readonly code: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  body(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export function badParam(param: string, message: string, code = 'invalid_value'): ApiError {
  return new ApiError(400, message, 'invalid_request_error', param, code);
}

export interface CompletionParams {
  /** Text, or token ids. Absent only where a kept session continues. */
  prompt: string | number[] | undefined;
  maxTokens: number;
  temperature: number;
  topP: number;
  topK: number;
  seed: number | undefined;
  stop: string[];
  /** null: off; 0..5: the chosen token's logprob and that many alternatives. */
  logprobs: number | null;
  stream: boolean;
  echo: boolean;
  /** Keep the last tokens of a prompt past the context, instead of a 400. */
  truncate: boolean;
  /** Ignore the end-of-sequence token (generate max_tokens). */
  ignoreEos: boolean;
  /** Add prompt_token_ids and token_ids to each choice. */
  returnTokenIds: boolean;
  includeUsageChunk: boolean;
}

export interface Limits {
  maxTokens: number;
}

type Body = Record<string, unknown>;

function present(b: Body, k: string): boolean {
  return b[k] !== undefined && b[k] !== null;
}

function number(b: Body, k: string, def: number, o: { int?: boolean; min?: number; max?: number } = {}): number {
  if (!present(b, k)) return def;
  const v = b[k];
  if (typeof v !== 'number' || !Number.isFinite(v))
    throw badParam(k, `'${k}' must be a number, got ${describe(v)}`, 'invalid_type');
  if (o.int && !Number.isInteger(v)) throw badParam(k, `'${k}' must be a whole number, got ${v}`);
  if (o.min !== undefined && v < o.min) throw badParam(k, `'${k}' must be at least ${o.min}, got ${v}`);
  if (o.max !== undefined && v > o.max) throw badParam(k, `'${k}' must be at most ${o.max}, got ${v}`);
  return v;
}

function bool(b: Body, k: string, def: boolean): boolean {
  if (!present(b, k)) return def;
  if (typeof b[k] !== 'boolean')
    throw badParam(k, `'${k}' must be true or false, got ${describe(b[k])}`, 'invalid_type');
  return b[k] as boolean;
}

export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `a string`;
  return `${typeof v === 'object' ? 'an object' : `a ${typeof v}`}`;
}

/** A prompt: a string, an array of one string, or an array of token ids. */
export function readPrompt(b: Body, k: string, required: boolean): string | number[] | undefined {
  const p = b[k];
  if (p === undefined || p === null) {
    if (required) throw badParam(k, `'${k}' is required: text or an array of token ids`, 'missing');
    return undefined;
  }
  if (typeof p === 'string') return p;
  if (Array.isArray(p)) {
    if (p.length === 1 && typeof p[0] === 'string') return p[0];
    if (p.every((x) => typeof x === 'number')) {
      if (!p.every((x) => Number.isInteger(x) && x >= 0))
        throw badParam(k, `'${k}' as token ids must hold whole numbers >= 0`);
      return p as number[];
    }
    if (p.every((x) => typeof x === 'string' || Array.isArray(x)))
      throw badParam(k, `'${k}': this server takes one prompt per request, got ${p.length}`, 'unsupported');
  }
  throw badParam(k, `'${k}' must be a string or an array of token ids, got ${describe(p)}`, 'invalid_type');
}

export function readCompletion(b: Body, limits: Limits, promptRequired = true): CompletionParams {
  if (present(b, 'model') && typeof b.model !== 'string')
    throw badParam('model', `'model' must be a string, got ${describe(b.model)}`, 'invalid_type');
  const prompt = readPrompt(b, 'prompt', promptRequired);
  const maxTokens = number(b, 'max_tokens', Math.min(16, limits.maxTokens), { int: true, min: 0 });
  if (maxTokens > limits.maxTokens)
    throw badParam(
      'max_tokens',
      `'max_tokens' is ${maxTokens}, above this server's cap of ${limits.maxTokens} (itera serve --max-tokens)`,
      'max_tokens_too_large',
    );
  const temperature = number(b, 'temperature', 1, { min: 0, max: 2 });
  const topP = number(b, 'top_p', 1, { min: 0, max: 1 });
  if (topP === 0) throw badParam('top_p', `'top_p' must be greater than 0 and at most 1, got 0`);
  const topK = number(b, 'top_k', 0, { int: true, min: 0 });
  const seed = present(b, 'seed')
    ? number(b, 'seed', 0, { int: true, min: 0, max: Number.MAX_SAFE_INTEGER })
    : undefined;
  let stop: string[] = [];
  if (present(b, 'stop')) {
    const s = b.stop;
    if (typeof s === 'string') stop = [s];
    else if (Array.isArray(s) && s.every((x) => typeof x === 'string')) stop = s as string[];
    else throw badParam('stop', `'stop' must be a string or an array of strings, got ${describe(s)}`, 'invalid_type');
    if (stop.length > 16) throw badParam('stop', `'stop' may hold at most 16 strings, got ${stop.length}`);
    if (stop.some((x) => x.length > 256)) throw badParam('stop', `a 'stop' string may be at most 256 characters long`);
    stop = stop.filter((x) => x !== '');
  }
  let logprobs: number | null = null;
  if (present(b, 'logprobs')) {
    // OpenAI's completions take an integer (0..5); true is taken as 0
    if (b.logprobs === true) logprobs = 0;
    else if (b.logprobs !== false) logprobs = number(b, 'logprobs', 0, { int: true, min: 0, max: 5 });
  }
  const n = number(b, 'n', 1, { int: true, min: 1 });
  if (n !== 1) throw badParam('n', `'n' must be 1: this server makes one completion per request`, 'unsupported');
  const bestOf = number(b, 'best_of', 1, { int: true, min: 1 });
  if (bestOf !== 1) throw badParam('best_of', `'best_of' must be 1 on this server`, 'unsupported');
  for (const k of ['presence_penalty', 'frequency_penalty']) {
    if (number(b, k, 0) !== 0) throw badParam(k, `'${k}' is not supported by this server: leave it 0`, 'unsupported');
  }
  if (present(b, 'logit_bias') && (typeof b.logit_bias !== 'object' || Array.isArray(b.logit_bias)))
    throw badParam('logit_bias', `'logit_bias' must be an object`, 'invalid_type');
  if (present(b, 'logit_bias') && Object.keys(b.logit_bias as object).length > 0)
    throw badParam('logit_bias', `'logit_bias' is not supported by this server`, 'unsupported');
  if (present(b, 'suffix')) throw badParam('suffix', `'suffix' is not supported by this server`, 'unsupported');
  let truncate = false;
  if (present(b, 'truncate')) {
    if (b.truncate !== 'left' && b.truncate !== 'error')
      throw badParam('truncate', `'truncate' must be "left" (keep the prompt's last tokens) or "error"`);
    truncate = b.truncate === 'left';
  }
  let includeUsageChunk = false;
  if (present(b, 'stream_options')) {
    const so = b.stream_options;
    if (typeof so !== 'object' || Array.isArray(so))
      throw badParam('stream_options', `'stream_options' must be an object`, 'invalid_type');
    includeUsageChunk = bool(so as Body, 'include_usage', false);
  }
  return {
    prompt,
    maxTokens,
    temperature,
    topP,
    topK,
    seed,
    stop,
    logprobs,
    stream: bool(b, 'stream', false),
    echo: bool(b, 'echo', false),
    truncate,
    ignoreEos: bool(b, 'ignore_eos', false),
    returnTokenIds: bool(b, 'return_token_ids', false),
    includeUsageChunk,
  };
}
