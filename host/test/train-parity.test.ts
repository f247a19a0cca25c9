// The Python training side (scripts/train/): its model must match the original PyTorch
// implementation on the golden data, and a tiny training run must work end to end.
//
// Runs Debian's /usr/bin/python3 (the only interpreter here with torch) from the repository root.
// Without torch the tests are skipped with the reason, except when CI is set: then they fail.

import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './shared.js';

// ITERA_PYTHON overrides the interpreter (for checking the skip path with a Python without torch).
const PYTHON = process.env.ITERA_PYTHON || '/usr/bin/python3';
const root = repoRoot();

function torchProblem(): string | null {
  if (!existsSync(PYTHON)) return `${PYTHON} does not exist`;
  const r = spawnSync(PYTHON, ['-c', 'import torch, numpy; print(torch.__version__)'], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (r.error) return `${PYTHON} did not run: ${r.error.message}`;
  if (r.status !== 0) return `${PYTHON} cannot import torch/numpy: ${(r.stderr || '').trim().split('\n').pop()}`;
  return null;
}

const problem = torchProblem();
const skip = problem !== null && !process.env.CI ? `needs PyTorch: ${problem}` : undefined;

for (const script of ['scripts/train/test_parity.py', 'scripts/train/test_smoke.py']) {
  t.test(script, { skip }, async (t) => {
    if (problem !== null) {
      t.fail(`${problem} (CI is set, so a missing PyTorch is a failure)`);
      return;
    }
    const env: NodeJS.ProcessEnv = { ...process.env, ITERA_TORCH_THREADS: '1', OMP_NUM_THREADS: '1' };
    const r = spawnSync(PYTHON, [join(root, script)], { cwd: root, env, encoding: 'utf8', timeout: 600_000 });
    const out = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim();
    if (out) t.comment(out);
    if (r.error) {
      t.fail(`${script} did not run: ${r.error.message}`);
      return;
    }
    const skipLine = /^SKIP: .*$/m.exec(r.stdout ?? '');
    if (r.status === 0 && skipLine) {
      t.pass(script, { skip: skipLine[0].slice(6) });
      return;
    }
    t.equal(r.status, 0, `${script} exits 0`);
  });
}
