// The bench's JSON document: its TypeScript types, its JSON Schema (docs/bench-schema.json is this
// object, written by `itera bench --print-schema`), and a small validator for the subset of JSON
// Schema used here. docs/bench-schema.md explains every field. Platform-neutral.

import type { Diagnostics } from '../diag/schema.js';
import type { FlopsCount } from './flops.js';
import type { Baseline } from './compressors.js';

export const BENCH_SCHEMA_ID = 'itera-bench/1';

export interface Stat {
  min: number;
  median: number;
  max: number;
  n: number;
}
export interface Nullable<T> {
  value: T | null;
  reason?: string;
  source?: string;
}

export interface EngineResult {
  id: string;
  label: string;
  runtime: string;
  /** ms to create the engine's sessions from bytes in memory (ours: parse, validate, instantiate, lay weights) */
  loadMs: number;
  /** tokensPerSecond: wall clock; tokensPerCpuSecond: per second of process CPU time */
  prefill: { tokens: number; tokensPerSecond: Stat; tokensPerCpuSecond: Stat } | null;
  /** time to first token: a prompt's prefill + picking the first token */
  ttft: { promptTokens: number; ms: Stat } | null;
  decode: {
    tokens: number;
    tokensPerSecond: Stat;
    tokensPerCpuSecond: Stat;
    perTokenMs: { p50: number; p95: number; p99: number; n: number };
  } | null;
  /** ours only: generation in one call into the module */
  decodeOneCall?: { tokens: number; tokensPerSecond: Stat } | null;
  /** ours only: decode as `decode` with each sampling setting (SAMPLED_SETTINGS), and its
   *  tokens/s over greedy decode's in the same round */
  sampledDecode?: SampledDecode[];
  /** ours only: the public API, iterating model.stream() against one model.generate() call with
   *  the same settings and seed (STREAM_SETTINGS); absent in runs before it was measured */
  streamDecode?: StreamDecode[];
  score: { tokens: number; tokensPerSecond: Stat; tokensPerCpuSecond: Stat } | null;
  /** process CPU time over wall time while this engine ran (1 = one core busy) */
  cpu: { utilization: number; userMs: number; systemMs: number; wallMs: number };
  memory: { wasmBytes: Nullable<number>; rssDeltaBytes: number };
  energy: { joulesPerToken: Nullable<number> };
  /** the first greedy tokens it decoded (engines on the same model must agree) */
  decodedIds: number[];
}

/** A sampling setting our engine ran with */
export interface SettingResult {
  /** e.g. 'temperature 0.8', 'greedy' */
  name: string;
  temperature: number;
  /** 0 = off */
  topK: number;
  /** 1 = off */
  topP: number;
}

export interface SampledDecode extends SettingResult {
  /** the sampler version that ran */
  sampler: number;
  tokens: number;
  tokensPerSecond: Stat;
  /** sampled / greedy tokens per second, paired within each round (wall clock) */
  ratioToGreedy: Ratio;
  /** the same ratio on process CPU time: steadier on a shared machine */
  ratioToGreedyCpu: Ratio;
}

/** greedy or the CLI's defaults */
export interface StreamDecode extends SettingResult {
  tokens: number;
  /** stream()'s tokens per second, wall clock (the prompt's prefill included, as in generate()'s) */
  tokensPerSecond: Stat;
  /** stream() / generate() tokens per second, their runs interleaved within each round */
  ratioToGenerate: Ratio;
  /** the same ratio on process CPU time */
  ratioToGenerateCpu: Ratio;
}

export interface Ratio {
  median: number;
  min: number;
  max: number;
  n: number;
}

/** \`itera bench --length\`: quality and speed past the training context T (host/bench/length.ts) */
export interface PositionRange {
  /** token positions [from, to) in each document (position 0 is the document's first token) */
  from: number;
  to: number;
  tokens: number;
  characters: number;
  bitsPerCharacter: number;
}

