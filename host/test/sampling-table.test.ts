// The sampling table: (model, seed, temperature, top-k, top-p, prompt) -> generated token ids,
// recorded once in host/test/fixtures/sampling-table.json and reproduced here in both builds.
// The ids are kept per sampler version ("1": the sampler before the fast one) and per build: the
// scalar build's forward pass differs from the SIMD build's in the last bits of some logits (its
// LayerNorm sums in f64, the SIMD one in f32 lanes), which is enough to move a sampled draw now
// and then, so each build has its own ids (greedy ids are the same in both). A change to the
// sampler's arithmetic shows up as a failure here rather than as silently different text.
//
// To record the table (only when a sampler version is added on purpose):
//   WRITE_SAMPLING_TABLE=1 node dist/host/test/sampling-table.test.js
// It generates with both builds and keeps the ids of every other version already there.

import t from 'tap';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { IteraModel } from '../runtime/api.js';
import { BUILDS, wasmBytes, type BuildName } from './helpers.js';
import { repoRoot } from './shared.js';
import { SAMPLER_VERSION } from '../runtime/abi.js';

interface Setting {
  name: string;
  temperature: number;
  topK: number;
  topP: number;
}

interface Row extends Setting {
  model: string;
  prompt: string;
  promptIds: number[];
  seed: number;
  maxTokens: number;
  /** generated ids by sampler version, then by build */
  ids: Record<string, Partial<Record<BuildName, number[]>>>;
}

interface Table {
  note: string;
  rows: Row[];
}

const FIXTURE = join(repoRoot(), 'host/test/fixtures/sampling-table.json');
// the models the table was recorded on, kept as fixtures (fixtures/models/README.md)
const MODELS = [
  'host/test/fixtures/models/learned-pos-student-q8_0.gguf',
  'host/test/fixtures/models/learned-pos-teacher-q4_0.gguf',
];
const PROMPTS = ['The jury said', 'She looked at him and'];
const SEEDS = [1, 2, 424242];
const MAX_TOKENS = 120;

/** The settings: the bench's sampled ones (docs/bench.md) and a few more. topK -1 means V. */
const SETTINGS: Setting[] = [
  { name: 'greedy', temperature: 0, topK: 0, topP: 1 },
  { name: 'temperature 0.8', temperature: 0.8, topK: 0, topP: 1 },
  { name: 'CLI defaults', temperature: 0.8, topK: 40, topP: 0.95 },
  { name: 'top-p 0.95 alone', temperature: 1, topK: 0, topP: 0.95 },
  { name: 'temperature 0.8, top-p 0.95', temperature: 0.8, topK: 0, topP: 0.95 },
  { name: 'top-k = V', temperature: 1, topK: -1, topP: 1 },
  { name: 'top-k 5', temperature: 1, topK: 5, topP: 1 },
  { name: 'temperature 1.5, top-p 0.99', temperature: 1.5, topK: 0, topP: 0.99 },
];

/** The sampler versions the module runs. */
const VERSIONS = Array.from({ length: SAMPLER_VERSION }, (_, i) => i + 1);

function generate(m: IteraModel, r: Row, sampler: number): number[] {
  return m.generate(r.promptIds, {
    temperature: r.temperature,
    topK: r.topK,
    topP: r.topP,
    seed: r.seed,
    sampler,
    maxTokens: r.maxTokens,
    stopAtEos: false,
  }).ids;
}

async function load(path: string, build: BuildName): Promise<IteraModel> {
  return IteraModel.fromBytes(readFileSync(join(repoRoot(), path)), wasmBytes(build));
}

async function record(): Promise<void> {
  const old: Table | null = existsSync(FIXTURE) ? (JSON.parse(readFileSync(FIXTURE, 'utf8')) as Table) : null;
  const rows: Row[] = [];
  for (const path of MODELS) {
    const models = { simd: await load(path, 'simd'), scalar: await load(path, 'scalar') };
    const V = models.simd.config.vocabSize;
    for (const prompt of PROMPTS) {
      for (const s of SETTINGS) {
        for (const seed of s.temperature === 0 ? [0] : SEEDS) {
          const r: Row = {
            model: path,
            prompt,
            promptIds: models.simd.encode(prompt),
            seed,
            maxTokens: MAX_TOKENS,
            ...s,
            topK: s.topK < 0 ? V : s.topK,
            ids: {},
          };
          const before = old?.rows.find(
            (o) => o.model === r.model && o.prompt === r.prompt && o.name === r.name && o.seed === r.seed,
          );
          r.ids = { ...(before?.ids ?? {}) };
          for (const v of VERSIONS) {
            r.ids[v] ??= { simd: generate(models.simd, r, v), scalar: generate(models.scalar, r, v) };
          }
          rows.push(r);
        }
      }
    }
    models.simd.dispose();
    models.scalar.dispose();
  }
  const table: Table = {
    note: 'generated token ids by sampler version; written by host/test/sampling-table.test.ts (WRITE_SAMPLING_TABLE=1)',
    rows,
  };
  // one row per line: reviewable diffs
  const lines = rows.map((r) => '    ' + JSON.stringify(r));
  writeFileSync(FIXTURE, `{\n  "note": ${JSON.stringify(table.note)},\n  "rows": [\n${lines.join(',\n')}\n  ]\n}\n`);
  console.log(`wrote ${rows.length} rows to ${FIXTURE}`);
}

if (process.env.WRITE_SAMPLING_TABLE) {
  await record();
} else {
  const table = JSON.parse(readFileSync(FIXTURE, 'utf8')) as Table;
  t.ok(table.rows.length >= 80, `${table.rows.length} rows`);
  for (const build of Object.keys(BUILDS) as BuildName[]) {
    for (const v of VERSIONS) {
      t.test(`the sampling table, sampler ${v}, ${build} build`, async (t) => {
        for (const path of MODELS) {
          const m = await load(path, build);
          for (const r of table.rows.filter((r) => r.model === path)) {
            const want = r.ids[v]?.[build];
            if (!want) {
              t.fail(`no ids recorded for sampler ${v}, ${build}: ${r.model} ${r.name} seed ${r.seed}`);
              continue;
            }
            t.same(generate(m, r, v), want, `${path} "${r.prompt}" ${r.name} seed ${r.seed}`);
          }
          m.dispose();
        }
      });
    }
  }
}
