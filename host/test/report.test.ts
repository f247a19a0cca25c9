// The report: built from a bench document only; goals judged on medians; charts are well-formed
// SVG; the SVG helpers' ticks and numbers.
import t from 'tap';
import { prefillCeiling } from '../bench/ceiling.js';
import { prefillMatrixMacs } from '../bench/flops.js';
import type { IteraConfig } from '../runtime/types.js';
import { readFileSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { buildReport } from '../report/report.js';
import { barChart, fmtNum, scatter, ticks } from '../report/svg.js';
import { validateBenchDocument, type BenchDocument } from '../bench/schema.js';
import { repoRoot } from './shared.js';

t.test('svg helpers', async (t) => {
  t.same(ticks(10), [0, 2, 4, 6, 8, 10]);
  t.same(ticks(0), [0]);
  t.equal(fmtNum(12345), '12.3k');
  t.equal(fmtNum(2.5), '2.50');
  const svg = barChart({
    title: 'a <b> & c',
    unit: 'x',
    panels: [{ title: 'p', bars: [{ label: 'one', value: 2, min: 1, max: 3 }], lines: [{ at: 2, label: 'goal' }] }],
  });
  t.match(svg, /^<\?xml/);
  t.match(svg, /a &lt;b&gt; &amp; c/, 'text is escaped');
  t.equal((svg.match(/<rect /g) ?? []).length, 2, 'background + one bar');
  const sc = scatter({ title: 's', xLabel: 'x', yLabel: 'y', points: [{ x: 1, y: 2, label: 'p' }] });
  t.match(sc, /<circle /);
});

t.test('a report from the committed results', async (t) => {
  const dir = join(repoRoot(), 'reports', 'results');
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json')) : [];
  if (files.length === 0) {
    t.pass('no committed results');
    return;
  }
  const docs = files.map((f) => ({
    file: `results/${f}`,
    doc: JSON.parse(readFileSync(join(dir, f), 'utf8')) as BenchDocument,
  }));
  for (const d of docs) t.same(validateBenchDocument(d.doc), [], d.file);
  const r = buildReport(docs, { png: true, generatedBy: 'itera report (test)' });
  t.match(r.markdown, /^# Itera-Lite Edge: benchmark report/);
  t.match(r.markdown, /## Hardware/);
  t.match(r.markdown, /decode at least 3x ONNX Runtime native: \*\*(met|MISSED)\*\*/);
  t.ok(r.charts.length >= 6);
  for (const c of r.charts) {
    t.match(c.content, /<svg [^>]*width="\d+" height="\d+"/, `${c.name}: an SVG with a size`);
    t.notMatch(c.content, /NaN|undefined|Infinity/, `${c.name}: no broken numbers`);
    t.ok(r.markdown.includes(`(${c.name.replace(/\.svg$/, '.png')})`), `${c.name} (as PNG) is in the Markdown`);
  }
  // sampled decode beside greedy, from every run that measured it, with the goal per cell
  const sampled = docs.flatMap((d) => d.doc.models).find((x) => x.engines[0]!.sampledDecode?.length);
  if (sampled) {
    t.match(r.markdown, /## Sampled decode beside greedy/);
    const d = sampled.engines[0]!.sampledDecode![0]!;
    t.match(r.markdown, `**${d.ratioToGreedy.median.toFixed(2)}** (${d.ratioToGreedyCpu.median.toFixed(2)})`);
    t.ok(
      r.charts.some((c) => c.name === 'sampled.svg'),
      'a chart of the ratios',
    );
  }
  // the goal lines follow the medians in the JSON
  const m = docs[0]!.doc.models[0]!;
  const med = m.ratios['ort-node']?.decode?.median;
  if (med !== undefined)
    t.match(
      r.markdown,
      new RegExp(
        `decode at least 3x ONNX Runtime native: \\*\\*${med >= 3 ? 'met' : 'MISSED'}\\*\\* at ${med.toFixed(2)}x`,
      ),
    );
});

t.test("prefill against the SIMD ceiling: from the run's simdPeak, or said missing", async (t) => {
  const dir = join(repoRoot(), 'reports', 'results');
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json')) : [];
  if (files.length === 0) {
    t.pass('no committed results');
    return;
  }
  const doc = JSON.parse(readFileSync(join(dir, files[0]!), 'utf8')) as BenchDocument;
  const withPeak: BenchDocument = {
    ...doc,
    diag: {
      ...doc.diag,
      simdPeak: { f32MulAdd: { value: 20, source: 'test' }, i16DotAdd: { value: 40, source: 'test' } },
    },
  };
  t.same(validateBenchDocument(withPeak), [], 'a document with simdPeak matches the schema');
  const noPeak: BenchDocument = { ...doc, diag: { ...doc.diag } };
  delete noPeak.diag.simdPeak;
  t.same(validateBenchDocument(noPeak), [], 'and one without it (older runs)');
  t.match(
    buildReport([{ file: 'a.json', doc: noPeak }], { png: false, generatedBy: 't' }).markdown,
    /predate `itera diag`'s measurement of the SIMD ceiling/,
  );
  const md = buildReport([{ file: 'a.json', doc: withPeak }], { png: false, generatedBy: 't' }).markdown;
  for (const m of withPeak.models) {
    const c = prefillCeiling(withPeak, m)!;
    const quantized = Object.keys(m.tensorTypes).some((k) => k !== 'F32' && k !== 'F16');
    t.equal(c.peak, quantized ? 40 : 20, `${m.name}: the ${quantized ? 'int16' : 'f32'} peak`);
    t.equal(
      c.floorUs,
      prefillMatrixMacs(m.config as unknown as IteraConfig, c.promptTokens) / (c.peak * 1e3),
      'floor = multiply-adds / peak',
    );
    t.equal(
      c.us.itera,
      1e6 / m.engines.find((e) => e.id === 'itera')!.prefill!.tokensPerSecond.median,
      'ours: µs per position from the median',
    );
    t.ok(md.includes(`| ${c.floorUs.toFixed(2)} | ${c.us.itera!.toFixed(2)} |`), `${m.name}: its row in the report`);
  }
});
