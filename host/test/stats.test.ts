// Percentiles (linear interpolation between closest ranks, numpy's default) and the bench's
// summaries and paired ratios.
import t from 'tap';
import { percentile, summarize } from '../runtime/stats.js';
import { stat, benchTokens } from '../bench/runner.js';

t.test('percentile: values numpy gives', async (t) => {
  const v = [1, 2, 3, 4];
  t.equal(percentile(v, 0), 1);
  t.equal(percentile(v, 100), 4);
  t.equal(percentile(v, 50), 2.5);
  t.ok(Math.abs(percentile(v, 95) - 3.85) < 1e-12, 'p95 of 1..4 = 3.85');
  t.ok(Math.abs(percentile(v, 99) - 3.97) < 1e-12, 'p99 of 1..4 = 3.97');
  t.equal(percentile([4, 1, 3, 2], 50), 2.5, 'order of the input does not matter');
  t.equal(percentile([7], 99), 7, 'one value');
  const hundred = Array.from({ length: 101 }, (_, i) => i);
  for (const p of [1, 25, 50, 95, 99]) t.equal(percentile(hundred, p), p, `0..100: p${p} = ${p}`);
  t.equal(percentile([1, 1, 1, 10], 50), 1, 'duplicates');
});

t.test('percentile: bad input', async (t) => {
  t.throws(() => percentile([], 50), RangeError);
  t.throws(() => percentile([1], -1), RangeError);
  t.throws(() => percentile([1], 101), RangeError);
  t.throws(() => percentile([1], NaN), RangeError);
});

t.test('summaries', async (t) => {
  t.same(summarize([3, 1, 2]), { min: 1, median: 2, max: 3, p95: 2.9, n: 3 });
  t.same(stat([5, 1, 9, 3]), { min: 1, median: 4, max: 9, n: 4 });
  t.throws(() => stat([]), RangeError);
});

t.test('bench tokens: deterministic and in range', async (t) => {
  const a = benchTokens(200, 4, 184);
  t.same(a, benchTokens(200, 4, 184));
  t.ok(a.every((x) => x >= 4 && x < 184));
  t.ok(new Set(a).size > 50, 'not degenerate');
});
