// The CLI as a tool in pipes: a reader that goes away ends `itera run` quietly (status 0, no
// stack trace) and stops the generation; the prompt can come from stdin or a file; mistyped
// commands and options get a "did you mean"; a missing positional argument is named.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../cli/itera.js';
import { closest, editDistance } from '../cli/command.js';
import { defaultModelPath } from '../node/index.js';
import { repoRoot } from './shared.js';
import { captureIo } from './helpers.js';

const noModel = defaultModelPath() === null ? 'the default model is not in models/' : false;

t.test('did you mean: commands and options', async (t) => {
  const cases: [string[], RegExp][] = [
    [['rn'], /unknown command 'rn'\. Did you mean 'run'\?/],
    [['tokeniser', 'train'], /Did you mean 'tokenizer'\?/],
    [['conv'], /Did you mean 'convert'\?/],
    [
      ['run', '--max-token', '3'],
      /Unknown option '--max-token'\. Did you mean '--max-tokens'\?.*Try 'itera run --help'/s,
    ],
    [['run', '--temprature=0'], /Did you mean '--temperature'\?/],
    [['bench', '--quants', 'Q8_0'], /Did you mean '--quant'\?/],
  ];
  for (const [argv, re] of cases) {
    const c = captureIo();
    t.equal(await main(argv, c.io), 2, `${argv.join(' ')}: exit 2`);
    t.match(c.err(), re, `${argv.join(' ')}: suggests`);
  }
  const far = captureIo();
  t.equal(await main(['frobnicate'], far.io), 2);
  t.notMatch(far.err(), /Did you mean/, 'nothing close: no guess, the command list instead');
  t.match(far.err(), /Commands:/);
  const farOpt = captureIo();
  t.equal(await main(['run', '--bogus'], farOpt.io), 2);
  t.notMatch(farOpt.err(), /Did you mean/, 'an option nothing like ours: no guess');

  t.equal(editDistance('tokeniser', 'tokenizer'), 1);
  t.equal(editDistance('mxa', 'max'), 1, 'an adjacent swap is one edit');
  t.equal(closest('r', ['run', 'report']), null, 'an ambiguous prefix is no guess');
});

