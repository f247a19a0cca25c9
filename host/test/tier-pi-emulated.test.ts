// The deployment for real, against the emulated Raspberry Pi (scripts/pi-image.sh: Debian bookworm
// arm64 in qemu-system-aarch64 -cpu cortex-a72, SSH through a loopback port forward, host key
// checked): deploy-pi.sh installs the arm64 executable and the service; the service answers
// /health and a completion, is back within 10 s of a kill -9 and after a reboot; the device tests
// pass on Debian's node; the bench JSON comes home; the tarball runs on Debian's node; a deploy that
// fails midway puts the previous install back; a deploy to a full disk stops before changing
// anything. With ITERA_PI_EMULATED=1: skipped (with the reason) only where qemu-system-aarch64 or
// the image is missing, and failed for that under CI.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './shared.js';
import { engineOption, plainEnv } from './tier-common.js';

const root = repoRoot();
const image = join(root, 'scripts', 'pi-image.sh');
const cache = process.env.ITERA_PI_CACHE ?? join(homedir(), '.cache', 'itera-pi');
const haveQemu = spawnSync('qemu-system-aarch64', ['--version']).status === 0;
const haveImage = existsSync(join(cache, '.complete'));
const exe = join(root, 'dist', 'pkg', 'itera-linux-arm64');
const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
const tarball = join(root, 'dist', 'pkg', `itera-lite-${version}.tar.gz`);

function sh(cmd: string, args: string[], timeout = 900_000, input?: string) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: plainEnv(), timeout, input, cwd: root });
  return { code: r.status, out: r.stdout ?? '', err: r.stderr ?? '' };
}
const pi = (cmd: string, timeout = 300_000) => sh('bash', [image, 'ssh', cmd], timeout);
const sshConfig = () => sh('bash', [image, 'ssh-config']).out.trim();

function deploy(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync('bash', [join(root, 'scripts', 'deploy-pi.sh'), '-F', sshConfig(), ...args, 'pi@itera-pi'], {
    encoding: 'utf8',
    env: { ...plainEnv(), ...env },
    timeout: 1_500_000,
    cwd: root,
  });
  return { code: r.status, out: r.stdout ?? '', err: r.stderr ?? '' };
}

/** Waits until the service answers /health on the Pi; returns the seconds it took, or null. */
function healthWithin(limitS: number): number | null {
  const r = pi(
    `t0=$(date +%s.%N); for i in $(seq ${limitS * 5}); do curl -sf http://127.0.0.1:8080/health >/dev/null && { echo "$(date +%s.%N) $t0" | awk '{print $1-$2}'; exit 0; }; sleep 0.2; done; exit 1`,
  );
  return r.code === 0 ? Number(r.out.trim()) : null;
}

const missing = !haveQemu
  ? 'qemu-system-aarch64 is missing (scripts/ci/setup-pi.sh installs it)'
  : !haveImage
    ? `the emulated Pi's image is not built (bash scripts/pi-image.sh build, ~20 min)`
    : !existsSync(exe) || !existsSync(tarball)
      ? 'dist/pkg is not built (npm run package; sea.test.ts builds it)'
      : null;

// Opt-in until scripts/ci/setup-pi.sh builds the image within CI's budget (docs/pi.md): the
// emulated second stage alone took more than 25 minutes on the shared development machine.
const optIn =
  process.env.ITERA_PI_EMULATED === '1'
    ? engineOption(missing)
    : { skip: 'opt-in: ITERA_PI_EMULATED=1 after scripts/pi-image.sh build (not yet in CI: docs/pi.md)' };

