// The relaxed-SIMD build's own cross-host conformance: the device tests with --build relaxed on
// the pinned Node 24 x64, then on the pinned arm64 Node 24 under qemu-user as a Pi 5
// (scripts/engines/arm64.sh pi5-node24), which must match them (the same ids, logits within
// 1e-5; docs/runtime.md says what the relaxed build promises).
import t from 'tap';
import { join } from 'node:path';
import { repoRoot } from './shared.js';
import { engineOption, prepareInputs } from './tier-common.js';
import { ARM64_SCRIPT, arm64NodesMissing, assertSuite, nodeBinary, runCommand } from './tier-node-common.js';

const script = ARM64_SCRIPT;

t.test(
  'the relaxed build: emulated Pi 5 Node 24 (arm64) matches Node 24 x64',
  engineOption(arm64NodesMissing()),
  async (t) => {
    const inp = prepareInputs();
    const run = join(repoRoot(), 'device-tests', 'run.mjs');
    const x64 = join(inp.dir, 'relaxed-x64-node24.json');
    const rx = await runCommand(nodeBinary('24'), [run, '--build', 'relaxed', '--inputs', inp.dir, '--results', x64]);
    assertSuite(t, 'Node 24 x64, relaxed build', rx);
    const ra = await runCommand('bash', [
      script,
      'run',
      'pi5-node24',
      run,
      '--build',
      'relaxed',
      '--inputs',
      inp.dir,
      '--compare',
      x64,
    ]);
    t.match(ra.out, /# engine: node v24\.\d+\.\d+ linux-arm64 relaxed/, 'Node 24 relaxed: ran as linux-arm64');
    assertSuite(t, 'Pi 5 Node 24, relaxed build, vs the relaxed build on Node 24 x64', ra);
  },
);
