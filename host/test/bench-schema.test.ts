// The bench's JSON document: a real (short) run with ONNX Runtime native beside us matches the
// schema; the validator catches missing fields, wrong types and a null without a reason; the
// schema committed as docs/bench-schema.json is the one in the code; committed results match it;
// the console summary and the report show our API's stream() / generate() ratios.
import t from 'tap';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { runBench } from '../bench/runner.js';
import { formatBench } from '../cli/commands/bench.js';
import { buildReport } from '../report/report.js';
import { BENCH_JSON_SCHEMA, validateAgainst, validateBenchDocument, type BenchDocument } from '../bench/schema.js';
import { collectDiagnostics } from '../diag/node.js';
import { convertReference } from './reference-model.js';
import { needShared, repoRoot } from './shared.js';

let doc: BenchDocument | null = null;

async function shortRun(): Promise<BenchDocument> {
  if (doc) return doc;
  doc = await runBench({
    models: [{ path: 'micro (in memory)', bytes: convertReference() }],
    wasm: readFileSync(join(repoRoot(), 'build', 'itera.wasm')),
    runs: 2,
    durationS: null,
    peers: ['ort-node'],
    reference: { reason: 'not in this test' },
    contextTokens: 16,
    promptTokens: 4,
    evalText: {
      name: 'a sentence',
      text: 'once upon a time there was a little girl . she liked to play in the park with her dog .',
    },
    energy: { meter: null, reason: 'no RAPL in this test' },
    ortWasmDir: pathToFileURL(join(repoRoot(), 'node_modules', 'onnxruntime-web', 'dist') + '/').href,
    diag: await collectDiagnostics(),
    tool: { name: 'itera', version: 'test', command: ['itera', 'bench'] },
  });
  return doc;
}

t.test(
  'a short real run matches the schema',
  needShared('reference/checkpoints/itera_lite_micro_distilled.pt'),
  async (t) => {
    const d = await shortRun();
    t.same(validateBenchDocument(d), [], 'valid');
    const m = d.models[0]!;
    t.same(
      m.engines.map((e) => e.id),
      ['itera', 'ort-node'],
    );
    t.equal(m.flops.exact.total, 561566);
    t.equal(m.flops.researchFormula.value, 57344);
    t.equal(m.parameters, 293656);
    t.equal(m.quant, 'F32');
    t.equal(m.sameTokens['ort-node'], true, 'ONNX Runtime decoded exactly our greedy tokens');
    const ours = m.engines[0]!;
    t.equal(ours.decode!.tokens, 15);
    t.equal(ours.decode!.tokensPerSecond.n, 2, 'one sample per round');
    t.equal(ours.decode!.perTokenMs.n, 30, 'every token timed');
    t.ok(
      ours.decode!.perTokenMs.p50 <= ours.decode!.perTokenMs.p95 &&
        ours.decode!.perTokenMs.p95 <= ours.decode!.perTokenMs.p99,
    );
    t.ok(ours.memory.wasmBytes.value! > 0);
    t.equal(ours.energy.joulesPerToken.value, null);
    t.equal(ours.energy.joulesPerToken.reason, 'no RAPL in this test');
    t.ok(m.ratios['ort-node']!.decode!.median > 0);
    t.ok(m.quality.value!.perplexity > 1);
    t.same(d.reference, { value: null, reason: 'not in this test' });
    // the public API: stream() against generate(), greedy and the CLI's defaults (the run itself
    // throws if they give different tokens); no speed is asserted, only that the figures exist
    t.same(
      ours.streamDecode!.map((x) => [x.name, x.temperature, x.topK, x.topP, x.tokens]),
      [
        ['greedy', 0, 0, 1, 15],
        ['CLI defaults (0.8, top-k 40, top-p 0.95)', 0.8, 40, 0.95, 15],
      ],
    );
    for (const x of ours.streamDecode!) {
      t.equal(x.tokensPerSecond.n, 2, `${x.name}: one sample per round`);
      for (const r of [x.ratioToGenerate, x.ratioToGenerateCpu]) {
        t.equal(r.n, 2);
        t.ok(r.min > 0 && Number.isFinite(r.max) && r.min <= r.median && r.median <= r.max, `${x.name}: a ratio`);
      }
    }
    t.notOk(m.engines[1]!.streamDecode, 'ours only');
  },
);

