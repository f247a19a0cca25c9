// `itera serve` as a process: ready quickly on port 0, curl gets a completion with the API key, the
// tokens of `itera run --seed --json`, SIGTERM drains and exits 0, one JSON log line per request.
import t from 'tap';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from './shared.js';
import { main } from '../cli/itera.js';

const run = promisify(execFile);
const ITERA = join(repoRoot(), 'bin', 'itera.js');

/** Runs the CLI in this process, capturing what it writes. */
async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const w = (f: (s: string) => void) =>
    ({ write: (s: string) => (f(String(s)), true) }) as unknown as NodeJS.WritableStream;
  const code = await main(argv, { out: w((s) => (out += s)), err: w((s) => (err += s)) });
  return { code, out, err };
}

t.test('itera serve --help states the defaults; bad options are refused', async (t) => {
  const help = await cli(['serve', '--help']);
  for (const re of [/default 127\.0\.0\.1/, /default 8080/, /--parallel P .*default 4/, /--max-queue Q .*default 64/]) {
    t.match(help.out, re);
  }
  t.match(help.out, /--workers N [^]*\(default: the number of cores, here \d+\)/);
  const w = await cli(['serve', '--workers', '0']);
  t.equal(w.code, 2);
  t.match(w.err, /--workers/);
  const open = await cli(['serve', '--host', '0.0.0.0', '--port', '0']);
  t.equal(open.code, 1);
  t.match(open.err, /refusing to listen on 0\.0\.0\.0 without an API key/);
});

// curl is a Debian package (apt-get install curl); without it the test is skipped with a reason,
// except under CI, where it must run
const hasCurl = spawnSync('curl', ['--version']).status === 0;

t.test(
  'serve: curl with the key, the tokens of itera run --seed, SIGTERM drains and exits 0',
  { skip: !hasCurl && !process.env.CI ? 'curl is not installed (apt-get install curl)' : false },
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'itera-serve-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const keyFile = join(dir, 'key');
    writeFileSync(keyFile, 'k-' + 'x'.repeat(30) + '\n');
    const child = spawn(
      process.execPath,
      [ITERA, 'serve', '--port', '0', '--workers', '2', '--api-key-file', keyFile],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        // without the test runner's own hooks (NODE_OPTIONS), which would load into the server and
        // into each of its worker threads: the start is timed as a user's would be
        env: { ...process.env, NODE_OPTIONS: '' },
      },
    );
    t.teardown(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
    const exited = new Promise<number | null>((ok) => child.on('exit', (code) => ok(code)));
    const url = await new Promise<string>((ok, fail) => {
      const timer = setTimeout(() => fail(new Error('not ready in 20 s: ' + out + err)), 20_000);
      child.stdout.on('data', function ready() {
        const m = /listening on (http:\/\/\S+) .*ready in (\d+) ms/.exec(out);
        if (m) {
          clearTimeout(timer);
          child.stdout.off('data', ready);
          t.comment(`ready in ${m[2]} ms`);
          t.ok(Number(m[2]) < 3000, `ready in ${m[2]} ms (under a second when the machine is not loaded)`);
          ok(m[1]);
        }
      });
    });
    const body = JSON.stringify({
      prompt: 'She looked at him and',
      max_tokens: 24,
      temperature: 0.8,
      top_k: 40,
      top_p: 0.95,
      seed: 2,
      return_token_ids: true,
    });
    const curl = await run('curl', [
      '-sS',
      '--max-time',
      '20',
      '-H',
      'content-type: application/json',
      '-H',
      'authorization: Bearer k-' + 'x'.repeat(30),
      '-d',
      body,
      url + '/v1/completions',
    ]);
    const reply = JSON.parse(curl.stdout) as { choices: { token_ids: number[]; text: string }[] };
    const cli = await run(process.execPath, [
      ITERA,
      'run',
      '--prompt',
      'She looked at him and',
      '--max-tokens',
      '24',
      '--seed',
      '2',
      '--json',
    ]);
    const want = JSON.parse(cli.stdout) as { generated_ids: number[]; text: string };
    t.same(reply.choices[0].token_ids, want.generated_ids, 'curl gets the ids of itera run --seed 2');
    const noKey = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', url + '/v1/models']);
    t.equal(noKey.stdout, '401', 'no key: 401');
    child.kill('SIGTERM');
    t.equal(await exited, 0, 'SIGTERM: exit 0');
    t.match(out, /SIGTERM: draining[\s\S]*stopped/);
    const lines = err
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { path: string; status: number });
    t.same(
      lines.map((l) => [l.path, l.status]),
      [
        ['/v1/completions', 200],
        ['/v1/models', 401],
      ],
      'one JSON log line per request',
    );
  },
);
