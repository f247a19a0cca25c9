// scripts/deploy-pi.sh, which cannot meet a real Pi here: its --dry-run prints every command it
// would run. Checked: what is copied (with rsync, and with scp where rsync is missing), what runs
// on the Pi (the device tests against this machine's results, then itera bench), and that a bad
// command line stops with a message before anything runs.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { repoRoot } from './shared.js';
import { plainEnv } from './tier-common.js';

const script = join(repoRoot(), 'scripts', 'deploy-pi.sh');

function deploy(args: string[], pathPrefix?: string): { code: number | null; out: string; err: string } {
  const env = plainEnv();
  if (pathPrefix) env.PATH = `${pathPrefix}:${env.PATH}`;
  const r = spawnSync('bash', [script, ...args], { encoding: 'utf8', env });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

t.test('deploy-pi.sh --dry-run', async (t) => {
  // a PATH with an rsync (never called in a dry run), and one whose rsync is absent
  const withRsync = mkdtempSync(join(tmpdir(), 'itera-rsync-'));
  writeFileSync(join(withRsync, 'rsync'), '#!/bin/sh\necho "rsync must not run in a dry run" >&2; exit 99\n');
  chmodSync(join(withRsync, 'rsync'), 0o755);

  const r = deploy(['--dry-run', '--port', '2222', 'pi@raspberrypi.local'], withRsync);
  t.equal(r.code, 0, `exit 0 (${r.err.trim()})`);
  const lines = r.out.split('\n').filter((l) => l.startsWith('+ '));
  t.match(
    lines[1] ?? '',
    /^\+ node device-tests\/run\.mjs --write-inputs build\/device-inputs$/,
    'writes the conformance inputs here',
  );
  t.match(
    lines[2] ?? '',
    /--results build\/device-inputs\/x86\.json$/,
    "records this machine's results to compare with",
  );
  const rsync = lines.find((l) => l.startsWith('+ rsync')) ?? '';
  t.ok(rsync, 'copies with rsync when there is one');
  for (const f of [
    'build/itera.wasm',
    'build/itera-scalar.wasm',
    'build/itera-wasi.wasm',
    'dist/host',
    'bin',
    'package.json',
    'device-tests',
    'build/device-inputs',
  ]) {
    t.ok(rsync.split(' ').includes(f), `copies ${f}`);
  }
  t.match(rsync, /pi@raspberrypi\.local:itera-lite\/$/, 'into ~/itera-lite on the Pi');
  t.match(rsync, /-p\\? 2222|-p 2222/, 'over the given ssh port');
  const remote = lines[lines.length - 1] ?? '';
  t.match(remote, /^\+ ssh .*-p 2222 pi@raspberrypi\.local /, 'then runs over ssh');
  const cmd = remote.replace(/\\/g, '');
  t.match(
    cmd,
    /node device-tests\/run\.mjs --inputs build\/device-inputs --compare build\/device-inputs\/x86\.json/,
    'the device tests, held to these results',
  );
  t.match(cmd, /npm ci --omit=dev --ignore-scripts/, "the CLI's runtime dependencies, without dev dependencies");
  t.match(cmd, /node bin\/itera\.js bench --model \S+\.gguf/, 'then itera bench');
  t.match(r.out, /dry run: nothing was copied or run/, 'says nothing was done');

  const s = deploy(['--dry-run', '--dir', 'apps/itera', '--no-bench', 'pi@10.0.0.7'], '/nonexistent-no-rsync');
  t.equal(s.code, 0, 'exit 0 without rsync');
  const out = s.out.replace(/\\/g, '');
  t.ok(
    /\+ scp -rq .* dist\/host pi@10\.0\.0\.7:apps\/itera\/dist\//.test(out) || !/rsync/.test(out),
    'falls back to scp where rsync is missing',
  );
  t.notMatch(out, /itera\.js bench/, '--no-bench: no benchmark');
  t.match(out, /cd apps\/itera && node --version/, '--dir: runs in that folder');

  for (const [what, args, msg] of [
    ['no target', ['--dry-run'], /missing the target/],
    ['a target that is not user@host', ['--dry-run', 'pi@x; rm -rf /'], /must look like user@host/],
    ['an unknown option', ['--dry-run', '--fast', 'pi@pi'], /unknown option '--fast'/],
    ['a bad port', ['--dry-run', '--port', 'ssh', 'pi@pi'], /--port must be a number/],
  ] as [string, string[], RegExp][]) {
    const b = deploy(args);
    t.equal(b.code, 2, `${what}: exit 2`);
    t.match(b.err, msg, `${what}: says so`);
    t.notMatch(b.out, /^\+ /m, `${what}: ran nothing`);
  }
});
