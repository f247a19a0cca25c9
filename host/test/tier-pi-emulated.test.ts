// The deployment for real, against the emulated Raspberry Pi (scripts/pi-image.sh: Debian bookworm
// arm64 in qemu-system-aarch64 -cpu cortex-a72, SSH through a loopback port forward, host key
// checked): deploy-pi.sh installs the arm64 executable and the service (`serve --workers 2`); the
// service answers /health and a completion, is back within 10 s of a kill -9 and after a reboot;
// the device tests pass on Debian's node (same ids as x86, logits within 1e-5); the bench JSON
// comes home; the tarball runs on Debian's node; a deploy that fails midway puts the previous
// install back; a deploy to a full disk stops before changing anything.
// With ITERA_PI_EMULATED=1 it runs wherever qemu-system-aarch64 runs (skipped, with the reason,
// only where it cannot; failed for that under CI). The image is built into ~/.cache/itera-pi if missing (scripts/ci/setup-pi.sh
// builds it in CI first): 2-3 minutes from an empty cache. On the shared 2-core development
// machine the test took 4.5-6 minutes with the image built, and setup-pi.sh plus this test 9.5
// minutes from empty caches (docs/pi.md has the figures; CI's budget for it is 25 minutes).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './shared.js';
import { engineOption, plainEnv } from './tier-common.js';
import { ensurePackage, pkgDir, version } from './package-common.js';

const root = repoRoot();
const image = join(root, 'scripts', 'pi-image.sh');
const qemu = spawnSync('qemu-system-aarch64', ['--version'], { encoding: 'utf8' });
const tarball = join(pkgDir, `itera-lite-${version}.tar.gz`);

function sh(cmd: string, args: string[], timeout = 900_000, input?: string) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: plainEnv(), timeout, input, cwd: root });
  return { code: r.status, out: r.stdout ?? '', err: r.stderr ?? '' };
}
const pi = (cmd: string, timeout = 300_000) => sh('bash', [image, 'ssh', cmd], timeout);
const sshConfig = () => sh('bash', [image, 'ssh-config']).out.trim();
const since = (t0: number) => `${((Date.now() - t0) / 1000).toFixed(0)} s`;

function deploy(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync('bash', [join(root, 'scripts', 'deploy-pi.sh'), '-F', sshConfig(), ...args, 'pi@itera-pi'], {
    encoding: 'utf8',
    env: { ...plainEnv(), ...env },
    timeout: 900_000,
    cwd: root,
  });
  return { code: r.status, out: r.stdout ?? '', err: r.stderr ?? '' };
}

/** Waits until the service answers /health on the Pi, timed there from the call (polling every
 *  0.1 s); returns the seconds it took, or null after limitS. */
function healthWithin(limitS: number): number | null {
  const r = pi(
    `t0=$(date +%s.%N); for i in $(seq ${limitS * 10}); do curl -sf http://127.0.0.1:8080/health >/dev/null && { echo "$(date +%s.%N) $t0" | awk '{print $1-$2}'; exit 0; }; sleep 0.1; done; exit 1`,
  );
  return r.code === 0 ? Number(r.out.trim()) : null;
}

const missing =
  qemu.status === 0 ? null : `qemu-system-aarch64 cannot run here (${qemu.error?.message ?? qemu.stderr.trim()})`;

// Opt-in (ITERA_PI_EMULATED=1; scripts/ci/setup-pi.sh then builds the image): every check passes,
// but "back within 10 s of kill -9" only while the host is quiet enough. The emulated Pi's two
// cores are two threads of this shared 2-core machine: at host load average 5-7 it was back in
// 3.2-7.2 s, at 8-10 in 11-19 s (docs/pi.md), so in CI beside the other tests it would be flaky.
const optIn =
  process.env.ITERA_PI_EMULATED === '1'
    ? engineOption(missing)
    : {
        skip: 'opt-in: ITERA_PI_EMULATED=1; .ci/run runs it after npm test, alone (its kill -9 timing needs the cores to itself: docs/pi.md)',
      };

