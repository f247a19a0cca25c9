// The JSON document of `itera bench --server` (itera-bench-server/1), its JSON Schema (committed
// as docs/bench-server-schema.json) and a validator. A document of its own beside itera-bench/1:
// the server's figures share no field with a model's, and both stay strict.

import type { Stat } from './schema.js';
import { validateAgainst } from './schema.js';

export const SERVER_BENCH_ID = 'itera-bench-server/1';

/** What a run was asked for (the input's and the document's). */
export interface ServerBenchSettings {
  /** completion tokens per request */
  maxTokens: number;
  /** rounds of the in-process comparison */
  rounds: number;
  /** sequences at once in the in-process batch */
  batch: number;
  /** HTTP: concurrent streaming clients, requests per (workers, setting), and slots in all, split
   *  evenly over the workers (each HttpResult's `parallel` is its slots per worker) */
  clients: number;
  requests: number;
  parallel: number;
  /** worker counts for the HTTP phase (1 and the default) */
  workers: number[];
}

export interface InProcessResult {
  setting: string;
  jobs: number;
  batch: number;
  singleTokensPerSecond: Stat;
  batchedTokensPerSecond: Stat;
  /** batched / single, paired within each round */
  ratio: Stat;
  /** mean decode batch (the /metrics histogram's sum / count) in each round */
  meanBatch: Stat;
  /** the batched jobs gave generate()'s tokens, every one */
  sameTokens: boolean;
  goal: { ratio: number; meanBatch: number; met: boolean };
}

export interface HttpResult {
  workers: number;
  parallel: number;
  clients: number;
  setting: string;
  requests: number;
  failures: number;
  errors?: string[];
  seconds: number;
  tokensPerSecond: number;
  /** aggregate tokens/s / single-stream generate() tokens/s of the in-process phase */
  ratio: number;
  ttftMs: { p50: number; p99: number };
  meanBatch: number;
  goal: { ratio: number; ttftP99Ms: number; met: boolean };
}

export interface OverloadResult {
  workers: number;
  parallel: number;
  maxQueue: number;
  clients: number;
  setting: string;
  seconds: number;
  completed: number;
  rejected429: number;
  /** neither completed nor 429 */
  other: number;
  hung: number;
  minCompleted: number;
  rssBytes: { idle: number | null; peak: number | null; after: number | null };
  rssRatio: number | null;
  goal: { met: boolean };
}

export interface ServerBenchDocument {
  schema: typeof SERVER_BENCH_ID;
  createdAt: string;
  tool: { name: string; version: string; command: string[] };
  machine: {
    cpu: string;
    cores: number;
    node: string;
    loadAverageBefore: number[];
    loadAverageAfter: number[];
    note: string;
  };
  settings: ServerBenchSettings & { model: string; promptTokens: number[] };
  /** generate() tokens/s by setting (median over the rounds): every ratio's denominator */
  singleStream: Record<string, number>;
  inProcess: InProcessResult[];
  http: HttpResult[];
  overload: OverloadResult;
  wallSeconds: number;
}

type S = Record<string, unknown>;
const num: S = { type: 'number' };
const int: S = { type: 'integer', minimum: 0 };
const str: S = { type: 'string' };
const bool: S = { type: 'boolean' };
const orNull = (s: S): S => ({ oneOf: [s, { type: 'null' }] });
const arr = (items: S): S => ({ type: 'array', items });
const obj = (properties: S, optional: string[] = []): S => ({
  type: 'object',
  properties,
  required: Object.keys(properties).filter((k) => !optional.includes(k)),
  additionalProperties: false,
});
const stat = obj({ min: num, median: num, max: num, n: int });

export const SERVER_BENCH_JSON_SCHEMA: S = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://itera-lite.invalid/schemas/itera-bench-server-1.json',
  title: 'itera bench --server results (itera-bench-server/1)',
  ...obj({
    schema: { const: SERVER_BENCH_ID },
    createdAt: str,
    tool: obj({ name: str, version: str, command: arr(str) }),
    machine: obj({
      cpu: str,
      cores: int,
      node: str,
      loadAverageBefore: arr(num),
      loadAverageAfter: arr(num),
      note: str,
    }),
    settings: obj({
      model: str,
      maxTokens: int,
      promptTokens: arr(int),
      rounds: int,
      batch: int,
      clients: int,
      requests: int,
      parallel: int,
      workers: arr(int),
    }),
    singleStream: { type: 'object', additionalProperties: num },
    inProcess: arr(
      obj({
        setting: str,
        jobs: int,
        batch: int,
        singleTokensPerSecond: stat,
        batchedTokensPerSecond: stat,
        ratio: stat,
        meanBatch: stat,
        sameTokens: bool,
        goal: obj({ ratio: num, meanBatch: num, met: bool }),
      }),
    ),
    http: arr(
      obj(
        {
          workers: int,
          parallel: int,
          clients: int,
          setting: str,
          requests: int,
          failures: int,
          errors: arr(str),
          seconds: num,
          tokensPerSecond: num,
          ratio: num,
          ttftMs: obj({ p50: num, p99: num }),
          meanBatch: num,
          goal: obj({ ratio: num, ttftP99Ms: num, met: bool }),
        },
        ['errors'],
      ),
    ),
    overload: obj({
      workers: int,
      parallel: int,
      maxQueue: int,
      clients: int,
      setting: str,
      seconds: num,
      completed: int,
      rejected429: int,
      other: int,
      hung: int,
      minCompleted: int,
      rssBytes: obj({ idle: orNull(int), peak: orNull(int), after: orNull(int) }),
      rssRatio: orNull(num),
      goal: obj({ met: bool }),
    }),
    wallSeconds: num,
  }),
};

export function validateServerBench(doc: unknown): string[] {
  return validateAgainst(SERVER_BENCH_JSON_SCHEMA, doc);
}