t.test(
  'the console summary and the report show stream() / generate()',
  needShared('reference/checkpoints/itera_lite_micro_distilled.pt'),
  async (t) => {
    const d = await shortRun();
    const [greedy, cli] = d.models[0]!.engines[0]!.streamDecode!;
    const summary = formatBench(d);
    t.match(summary, /stream\(\) \/ generate\(\) .*goal: at least 0\.90/);
    t.match(summary, new RegExp(`\\n  greedy +.* ${greedy!.ratioToGenerate.median.toFixed(2)}x \\(`));
    const md = buildReport([{ file: 'short run', doc: d }], { png: false, generatedBy: 'test' }).markdown;
    t.match(md, /## stream\(\) \/ generate\(\)\n[^#]*Goal \(issue 17\): each at least 0\.90/);
    t.match(md, '| model | greedy | CLI defaults (0.8, top-k 40, top-p 0.95) |');
    for (const x of [greedy!, cli!])
      t.match(md, `**${x.ratioToGenerate.median.toFixed(2)}** (${x.ratioToGenerateCpu.median.toFixed(2)})`);
  },
);

t.test(
  'two peers: a phase each, ONNX Runtime native first, each ratio paired with our rounds of its own phase',
  needShared('reference/checkpoints/itera_lite_micro_distilled.pt'),
  async (t) => {
    const d = await runBench({
      models: [{ path: 'micro (in memory)', bytes: convertReference() }],
      wasm: readFileSync(join(repoRoot(), 'build', 'itera.wasm')),
      runs: 2,
      durationS: null,
      peers: ['ort-web', 'ort-node'],
      reference: { reason: 'not in this test' },
      contextTokens: 16,
      promptTokens: 4,
      evalText: { reason: 'not in this test' },
      energy: { meter: null, reason: 'no RAPL in this test' },
      ortWasmDir: pathToFileURL(join(repoRoot(), 'node_modules', 'onnxruntime-web', 'dist') + '/').href,
      diag: await collectDiagnostics(),
      tool: { name: 'itera', version: 'test', command: ['itera', 'bench'] },
    });
    t.same(validateBenchDocument(d), [], 'valid');
    const m = d.models[0]!;
    t.same(
      m.engines.map((e) => e.id),
      ['itera', 'ort-node', 'ort-web'],
      'native first, whatever order asked',
    );
    t.equal(m.engines[0]!.prefill!.tokensPerSecond.n, 4, 'our samples: both phases');
    for (const p of ['ort-node', 'ort-web']) {
      t.equal(m.engines.find((e) => e.id === p)!.prefill!.tokensPerSecond.n, 2, `${p}: its own phase's rounds`);
      t.equal(m.ratios[p]!.prefill!.n, 2, `${p}: ratios paired round by round within the phase`);
      t.equal(m.sameTokens[p], true, `${p} decoded exactly our greedy tokens`);
    }
  },
);

t.test(
  'the validator catches what is wrong',
  needShared('reference/checkpoints/itera_lite_micro_distilled.pt'),
  async (t) => {
    const d = JSON.parse(JSON.stringify(await shortRun())) as Record<string, any>;
    const broken = (f: (x: Record<string, any>) => void): string[] => {
      const c = JSON.parse(JSON.stringify(d)) as Record<string, any>;
      f(c);
      return validateBenchDocument(c);
    };
    t.match(
      broken((c) => {
        delete c.models[0].flops;
      }).join('\n'),
      /missing 'flops'/,
    );
    t.match(
      broken((c) => {
        c.models[0].engines[0].decode.tokensPerSecond.median = 'fast';
      }).join('\n'),
      /expected number/,
    );
    t.match(
      broken((c) => {
        c.models[0].engines[0].energy.joulesPerToken = { value: null };
      }).join('\n'),
      /matches none/,
      'null without a reason',
    );
    t.match(
      broken((c) => {
        c.diag.thermal.cpuTemperatureC = { value: null, reason: '' };
      }).join('\n'),
      /matches none/,
      'an empty reason',
    );
    t.match(
      broken((c) => {
        c.schema = 'itera-bench/0';
      }).join('\n'),
      /expected "itera-bench\/1"/,
    );
    t.match(
      broken((c) => {
        c.models[0].engines[0].cpu.extra = 1;
      }).join('\n'),
      /unexpected property 'extra'/,
    );
    t.match(
      broken((c) => {
        c.models[0].engines[0].decode.tokensPerSecond.median = Infinity;
      }).join('\n'),
      /expected number/,
    );
    t.match(
      broken((c) => {
        delete c.models[0].engines[0].streamDecode[0].ratioToGenerateCpu;
      }).join('\n'),
      /missing 'ratioToGenerateCpu'/,
    );
    t.same(
      broken((c) => {
        delete c.models[0].engines[0].streamDecode;
      }),
      [],
      'streamDecode is optional (older runs lack it)',
    );
    t.same(validateAgainst({ type: 'integer', minimum: 0 }, -1), ['$: -1 is below 0']);
  },
);

t.test('docs/bench-schema.json is the schema in the code', async (t) => {
  const p = join(repoRoot(), 'docs', 'bench-schema.json');
  t.same(
    JSON.parse(readFileSync(p, 'utf8')),
    BENCH_JSON_SCHEMA,
    "regenerate with 'itera bench --print-schema > docs/bench-schema.json'",
  );
});

t.test('committed results match the schema', async (t) => {
  const dir = join(repoRoot(), 'reports', 'results');
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json')) : [];
  if (files.length === 0) {
    t.pass('no committed results yet');
    return;
  }
  for (const f of files) t.same(validateBenchDocument(JSON.parse(readFileSync(join(dir, f), 'utf8'))), [], f);
});