export interface LengthResult {
  context: number;
  positionEmbedding: boolean;
  quality: {
    text: string;
    /** documents with at least 4T tokens (the others are skipped) */
    documents: number;
    near: PositionRange;
    far: PositionRange;
    /** far - near, bits per character */
    difference: number;
    /** The control (absent before it existed): the far positions read with near's context
     *  lengths (each half-window from T/2 tokens before it). lengthEffect = far - control: what
     *  reading past T costs the model; textEffect = control - near: how much harder the later
     *  text is. difference = lengthEffect + textEffect. */
    farShortContext?: { bitsPerCharacter: number; lengthEffect: number; textEffect: number };
    goal: string;
    met: boolean;
  } | null;
  speed: {
    tokens: number;
    early: { from: number; to: number; tokensPerSecond: Stat };
    late: { from: number; to: number; tokensPerSecond: Stat };
    /** late / early within each run */
    ratio: Stat;
    goal: string;
    met: boolean;
  };
}

export interface BenchBaselines {
  text: string;
  characters: number;
  bytes: number;
  /** the training text the compressors were given, or null (then givenTraining is null) */
  training: string | null;
  rows: Baseline[];
}

export interface ModelResult {
  path: string;
  name: string;
  /** the storage type of the weight matrices: F32, F16, Q8_0, Q4_0, or mixed */
  quant: string;
  tensorTypes: Record<string, number>;
  fileBytes: number;
  parameters: number;
  config: Record<string, unknown>;
  flops: {
    exact: FlopsCount;
    researchFormula: { value: number; formula: string };
  };
  /** characters and bitsPerCharacter: absent in runs before `--baselines` existed */
  quality: Nullable<{
    text: string;
    tokens: number;
    perplexity: number;
    bitsPerToken: number;
    characters?: number;
    bitsPerCharacter?: number;
  }>;
  /** with --length only */
  length?: LengthResult;
  load: { coldMs: number; warmMs: Stat };
  engines: EngineResult[];
  /** ours / peer, paired within each round: >1 means ours is faster */
  ratios: Record<
    string,
    {
      prefill: Ratio | null;
      decode: Ratio | null;
      score: Ratio | null;
      /** the same ratios on rates per CPU second */
      cpuTime: { prefill: Ratio | null; decode: Ratio | null; score: Ratio | null };
    }
  >;
  /** whether each peer decoded exactly our tokens */
  sameTokens: Record<string, boolean>;
  /** peers that could not run this model, with the reason */
  skipped?: Record<string, string>;
}

export interface BenchDocument {
  schema: typeof BENCH_SCHEMA_ID;
  createdAt: string;
  tool: { name: string; version: string; command: string[] };
  settings: {
    runs: number;
    warmupRuns: number;
    durationS: number | null;
    contextTokens: number | null;
    promptTokens: number | null;
    threads: 1;
    peers: string[];
    /** Our module build: the one asked for (--build), the one that ran, why they differ (the
     *  relaxed build refused on this engine), and whether its multiply-adds fused. Absent in
     *  runs before the relaxed build existed (they ran the SIMD build). */
    build?: { asked: string; ran: 'simd' | 'scalar' | 'relaxed'; note: string | null; fusedMadd: boolean | null };
  };
  diag: Diagnostics;
  models: ModelResult[];
  reference: { path: string; note: string; engines: EngineResult[] } | Nullable<never>;
  /** With --baselines: the --eval text under classic compressors, run for real (compressors.ts),
   *  alone and given the training text, in the units of the models' quality figures. */
  baselines?: BenchBaselines;
  process: { peakRssBytes: number; wallSeconds: number };
}

// ---------------------------------------------------------------------------------------------
// JSON Schema (draft 2020-12 keywords, the subset the validator below implements)

