// scripts/deploy-pi.sh without a Pi: --dry-run prints the plan, and every mistake that can be
// caught before or at the first SSH connection stops with a sentence saying what to do (exit 2
// for a bad command line, 1 for a target that cannot be used), nothing run. The real deployment
// is tier-pi-emulated.test.ts, against the emulated Pi.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from './shared.js';
import { plainEnv } from './tier-common.js';

const script = join(repoRoot(), 'scripts', 'deploy-pi.sh');

function deploy(args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync('bash', [script, ...args], { encoding: 'utf8', env: plainEnv(), timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

t.test('deploy-pi.sh --dry-run prints the plan', async (t) => {
  const r = deploy(['--dry-run', '--port', '2222', '--listen', '0.0.0.0', 'pi@raspberrypi.local']);
  t.equal(r.code, 0, `exit 0 (${r.err.trim()})`);
  t.match(r.out, /dry run: nothing is copied or run/, 'says nothing is done');
  t.match(r.out, /-p 2222 pi@raspberrypi\.local/, 'over the given ssh port');
  t.notMatch(r.out, /StrictHostKeyChecking/, 'host keys are checked as ssh always does');
  t.match(r.out, /itera service install --model \.\.\. --host 0\.0\.0\.0/, 'installs the service');
  t.match(r.out, /--serve-args="--workers 2"/, 'serving from two worker threads by default');
  t.match(r.out, /--compare x86\.json/, 'the device tests, held to this machine');
  t.match(r.out, /itera bench --runs 3 --peers none --json, copied to reports\/devices\//, 'bench JSON comes home');
  const s = deploy(['--dry-run', '--no-tests', '--no-bench', 'pi@10.0.0.7']);
  t.notMatch(s.out, /device-tests|bench/, '--no-tests --no-bench');
});

t.test('deploy-pi.sh stops with a sentence before doing anything', async (t) => {
  for (const [what, args, code, msg] of [
    ['no target', ['--dry-run'], 2, /missing the target/],
    ['a target that is not user@host', ['--dry-run', 'pi@x; rm -rf /'], 2, /must look like user@host/],
    ['an unknown option', ['--dry-run', '--fast', 'pi@pi'], 2, /unknown option '--fast'/],
    ['a bad port', ['--dry-run', '--port', 'ssh', 'pi@pi'], 2, /--port must be a number/],
    ['bad workers', ['--dry-run', '--workers', '0', 'pi@pi'], 2, /--workers must be a number from 1 to 99/],
    [
      'a missing SSH key',
      ['-i', '/nonexistent/id_ed25519', 'pi@pi'],
      2,
      /SSH key \/nonexistent\/id_ed25519 does not exist.*ssh-keygen/,
    ],
    ['a missing model', ['--model', '/nonexistent.gguf', 'pi@pi'], 2, /model \/nonexistent\.gguf does not exist/],
    // port 1 on loopback: nothing listens there, so ssh is refused at once
    ['a target with no SSH', ['--port', '1', 'pi@127.0.0.1'], 1, /cannot reach SSH on pi@127\.0\.0\.1.*SSH enabled/],
  ] as [string, string[], number, RegExp][]) {
    const b = deploy(args);
    t.equal(b.code, code, `${what}: exit ${code}`);
    t.match(b.err, msg, `${what}: says so`);
    t.notMatch(b.out, /installing|copying/, `${what}: did nothing`);
  }
});