t.test('the emulated Raspberry Pi, deployed over SSH', optIn, async (t) => {
  const boot = sh('bash', [image, 'boot', '--fresh']);
  t.teardown(() => void sh('bash', [image, 'stop']));
  if (!t.equal(boot.code, 0, `boots and answers SSH with its known host key (${boot.err.trim().slice(-400)})`)) return;
  t.comment(`warm boot: ${readFileSync(join(cache, 'run', 'boot-seconds'), 'utf8').trim()} s to SSH`);
  t.equal(pi('uname -m').out.trim(), 'aarch64', 'an aarch64 machine');

  // a full disk: refused before anything changes
  pi('sudo fallocate -l $(( $(df -Pk / | awk "NR==2 {print \\$4}") * 1024 - 40 * 1048576 )) /var/tmp/fill');
  const full = deploy(['--no-tests', '--no-bench']);
  t.equal(full.code, 1, 'a deploy to a full disk fails');
  t.match(full.err, /MB free under \/usr\/local.*nothing was changed/, 'and says why');
  t.equal(
    pi('test -e /usr/local/bin/itera || test -e /etc/systemd/system/itera.service; echo $?').out.trim(),
    '1',
    'nothing installed',
  );
  pi('sudo rm -f /var/tmp/fill');

  const out = mkdtempSync(join(tmpdir(), 'itera-pi-bench-'));
  const t0 = Date.now();
  const d = deploy(['--bench-runs', '1', '--out', out]);
  t.comment(`deploy: ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  t.equal(d.code, 0, `deploy-pi.sh succeeds (${d.err.trim().slice(-800)})`);
  t.match(d.out, /# [1-9]\d* passed, 0 failed/, 'the device tests ran on the Pi and passed');
  t.notMatch(d.out, /^not ok/m, 'no failed check');
  const benches = readdirSync(out).filter((f) => f.endsWith('.json'));
  t.equal(benches.length, 1, 'the bench JSON came home');
  if (benches[0]) {
    const doc = JSON.parse(readFileSync(join(out, benches[0]), 'utf8')) as { models?: unknown[]; diag?: unknown };
    t.equal(doc.models?.length, 1, 'measured the model on the Pi');
    t.match(JSON.stringify(doc), /arm64/, 'from the arm64 machine');
  }

  const start = pi(
    'd=$(mktemp -d); a=$(date +%s.%N); ITERA_CACHE_DIR=$d /usr/local/bin/itera --version >/dev/null; ' +
      'b=$(date +%s.%N); ITERA_CACHE_DIR=$d /usr/local/bin/itera --version >/dev/null; c=$(date +%s.%N); rm -rf $d; ' +
      'echo "$a $b $c" | awk \'{printf "%.2f %.2f", $2-$1, $3-$2}\'',
  ).out.split(' ');
  t.comment(`executable start: ${start[0]} s the first time (unpacking), ${start[1]} s after`);
  t.equal(pi('systemctl is-active itera').out.trim(), 'active', 'the service runs');
  t.equal(pi('systemctl show -p User --value itera').out.trim(), 'itera', 'as the user itera');
  t.equal(
    pi('sudo stat -c %a:%U /etc/itera/api-key').out.trim(),
    '600:itera',
    'the API key file is 0600, owned by itera',
  );
  t.equal(pi('curl -s -o /dev/null -w %{http_code} http://127.0.0.1:8080/health').out, '200', '/health answers');
  const completion = pi(
    `curl -s http://127.0.0.1:8080/v1/completions -H "authorization: Bearer $(sudo cat /etc/itera/api-key)" -H 'content-type: application/json' -d '{"prompt":"The jury said","max_tokens":5,"seed":1}'`,
  );
  t.match(completion.out, /"choices":\[\{.*"text":/, `a completion with the key (${completion.out.slice(0, 200)})`);
  t.equal(pi(`curl -s -o /dev/null -w %{http_code} http://127.0.0.1:8080/v1/models`).out, '401', 'and none without it');
  const rss = pi('ps -o rss= -p $(systemctl show -p MainPID --value itera)').out.trim();
  t.comment(`service memory: ${(Number(rss) / 1024).toFixed(0)} MB RSS`);
  t.match(pi('journalctl -u itera --no-pager -n 50').out, /listening on/, 'logs in the journal');

  // kill -9: back within 10 s
  pi('sudo kill -9 $(systemctl show -p MainPID --value itera)');
  const back = healthWithin(10);
  t.ok(back !== null, `back within 10 s of kill -9 (${back?.toFixed(1)} s)`);

  // reboot: back by itself
  pi('sudo systemctl reboot', 30_000);
  await new Promise((r) => setTimeout(r, 5000));
  const again = sh('bash', [image, 'wait-ssh', '600']);
  t.equal(again.code, 0, `SSH again after the reboot (${again.err.trim().slice(-300)})`);
  t.ok(healthWithin(120) !== null, 'the service is back after the reboot');

  // the tarball on Debian's own node
  const send = spawnSync(
    'bash',
    [
      '-c',
      `bash ${image} ssh 'cd /var/tmp && rm -rf itera-lite-* && tar -xz && node --version && itera-lite-*/bin/itera run -p "The jury said" -n 8 --seed 1' < ${tarball}`,
    ],
    {
      encoding: 'utf8',
      env: plainEnv(),
      timeout: 600_000,
    },
  );
  const local = sh(process.execPath, [
    join(root, 'bin', 'itera.js'),
    'run',
    '-p',
    'The jury said',
    '-n',
    '8',
    '--seed',
    '1',
  ]);
  t.match(send.stdout, /^v18\./, "Debian's node 18");
  t.ok(send.stdout.endsWith(local.out), 'the tarball gives the same text as here');

  // a deploy that fails midway: the previous install comes back
  const before = pi('sha256sum /usr/local/bin/itera /etc/itera/itera.env /etc/itera/api-key').out;
  const mid = deploy(['--no-tests', '--no-bench', '--listen', '0.0.0.0'], { ITERA_DEPLOY_FAIL_AFTER: 'binary' });
  t.equal(mid.code, 1, 'a deploy failing midway fails');
  t.match(mid.err, /rolling back[\s\S]*previous state was put back/, 'and says it rolled back');
  t.equal(
    pi('sha256sum /usr/local/bin/itera /etc/itera/itera.env /etc/itera/api-key').out,
    before,
    'the same files as before',
  );
  t.ok(healthWithin(60) !== null, 'the previous service answers again');
  t.equal(pi('ls /var/tmp | grep -c itera-deploy || true').out.trim(), '0', 'no staging left behind');
});