type S = Record<string, unknown>;
const num: S = { type: 'number' };
const int: S = { type: 'integer', minimum: 0 };
const str: S = { type: 'string' };
const obj = (properties: S, required = Object.keys(properties), extra = false): S => ({
  type: 'object',
  properties,
  required,
  additionalProperties: extra,
});
const stat: S = obj({ min: num, median: num, max: num, n: int });
const nullable = (value: S): S => ({
  oneOf: [
    obj({ value, source: str }, ['value', 'source']),
    obj({ value: { type: 'null' }, reason: { type: 'string', minLength: 1 } }, ['value', 'reason']),
  ],
});
const orNull = (s: S): S => ({ oneOf: [{ type: 'null' }, s] });
const reported = (value: S): S => nullable(value);
const ratio: S = obj({ median: num, min: num, max: num, n: int });
const figures: S = obj({ bytes: int, bitsPerCharacter: num, bitsPerByte: num });
const baselineRow: S = obj(
  { name: str, command: str, alone: orNull(figures), givenTraining: orNull(figures), error: str },
  ['name', 'command', 'alone', 'givenTraining'],
);
/** a sampling setting of our engine's sampledDecode and streamDecode entries */
const setting: S = { name: str, temperature: num, topK: int, topP: num };
const positionRange: S = obj({ from: int, to: int, tokens: int, characters: int, bitsPerCharacter: num });

const engine: S = obj(
  {
    id: str,
    label: str,
    runtime: str,
    loadMs: num,
    prefill: orNull(obj({ tokens: int, tokensPerSecond: stat, tokensPerCpuSecond: stat })),
    ttft: orNull(obj({ promptTokens: int, ms: stat })),
    decode: orNull(
      obj({
        tokens: int,
        tokensPerSecond: stat,
        tokensPerCpuSecond: stat,
        perTokenMs: obj({ p50: num, p95: num, p99: num, n: int }),
      }),
    ),
    decodeOneCall: orNull(obj({ tokens: int, tokensPerSecond: stat })),
    sampledDecode: {
      type: 'array',
      items: obj({
        ...setting,
        sampler: int,
        tokens: int,
        tokensPerSecond: stat,
        ratioToGreedy: ratio,
        ratioToGreedyCpu: ratio,
      }),
    },
    streamDecode: {
      type: 'array',
      items: obj({
        ...setting,
        tokens: int,
        tokensPerSecond: stat,
        ratioToGenerate: ratio,
        ratioToGenerateCpu: ratio,
      }),
    },
    score: orNull(obj({ tokens: int, tokensPerSecond: stat, tokensPerCpuSecond: stat })),
    cpu: obj({ utilization: num, userMs: num, systemMs: num, wallMs: num }),
    memory: obj({ wasmBytes: nullable(int), rssDeltaBytes: num }),
    energy: obj({ joulesPerToken: nullable(num) }),
    decodedIds: { type: 'array', items: int },
  },
  ['id', 'label', 'runtime', 'loadMs', 'prefill', 'ttft', 'decode', 'score', 'cpu', 'memory', 'energy', 'decodedIds'],
);

const flopsBreakdownKeys = [
  'embedding',
  'layerNorm',
  'inProj',
  'conv',
  'convSilu',
  'deltaProj',
  'softplusMean',
  'scan',
  'output',
  'gating',
  'outProj',
  'residual',
  'router',
  'gateSoftmax',
  'experts',
  'ffn',
  'lmHead',
];

const diagSchema: S = {
  type: 'object',
  required: ['schema', 'takenAt', 'host', 'cpu', 'memory', 'os', 'device', 'thermal', 'energy', 'wasm'],
  properties: {
    schema: { const: 'itera-diag/1' },
    takenAt: str,
    host: obj({
      kind: { enum: ['node', 'browser', 'wasi'] },
      version: str,
      arch: str,
      platform: str,
      engine: reported(str),
    }),
    cpu: obj({
      model: reported(str),
      vendor: reported(str),
      logicalCores: reported(int),
      physicalCores: reported(int),
      baseGHz: reported(num),
      minGHz: reported(num),
      maxGHz: reported(num),
      currentGHz: reported(num),
      flags: reported({ type: 'array', items: str }),
      loadAverage: reported({ type: 'array', items: num }),
    }),
    memory: obj({ totalBytes: reported(int), availableBytes: reported(int) }),
    os: obj({ name: reported(str), release: reported(str), kernel: reported(str) }),
    device: obj({ model: reported(str), revision: reported(str), virtual: reported({ type: 'boolean' }) }),
    thermal: obj({
      cpuTemperatureC: reported(num),
      throttled: reported(obj({ raw: str, flags: { type: 'array', items: str } })),
    }),
    energy: obj({ counter: reported(str) }),
    wasm: obj({
      simd: reported({ type: 'boolean' }),
      relaxedSimd: reported({ type: 'boolean' }),
      threads: reported({ type: 'boolean' }),
      bulkMemory: reported({ type: 'boolean' }),
      sharedArrayBuffer: reported({ type: 'boolean' }),
    }),
    // optional: documents written before the ceiling was measured lack it
    simdPeak: obj({ f32MulAdd: reported(num), i16DotAdd: reported(num) }),
  },
  additionalProperties: false,
};

