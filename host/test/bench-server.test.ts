// itera bench --server, short: a real run of every phase (in-process batch, HTTP with --workers 1
// and 2, overload) with few requests. It holds the run to what must hold at any speed: the batched
// jobs give generate()'s tokens, no HTTP request fails, the overload answers every client (done or
// 429, none hanging, at least workers x parallel + queue done), the document matches its schema.
// The schema committed as docs/bench-server-schema.json is the code's; committed results match it.
import t from 'tap';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel } from '../node/index.js';
import { runServerBench } from '../bench/server.js';
import { SERVER_BENCH_JSON_SCHEMA, validateServerBench } from '../bench/server-schema.js';
import { repoRoot } from './shared.js';

t.test('a short server bench: every phase runs and answers every request', async (t) => {
  const modelPath = join(repoRoot(), 'models', 'student-q8_0.gguf');
  const model = await loadModel(modelPath);
  t.teardown(() => model.dispose());
  const doc = await runServerBench({
    model,
    modelPath,
    build: 'auto',
    itera: [process.execPath, join(repoRoot(), 'bin', 'itera.js')],
    maxTokens: 16,
    rounds: 1,
    batch: 4,
    clients: 8,
    requests: 32,
    parallel: 4,
    workers: [1, 2],
    overload: { clients: 40, maxQueue: 8, parallel: 2, workers: 2, settleSeconds: 10 },
    command: ['test'],
    version: 'test',
  });
  t.same(validateServerBench(doc), [], 'matches its schema');
  for (const r of doc.inProcess) t.ok(r.sameTokens, `${r.setting}: the batch gives generate()'s tokens`);
  t.equal(doc.http.length, 4, 'two settings, with 1 and 2 workers');
  for (const r of doc.http) {
    t.equal(r.failures, 0, `--workers ${r.workers} ${r.setting}: no failed request`);
    t.ok(r.tokensPerSecond > 0, 'tokens were made');
  }
  const o = doc.overload;
  t.equal(o.completed + o.rejected429, o.clients, 'every client completed or got 429');
  t.equal(o.hung, 0, 'none hung');
  t.ok(o.completed >= o.minCompleted, `${o.completed} completed, at least ${o.minCompleted}`);
  const bad = structuredClone(doc) as unknown as Record<string, unknown>;
  delete bad.overload;
  t.match(validateServerBench(bad), [/missing 'overload'/], 'the validator notices a missing part');
});

t.test('docs/bench-server-schema.json is the schema in the code; committed results match it', async (t) => {
  const p = join(repoRoot(), 'docs', 'bench-server-schema.json');
  t.same(
    JSON.parse(readFileSync(p, 'utf8')),
    SERVER_BENCH_JSON_SCHEMA,
    "regenerate with 'itera bench --print-server-schema > docs/bench-server-schema.json'",
  );
  const dir = join(repoRoot(), 'reports', 'server');
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json')) : [];
  for (const f of files) t.same(validateServerBench(JSON.parse(readFileSync(join(dir, f), 'utf8'))), [], f);
});