t.test('a missing positional argument is named', async (t) => {
  const cases: [string[], RegExp][] = [
    [['convert'], /missing argument CHECKPOINT \(the PyTorch checkpoint/],
    [['quantize', '--type', 'q8_0'], /missing argument IN\.gguf/],
    [['data'], /missing argument ACTION \(prepare or text\)/],
    [['tokenizer'], /missing argument ACTION \(train, stats or encode\)/],
    [['export'], /missing argument FORMAT \(onnx or safetensors\)/],
    [['report', '-o', '/tmp/x'], /missing argument RESULTS\.json/],
  ];
  for (const [argv, re] of cases) {
    const c = captureIo();
    t.equal(await main(argv, c.io), 2, `${argv.join(' ')}: exit 2`);
    t.match(c.err(), re, `${argv.join(' ')}: names it`);
  }
});

t.test('quantize --max-bytes: only with mixed, a whole number of bytes', async (t) => {
  const cases: [string[], RegExp][] = [
    [
      ['quantize', 'm.gguf', '--type', 'q4_0', '--max-bytes', '400000', '-o', '/tmp/x.gguf'],
      /--max-bytes goes with --type mixed/,
    ],
    [
      ['quantize', 'm.gguf', '--type', 'mixed', '--max-bytes', '400k', '-o', '/tmp/x.gguf'],
      /--max-bytes must be a number, got '400k'/,
    ],
    [
      ['quantize', 'm.gguf', '--type', 'mixed', '--max-bytes', '0', '-o', '/tmp/x.gguf'],
      /--max-bytes must be at least 1/,
    ],
  ];
  for (const [argv, re] of cases) {
    const c = captureIo();
    t.equal(await main(argv, c.io), 2, `${argv.join(' ')}: exit 2`);
    t.match(c.err(), re, `${argv.join(' ')}: says why`);
  }
});

t.test('the prompt from stdin (-p -, --file -) or a file (--file F)', { skip: noModel }, async (t) => {
  const base = ['run', '-t', '0', '-n', '4', '--json'];
  const direct = captureIo();
  t.equal(await main([...base, '-p', 'The jury said'], direct.io), 0);
  const want = JSON.parse(direct.out()) as { prompt: string; generated_ids: number[] };

  for (const args of [
    ['-p', '-'],
    ['--file', '-'],
  ]) {
    const c = captureIo('The jury said\n');
    t.equal(await main([...base, ...args], c.io), 0, `${args.join(' ')}: exit 0\n${c.err()}`);
    const got = JSON.parse(c.out()) as { prompt: string; generated_ids: number[] };
    t.equal(got.prompt, 'The jury said', `${args.join(' ')}: the prompt is stdin without its final newline`);
    t.same(got.generated_ids, want.generated_ids, `${args.join(' ')}: same tokens as --prompt`);
  }

  const dir = mkdtempSync(join(tmpdir(), 'itera-prompt-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const f = join(dir, 'prompt.txt');
  writeFileSync(f, 'The jury said\r\n');
  const c = captureIo();
  t.equal(await main([...base, '--file', f], c.io), 0);
  t.equal(
    (JSON.parse(c.out()) as { prompt: string }).prompt,
    'The jury said',
    '--file F: the file without its final newline',
  );

  const both = captureIo();
  t.equal(await main([...base, '-p', 'x', '--file', f], both.io), 2);
  t.match(both.err(), /--prompt TEXT or --file FILE, not both/);
  const missing = captureIo();
  t.equal(await main([...base, '--file', join(dir, 'nope.txt')], missing.io), 1);
  t.match(missing.err(), /prompt file not found: .*nope\.txt/);
});

t.test('a closed output stops the generation (in process)', { skip: noModel }, async (t) => {
  const c = captureIo();
  let closedAfter = 3;
  c.io.closed = () => c.writes() >= closedAfter;
  const code = await main(['run', '-p', 'The jury said', '-n', '100000', '--no-eos', '-t', '0'], c.io);
  t.equal(code, 0, 'exit 0');
  t.ok(c.writes() <= closedAfter + 1, `it stopped writing (${c.writes()} writes)`);
  t.equal(c.err(), '', 'and says nothing');
  closedAfter = Infinity;
});

const noBash = spawnSync('bash', ['--version']).status === 0 ? false : 'bash is not available';

t.test('itera run | head -c 10: quiet, status 0, stops early', { skip: noModel || noBash }, async (t) => {
  const bin = join(repoRoot(), 'bin', 'itera.js');
  const t0 = performance.now();
  // 2,000,000 tokens would take minutes; stopped, the run ends in about a second
  const r = spawnSync(
    'bash',
    [
      '-c',
      `"${process.execPath}" "${bin}" run -p "The jury said" -n 2000000 --no-eos | head -c 10; echo "status=\${PIPESTATUS[0]}" >&2`,
    ],
    { encoding: 'utf8', timeout: 60_000 },
  );
  const s = (performance.now() - t0) / 1000;
  t.equal(r.stdout, 'The jury s', 'head got its 10 bytes');
  t.match(r.stderr, /status=0\s*$/, `itera exited 0\n${r.stderr}`);
  t.notMatch(r.stderr, /EPIPE|Error|\n\s+at /, 'no error, no stack trace');
  t.ok(s < 20, `it stopped generating (${s.toFixed(1)} s)`);
});

t.test('itera info shows each tensor with its type and shape', { skip: noModel }, async (t) => {
  const c = captureIo();
  t.equal(await main(['info'], c.io), 0);
  // the default model is a mix: its embedding kept at Q8_0, some expert matrices at Q4_0
  t.match(c.out(), /\n {2}token_embd\.weight +Q8_0 +\[2000, 64\]\n/, 'text: name, type, shape (the default model)');
  t.match(c.out(), /\n {2}blk\.3\.ffn_down_exps\.weight +Q4_0 +\[8, 64, 32\]\n/, 'text: a Q4_0 matrix of the mix');
  const j = captureIo();
  t.equal(await main(['info', '--json'], j.io), 0);
  const info = JSON.parse(j.out()) as { tensors: Record<string, { type: string; shape: number[] }> };
  t.same(info.tensors['token_embd.weight'], { type: 'Q8_0', shape: [2000, 64] }, 'JSON: tensors with type and shape');
});