t.test('the emulated Raspberry Pi, deployed over SSH', optIn, async (t) => {
  const tAll = Date.now();
  // nothing to do when the cache holds the current image (scripts/ci/setup-pi.sh built it)
  const b = sh('bash', [image, 'build'], 1_200_000);
  if (!t.equal(b.code, 0, `the image is built (${b.err.trim().slice(-600)})`)) return;
  if (!/cached:/.test(b.err)) t.comment(`image built from an empty cache in ${since(tAll)}`);
  const failed = ensurePackage();
  if (failed) return t.fail(failed);

  const tBoot = Date.now();
  const boot = sh('bash', [image, 'boot', '--fresh']);
  t.teardown(() => void sh('bash', [image, 'stop']));
  if (!t.equal(boot.code, 0, `boots and answers SSH with its known host key (${boot.err.trim().slice(-400)})`)) return;
  t.comment(`warm boot: ${since(tBoot)} to SSH`);
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
  t.equal(pi('ls /var/tmp | grep -c itera-deploy || true').out.trim(), '0', 'nothing staged');
  pi('sudo rm -f /var/tmp/fill');

  const out = mkdtempSync(join(tmpdir(), 'itera-pi-bench-'));
  const tDeploy = Date.now();
  const d = deploy(['--bench-runs', '1', '--out', out]);
  t.comment(`deploy (copy, service, device tests, bench): ${since(tDeploy)}`);
  t.equal(d.code, 0, `deploy-pi.sh succeeds (${d.err.trim().slice(-800)})`);
  t.match(d.out, /# [1-9]\d* passed, 0 failed/, 'the device tests ran on the Pi and passed');
  t.match(d.out, /compared with: build\/device-inputs\/x86\.json/, 'held to the ids and logits of this machine');
  t.notMatch(d.out, /^not ok/m, 'no failed check');
  const benches = readdirSync(out).filter((f) => f.endsWith('.json'));
  t.equal(benches.length, 1, 'the bench JSON came home');
  if (benches[0]) {
    const doc = JSON.parse(readFileSync(join(out, benches[0]), 'utf8')) as { models?: unknown[] };
    t.equal(doc.models?.length, 1, 'measured the model on the Pi');
    t.match(JSON.stringify(doc), /arm64/, 'from the arm64 machine');
    const line = /^Itera-Lite \(WebAssembly\).*$/m.exec(d.out + d.err)?.[0].replace(/\s+/g, ' ');
    t.comment(`bench on the emulated Pi: ${line ?? '(no summary line)'}`);
  }

  const start = pi(
    'd=$(mktemp -d); a=$(date +%s.%N); ITERA_CACHE_DIR=$d /usr/local/bin/itera --version >/dev/null; ' +
      'b=$(date +%s.%N); ITERA_CACHE_DIR=$d /usr/local/bin/itera --version >/dev/null; c=$(date +%s.%N); rm -rf $d; ' +
      'echo "$a $b $c" | awk \'{printf "%.2f %.2f", $2-$1, $3-$2}\'',
  ).out.split(' ');
  t.comment(`executable start: ${start[0]} s the first time (unpacking), ${start[1]} s after`);
  t.equal(pi('systemctl is-active itera').out.trim(), 'active', 'the service runs');
  t.equal(pi('systemctl show -p User --value itera').out.trim(), 'itera', 'as the user itera');
  t.match(
    pi('ps -o args= -p $(systemctl show -p MainPID --value itera)').out,
    /^\/usr\/local\/bin\/itera serve .*--workers 2/,
    'the executable runs serve --workers 2',
  );
  const journal = pi('sudo journalctl -u itera --no-pager -n 50').out;
  t.match(journal, /listening on .*2 workers x/, 'with two worker threads, and logs in the journal');
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
  const mem = pi(
    'systemctl show -p MemoryCurrent --value itera; ps -o rss= -p $(systemctl show -p MainPID --value itera)',
  )
    .out.trim()
    .split(/\s+/);
  t.comment(
    `service memory: ${(Number(mem[0]) / 1048576).toFixed(0)} MB (cgroup, MemoryMax 256M), ${(Number(mem[1]) / 1024).toFixed(0)} MB RSS`,
  );

  // kill -9: back within 10 s (systemd's timeline in the comment: where the seconds go)
  const since9 = pi('date "+%Y-%m-%d %H:%M:%S"').out.trim();
  pi('sudo kill -9 $(systemctl show -p MainPID --value itera)');
  const back = healthWithin(60);
  const timeline = pi(
    `sudo journalctl -u itera --no-pager -o short-precise --since "${since9}" | grep -E "Main process exited|Scheduled restart|Starting|Started|listening" | sed -E 's/^[A-Za-z]+ [0-9]+ ([0-9:.]+) [^ ]+ /\\1 /' | cut -c1-140`,
  ).out.trim();
  t.comment(`after kill -9:\n${timeline}`);
  t.ok(
    back !== null && back <= 10,
    `back within 10 s of kill -9 (${back === null ? 'not in 60 s' : `${back.toFixed(1)} s`})`,
  );

  // reboot: back by itself
  const tReboot = Date.now();
  const bootId = () => pi('cat /proc/sys/kernel/random/boot_id', 30_000).out.trim();
  const oldBoot = bootId();
  pi('sudo systemctl reboot', 30_000);
  // SSH may still answer while the machine shuts down: wait for a new boot id
  let again = { code: 1 as number | null, out: '', err: '' };
  while (Date.now() - tReboot < 600_000) {
    await new Promise((r) => setTimeout(r, 3000));
    again = sh('bash', [image, 'wait-ssh', '600']);
    const id = bootId();
    if (again.code !== 0 || (id !== '' && id !== oldBoot)) break;
  }
  t.equal(again.code, 0, `SSH again after the reboot (${again.err.trim().slice(-300)})`);
  t.not(bootId(), oldBoot, 'a new boot');
  t.ok(healthWithin(120) !== null, 'the service is back after the reboot');
  t.comment(`reboot to a serving service: ${since(tReboot)}`);

  // the tarball on Debian's own node
  const send = spawnSync(
    'bash',
    [
      '-c',
      `bash ${image} ssh 'cd /var/tmp && rm -rf itera-lite-* && tar -xz && node --version && itera-lite-*/bin/itera run -p "The jury said" -n 8 --seed 1' < ${tarball}`,
    ],
    { encoding: 'utf8', env: plainEnv(), timeout: 600_000 },
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
  t.ok(
    local.out.length > 'The jury said'.length && send.stdout.endsWith(local.out),
    'the tarball gives the same text as here',
  );

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
  t.comment(`the whole test: ${since(tAll)}`);
});
