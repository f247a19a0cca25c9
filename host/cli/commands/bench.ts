import type { Command } from '../command.js';
import { fmtBytes, num, str } from '../command.js';
import { buildFrom, modelHelp, modelOptions, modelPathFrom } from './model-option.js';
import { loadModel } from '../../node/index.js';
import { percentile, summarize } from '../../core/stats.js';
import { Progress } from '../progress.js';
import { writeFileSync } from 'node:fs';

export const bench: Command = {
  name: 'bench',
  summary: 'measure load time, prefill and decode speed, per-token latency and memory',
  help: `Usage: itera bench [--model FILE] [--runs R] [--json] [-o results.json]

Measures one model on this machine, one thread: cold load (read, validate, instantiate, lay the
weights into memory), prefill tokens/s over a full context, decode tokens/s (one call into the
module per token, and one call for a whole generation), per-token latency p50/p95, and the
WebAssembly memory in use. Every figure is the median of --runs runs after a warm-up.

Options:
${modelHelp}
  -r, --runs R         measured runs of each figure (default 7)
      --json           print the results as JSON
  -o, --output FILE    also write the JSON results to FILE
  -h, --help           this help`,
  options: { ...modelOptions, runs: { type: 'string', short: 'r' }, json: { type: 'boolean' }, output: { type: 'string', short: 'o' } },
  async run(v, _p, io) {
    const runs = num(v, 'runs', { int: true, min: 1, max: 1000 }) ?? 7;
    const path = modelPathFrom(v);
    const build = buildFrom(v);
    const loads: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      const m = await loadModel(path, { build });
      loads.push(performance.now() - t0);
      m.dispose();
    }
    const model = await loadModel(path, { build });
    try {
      const c = model.config;
      const T = c.maxSeqLength;
      // a fixed pseudo-random prompt of T ids
      const ids: number[] = [];
      let x = 12345;
      for (let i = 0; i < T; i++) { x = (x * 1103515245 + 12345) % 2147483648; ids.push(x % c.vocabSize); }
      const bar = new Progress('bench', runs * 3);
      const s = model.session();
      s.setSampler({ temperature: 0 });
      // prefill: the whole context, last logits only
      const prefill: number[] = [];
      for (let r = -1; r < runs; r++) {
        s.reset();
        const t0 = performance.now();
        for (let k = 0; k < 8; k++) { s.reset(); s.prefill(ids); }
        const dt = (performance.now() - t0) / 8;
        if (r >= 0) prefill.push(T / (dt / 1000));
        bar.update(r + 1);
      }
      // decode, one call per token: T-1 tokens after a one-token prompt (all within the context)
      const decode: number[] = [];
      const perToken: number[] = [];
      for (let r = -1; r < runs; r++) {
        s.reset();
        s.prefill([ids[0]]);
        const t0 = performance.now();
        for (let i = 0; i < T - 1; i++) {
          const a = performance.now();
          s.next();
          if (r >= 0) perToken.push(performance.now() - a);
        }
        const dt = performance.now() - t0;
        if (r >= 0) decode.push((T - 1) / (dt / 1000));
        bar.update(runs + r + 1);
      }
      // decode in one call
      const decodeBatch: number[] = [];
      for (let r = -1; r < runs; r++) {
        const t0 = performance.now();
        for (let k = 0; k < 4; k++) {
          s.reset();
          s.prefill([ids[0]]);
          s.generate(T - 1, -1);
        }
        const dt = (performance.now() - t0) / 4;
        if (r >= 0) decodeBatch.push((T - 1) / (dt / 1000));
        bar.update(2 * runs + r + 1);
      }
      bar.done();
      s.free();
      const info = model.info();
      const result = {
        model: { path, name: info.name, parameters: info.parameters, fileBytes: info.fileBytes, config: c },
        build: info.simd ? 'simd' : 'scalar',
        runs,
        loadMs: summarize(loads),
        prefillTokensPerSecond: summarize(prefill),
        decodeTokensPerSecond: summarize(decode),
        decodeOneCallTokensPerSecond: summarize(decodeBatch),
        perTokenMs: { p50: percentile(perToken, 50), p95: percentile(perToken, 95), p99: percentile(perToken, 99) },
        wasmMemoryBytes: model.memoryBytes(),
        weightBytes: info.weightBytes,
        node: process.version,
        arch: process.arch,
      };
      const out = str(v, 'output');
      if (out !== undefined) writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
      if (v.json) {
        io.out.write(JSON.stringify(result, null, 2) + '\n');
      } else {
        const f = (s: { min: number; median: number; max: number }, d = 0) => `${s.median.toFixed(d)}  (min ${s.min.toFixed(d)}, max ${s.max.toFixed(d)})`;
        io.out.write(
          `model            ${path} (${info.parameters.toLocaleString('en-US')} parameters, ${fmtBytes(info.fileBytes)})\n` +
          `build            ${result.build}, node ${process.version} ${process.arch}, ${runs} runs, medians\n` +
          `load (cold)      ${f(result.loadMs, 2)} ms\n` +
          `prefill          ${f(result.prefillTokensPerSecond)} tokens/s  (${T} tokens)\n` +
          `decode           ${f(result.decodeTokensPerSecond)} tokens/s  (one call per token)\n` +
          `decode, 1 call   ${f(result.decodeOneCallTokensPerSecond)} tokens/s\n` +
          `per token        p50 ${result.perTokenMs.p50.toFixed(4)} ms, p95 ${result.perTokenMs.p95.toFixed(4)} ms, p99 ${result.perTokenMs.p99.toFixed(4)} ms\n` +
          `wasm memory      ${fmtBytes(result.wasmMemoryBytes)} (weights ${fmtBytes(result.weightBytes)})\n`,
        );
      }
      return 0;
    } finally {
      model.dispose();
    }
  },
};
