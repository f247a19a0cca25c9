import type { Command } from '../command.js';
import { str, UsageError } from '../command.js';
import { buildReport } from '../../report/report.js';
import { svgsToPng } from '../../report/png.js';
import { validateBenchDocument, type BenchDocument } from '../../bench/schema.js';
import { IteraError } from '../../runtime/types.js';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

export const report: Command = {
  name: 'report',
  summary: 'a Markdown report with SVG/PNG charts from bench JSON results',
  help: `Usage: itera report RESULTS.json... -o DIR [--name README.md] [--no-png]

Reads 'itera bench --json' documents (each checked against docs/bench-schema.json) and writes a
Markdown report with charts into DIR: ours vs ONNX Runtime with the goals, prefill against the
machine's SIMD ceiling, the hardware, per-token latency, size and speed by quant type, speed vs
quality, the compression progression, and the original's ONNX export as a reference point. Charts are SVG, plus PNG for viewing when
rsvg-convert (scripts/ci/setup-report.sh) or Chromium is installed. Everything comes from the JSON.

Options:
  -o, --output DIR     where to write the report and charts (required)
      --name FILE      the Markdown file's name (default README.md)
      --no-png         SVG only
  -h, --help           this help

Example:
  itera report results/*.json -o reports/`,
  options: { output: { type: 'string', short: 'o' }, name: { type: 'string' }, 'no-png': { type: 'boolean' } },
  positionals: [1, 1000],
  args: ['RESULTS.json (one or more files from itera bench --json)'],
  async run(v, files, io) {
    const outDir = str(v, 'output');
    if (!outDir) throw new UsageError('--output DIR is required');
    const docs = files.map((f) => {
      let doc: unknown;
      try {
        doc = JSON.parse(readFileSync(resolve(f), 'utf8'));
      } catch (e) {
        throw new IteraError(`cannot read ${f}: ${(e as Error).message}`, 'REPORT_INPUT');
      }
      const errors = validateBenchDocument(doc);
      if (errors.length)
        throw new IteraError(
          `${f} is not an itera bench document:\n  ${errors.slice(0, 8).join('\n  ')}`,
          'REPORT_INPUT',
        );
      return { file: relative(resolve(outDir), resolve(f)), doc: doc as BenchDocument };
    });
    mkdirSync(outDir, { recursive: true });
    const generatedBy = `itera report ${files.join(' ')} -o ${outDir}`;
    const first = buildReport(docs, { png: false, generatedBy });
    const svgPaths = first.charts.map((c) => {
      const p = join(outDir, c.name);
      writeFileSync(p, c.content);
      return p;
    });
    const png = v['no-png'] ? { made: [], how: null, reason: '--no-png' } : await svgsToPng(svgPaths);
    const note = png.how ? `SVG, with PNG copies made by ${png.how}.` : `SVG only (no PNG: ${png.reason}).`;
    const final = buildReport(docs, { png: png.made.length > 0, pngNote: note, generatedBy });
    const name = str(v, 'name') ?? 'README.md';
    writeFileSync(join(outDir, name), final.markdown);
    io.out.write(`wrote ${join(outDir, name)} and ${svgPaths.length} charts (${note})\n`);
    return 0;
  },
};