export const BENCH_JSON_SCHEMA: S = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://itera-lite.invalid/schemas/itera-bench-1.json',
  title: 'itera bench results (itera-bench/1)',
  ...obj(
    {
      schema: { const: BENCH_SCHEMA_ID },
      createdAt: str,
      tool: obj({ name: str, version: str, command: { type: 'array', items: str } }),
      settings: obj(
        {
          runs: int,
          warmupRuns: int,
          durationS: orNull(num),
          contextTokens: orNull(int),
          promptTokens: orNull(int),
          threads: { const: 1 },
          peers: { type: 'array', items: str },
          build: obj({
            asked: str,
            ran: { enum: ['simd', 'scalar', 'relaxed'] },
            note: orNull(str),
            fusedMadd: orNull({ type: 'boolean' }),
          }),
        },
        ['runs', 'warmupRuns', 'durationS', 'contextTokens', 'promptTokens', 'threads', 'peers'],
      ),
      diag: diagSchema,
      models: {
        type: 'array',
        items: obj(
          {
            path: str,
            name: str,
            quant: str,
            tensorTypes: { type: 'object', additionalProperties: int },
            fileBytes: int,
            parameters: int,
            config: { type: 'object' },
            flops: obj({
              exact: obj({
                total: int,
                macFlops: int,
                elementwise: int,
                withoutLmHead: int,
                breakdown: obj(Object.fromEntries(flopsBreakdownKeys.map((k) => [k, int]))),
                convention: str,
              }),
              researchFormula: obj({ value: num, formula: str }),
            }),
            quality: nullable(
              obj(
                { text: str, tokens: int, perplexity: num, bitsPerToken: num, characters: int, bitsPerCharacter: num },
                ['text', 'tokens', 'perplexity', 'bitsPerToken'],
              ),
            ),
            length: obj({
              context: int,
              positionEmbedding: { type: 'boolean' },
              quality: orNull(
                obj(
                  {
                    text: str,
                    documents: int,
                    near: positionRange,
                    far: positionRange,
                    difference: num,
                    farShortContext: obj({ bitsPerCharacter: num, lengthEffect: num, textEffect: num }),
                    goal: str,
                    met: { type: 'boolean' },
                  },
                  ['text', 'documents', 'near', 'far', 'difference', 'goal', 'met'],
                ),
              ),
              speed: obj({
                tokens: int,
                early: obj({ from: int, to: int, tokensPerSecond: stat }),
                late: obj({ from: int, to: int, tokensPerSecond: stat }),
                ratio: stat,
                goal: str,
                met: { type: 'boolean' },
              }),
            }),
            load: obj({ coldMs: num, warmMs: stat }),
            engines: { type: 'array', items: engine, minItems: 1 },
            ratios: {
              type: 'object',
              additionalProperties: obj({
                prefill: orNull(ratio),
                decode: orNull(ratio),
                score: orNull(ratio),
                cpuTime: obj({ prefill: orNull(ratio), decode: orNull(ratio), score: orNull(ratio) }),
              }),
            },
            sameTokens: { type: 'object', additionalProperties: { type: 'boolean' } },
            skipped: { type: 'object', additionalProperties: str },
          },
          [
            'path',
            'name',
            'quant',
            'tensorTypes',
            'fileBytes',
            'parameters',
            'config',
            'flops',
            'quality',
            'load',
            'engines',
            'ratios',
            'sameTokens',
          ],
        ),
      },
      reference: {
        oneOf: [
          obj({ path: str, note: str, engines: { type: 'array', items: engine } }),
          obj({ value: { type: 'null' }, reason: { type: 'string', minLength: 1 } }, ['value', 'reason']),
        ],
      },
      baselines: obj({
        text: str,
        characters: int,
        bytes: int,
        training: orNull(str),
        rows: { type: 'array', items: baselineRow },
      }),
      process: obj({ peakRssBytes: int, wallSeconds: num }),
    },
    ['schema', 'createdAt', 'tool', 'settings', 'diag', 'models', 'reference', 'process'],
  ),
};

// ---------------------------------------------------------------------------------------------
// The validator: type, const, enum, properties, required, additionalProperties (false or a
// schema), items, minItems, minimum, minLength, oneOf. Returns every error with its JSON path.

export function validateAgainst(schema: S, value: unknown, path = '$'): string[] {
  const errors: string[] = [];
  const t = schema.type as string | undefined;
  if (t !== undefined && !hasType(value, t)) return [`${path}: expected ${t}, got ${describe(value)}`];
  if ('const' in schema && value !== schema.const)
    errors.push(`${path}: expected ${JSON.stringify(schema.const)}, got ${JSON.stringify(value)}`);
  if (Array.isArray(schema.enum) && !schema.enum.includes(value))
    errors.push(`${path}: expected one of ${JSON.stringify(schema.enum)}, got ${JSON.stringify(value)}`);
  if (typeof schema.minimum === 'number' && typeof value === 'number' && value < schema.minimum)
    errors.push(`${path}: ${value} is below ${schema.minimum}`);
  if (typeof schema.minLength === 'number' && typeof value === 'string' && value.length < schema.minLength)
    errors.push(`${path}: string shorter than ${schema.minLength}`);
  if (Array.isArray(schema.oneOf)) {
    const results = (schema.oneOf as S[]).map((s) => validateAgainst(s, value, path));
    const ok = results.filter((r) => r.length === 0).length;
    if (ok !== 1)
      errors.push(
        ok === 0
          ? `${path}: matches none of the alternatives (${results.map((r) => r[0]).join(' | ')})`
          : `${path}: matches ${ok} alternatives, expected exactly one`,
      );
  }
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const o = value as Record<string, unknown>;
    const props = (schema.properties ?? {}) as Record<string, S>;
    for (const r of (schema.required ?? []) as string[]) if (!(r in o)) errors.push(`${path}: missing '${r}'`);
    for (const [k, v] of Object.entries(o)) {
      if (k in props) errors.push(...validateAgainst(props[k]!, v, `${path}.${k}`));
      else if (schema.additionalProperties === false) errors.push(`${path}: unexpected property '${k}'`);
      else if (typeof schema.additionalProperties === 'object')
        errors.push(...validateAgainst(schema.additionalProperties as S, v, `${path}.${k}`));
    }
  }
  if (Array.isArray(value)) {
    if (typeof schema.minItems === 'number' && value.length < schema.minItems)
      errors.push(`${path}: fewer than ${schema.minItems} items`);
    if (schema.items) value.forEach((v, i) => errors.push(...validateAgainst(schema.items as S, v, `${path}[${i}]`)));
  }
  return errors;
}

function hasType(v: unknown, t: string): boolean {
  switch (t) {
    case 'null':
      return v === null;
    case 'boolean':
      return typeof v === 'boolean';
    case 'string':
      return typeof v === 'string';
    case 'number':
      return typeof v === 'number' && Number.isFinite(v);
    case 'integer':
      return typeof v === 'number' && Number.isInteger(v);
    case 'array':
      return Array.isArray(v);
    case 'object':
      return v !== null && typeof v === 'object' && !Array.isArray(v);
    default:
      return false;
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
  return typeof v;
}

/** Validates a bench document; [] when valid. */
export function validateBenchDocument(doc: unknown): string[] {
  return validateAgainst(BENCH_JSON_SCHEMA, doc);
}
