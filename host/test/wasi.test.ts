// The standalone WASI module (build/itera-wasi.wasm, assembly/wasi/) in the two WASI runtimes
// that install from npm: Node's node:wasi and @wasmer/wasi. It must give exactly the token ids the
// Node API gives (golden greedy prompts, a fixed-seed sampled generation), logits within 1e-5,
// and a clear message with a non-zero exit for a missing file, a bad argument or a damaged file.
import t, { type Test } from 'tap';
import { readFileSync, writeFileSync, mkdtempSync, existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { IteraModel } from '../runtime/api.js';
import { readModelFile } from '../runtime/model-file.js';
import { readGguf, type GgufKV } from '../runtime/gguf.js';
import { writeGguf, type GgufTensorInput } from '../convert/gguf-write.js';
import { IteraError } from '../runtime/types.js';
import { writeModelFile } from '../convert/model-write.js';
import { WordTokenizer, type Tokenizer } from '../runtime/tokenizer/index.js';
import { BpeTokenizer, byteChar } from '../runtime/tokenizer/bpe.js';
import { trainBpe } from '../tokenize/bpe-train.js';
import { loadModel } from '../node/index.js';
import { needShared, requireShared, repoRoot } from './shared.js';
import { maxAbsDiff, randomWeights, tensorShapes, tinyModelFile, TINY, wasmBytes, readF32File } from './helpers.js';
import { convertReference } from './reference-model.js';

const WASM = join(repoRoot(), 'build', 'itera-wasi.wasm');
const GOLD = 'reference/golden/micro/reference.json';
const dir = mkdtempSync(join(tmpdir(), 'itera-wasi-'));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}
type Engine = 'node:wasi' | '@wasmer/wasi';
const ENGINES: Engine[] = ['node:wasi', '@wasmer/wasi'];

let module: WebAssembly.Module | null = null;
function wasiModule(): WebAssembly.Module {
  if (!module) module = new WebAssembly.Module(readFileSync(WASM));
  return module;
}

/** stdout as text, decoded as the API decodes (invalid or cut UTF-8 -> U+FFFD, a BOM kept): a BPE
 *  model's output is bytes, and may stop inside a character. */
function utf8(b: Uint8Array): string {
  return new TextDecoder('utf-8', { ignoreBOM: true }).decode(b);
}

/** Runs the module with args (paths absolute, inside `dir`); files written under dir are real. */
async function run(engine: Engine, args: string[]): Promise<Run> {
  const t0 = performance.now();
  // In a child process, one run each (scripts/engines/wasi-run.mjs), for both runtimes: Node 20's
  // experimental WASI and @wasmer/wasi in the same process crashed it now and then (SIGSEGV), and
  // @wasmer/wasi kept in-process across the suite's runs threw "memory access out of bounds" in
  // about half the suite's runs
  const r = spawnSync(
    process.execPath,
    [
      '--no-warnings',
      join(repoRoot(), 'scripts', 'engines', 'wasi-run.mjs'),
      engine === 'node:wasi' ? 'node' : 'wasmer',
      '--wasm',
      WASM,
      '--',
      ...args,
    ],
    { cwd: dir, maxBuffer: 64 << 20 },
  );
  if (r.error) throw r.error;
  if (r.signal) throw new Error(`${engine} run died of ${r.signal}`);
  return {
    code: r.status ?? -1,
    stdout: utf8(r.stdout),
    stderr: r.stderr.toString('utf8'),
    ms: performance.now() - t0,
  };
}

function idsOf(r: Run): { prompt: number[]; generated: number[] } {
  const line = (k: string): number[] => {
    const m = new RegExp(`^${k}: ?(.*)$`, 'm').exec(r.stdout);
    if (!m) return [];
    return m[1].trim() === '' ? [] : m[1].trim().split(/\s+/).map(Number);
  };
  return { prompt: line('prompt_ids'), generated: line('generated_ids') };
}

/** A small model that needs nothing from ../shared: random weights, a made-up word vocabulary. */
function tinyModel(): Uint8Array {
  const words = ['<PAD>', '<UNK>', '<BOS>', '<EOS>'];
  for (let i = words.length; i < TINY.vocabSize; i++) words.push(`w${i}`);
  const tok = new WordTokenizer(words, { pad: 0, unk: 1, bos: 2, eos: 3 });
  const shapes = tensorShapes(TINY);
  const tensors = [...randomWeights(TINY, 7)].map(([name, data]) => ({ name, shape: shapes.get(name)!, data }));
  return writeModelFile({ config: TINY, tensors, tokenizer: tok, name: 'tiny' });
}

/** A model with random weights around a BPE tokenizer (its vocabulary size is the tokenizer's). */
function bpeModel(tok: Tokenizer, seed: number): Uint8Array {
  const config = { ...TINY, vocabSize: tok.size, maxSeqLength: 128 };
  const shapes = tensorShapes(config);
  const tensors = [...randomWeights(config, seed)].map(([name, data]) => ({ name, shape: shapes.get(name)!, data }));
  return writeModelFile({ config, tensors, tokenizer: tok, name: 'tiny-bpe' });
}

const BPE_CORPUS = [
  'The cat sat on the mat. The cat ate the rat!',
  "It's the end of the line, isn't it? Don't stop: 1961, 1962 and 2024.",
  'Naïve café owners — über-cool — serve crème brûlée. 東京は大きい。 Emoji 😀😃 too.',
  'Line one\r\nLine two\n\n\tIndented   with   spaces\n',
  'the the the there their then them these those thesis',
];

/** Prompts for the BPE cases: punctuation, digits, runs of spaces, newlines, non-ASCII, specials' names. */
const BPE_PROMPTS = [
  'café — 1961',
  "It's 1961,  isn't it?\nThe  end.  ",
  'x "(quoted)" y\r\n\tz',
  'Naïve über-cool 東京 😀 <EOS> the thesis',
  '   leading spaces and trailing \t',
  'a',
];

const wasmThere = existsSync(WASM);
const noWasm = wasmThere || process.env.CI ? {} : { skip: `${WASM} is not built (npm run build:wasm)` };

t.test('the module imports only wasi_snapshot_preview1 and exports _start', noWasm, async (t) => {
  const imports = WebAssembly.Module.imports(wasiModule());
  t.ok(imports.length > 0, `${imports.length} imports`);
  t.same(
    [...new Set(imports.map((i) => i.module))],
    ['wasi_snapshot_preview1'],
    'every import is from wasi_snapshot_preview1',
  );
  t.ok(
    WebAssembly.Module.exports(wasiModule()).some((e) => e.name === '_start' && e.kind === 'function'),
    '_start is exported',
  );
  t.ok(
    WebAssembly.Module.exports(wasiModule()).some((e) => e.name === 'memory'),
    'memory is exported',
  );
});

t.test('tiny model: greedy and fixed-seed sampled ids and logits equal the Node API', noWasm, async (t) => {
  const bytes = tinyModel();
  const path = join(dir, 'tiny.gguf');
  writeFileSync(path, bytes);
  const api = await IteraModel.fromBytes(bytes, wasmBytes('simd'));
  const prompt = 'w5 w9 w17 nothing w33';
  const want = api.encode(prompt);
  for (const engine of ENGINES) {
    for (const o of [
      { temperature: 0, topK: 0, topP: 1, seed: 0 },
      { temperature: 0.9, topK: 10, topP: 0.9, seed: 42 },
      { temperature: 1.3, topK: 0, topP: 1, seed: 2 ** 40 + 5 },
    ]) {
      const r = await run(engine, [
        path,
        prompt,
        '-n',
        '40',
        '--no-eos',
        '--ids',
        '-t',
        String(o.temperature),
        '-k',
        String(o.topK),
        '--top-p',
        String(o.topP),
        '-s',
        String(o.seed),
      ]);
      t.equal(r.code, 0, `${engine} exit 0 (${r.stderr.trim().split('\n').pop()})`);
      const ids = idsOf(r);
      t.same(ids.prompt, want, `${engine}: the prompt tokenizes as the API does`);
      const g = api.generate(prompt, { ...o, maxTokens: 40, stopAtEos: false });
      t.same(
        ids.generated,
        g.ids,
        `${engine} t=${o.temperature} k=${o.topK} p=${o.topP} seed=${o.seed}: the API's ids`,
      );
    }
    const lf = join(dir, 'tiny.logits');
    const r = await run(engine, [path, '--prompt-ids', want.join(','), '--logits', lf, '-n', '1']);
    t.equal(r.code, 0, `${engine} --logits exit 0`);
    const got = readF32File(lf);
    const d = maxAbsDiff(got, api.logits(want));
    t.ok(d <= 1e-5, `${engine}: prompt logits within 1e-5 of the API (max ${d.toExponential(2)})`);
    t.match(
      r.stderr,
      /\[1 tokens, .* tokens\/s, prompt \d+ tokens in .* ms, model loaded in .* ms, simd\]/,
      `${engine}: timing line on stderr`,
    );
  }
  api.dispose();
});

t.test('stored types: F16, Q8_0 and Q4_0 files give the Node API ids and logits', noWasm, async (t) => {
  // the two readers (host/runtime/model-file.ts and assembly/wasi/model-file.ts) on the same
  // files, every tensor type the runtime runs; 32-wide so the matrices are whole blocks
  const wide = { ...TINY, hiddenSize: 32, ssmInnerSize: 64, expertSize: 32, vocabSize: 31 };
  for (const [config, type] of [
    [TINY, 'F16'],
    [wide, 'F16'],
    [wide, 'Q8_0'],
    [wide, 'Q4_0'],
  ] as const) {
    const bytes = tinyModelFile(config, 3, type);
    const path = join(dir, `tiny-${type}.gguf`);
    writeFileSync(path, bytes);
    const api = await IteraModel.fromBytes(bytes, wasmBytes('simd'));
    const prompt = 'the cat sat';
    const want = api.encode(prompt);
    const what = `${type}, d ${config.hiddenSize}`;
    for (const engine of ENGINES) {
      const r = await run(engine, [
        path,
        prompt,
        '-n',
        '24',
        '--no-eos',
        '--ids',
        '-t',
        '0.8',
        '-k',
        '0',
        '--top-p',
        '1',
        '-s',
        '9',
      ]);
      t.equal(r.code, 0, `${engine} ${what}: exit 0 (${r.stderr.trim().split('\n').pop()})`);
      const g = api.generate(prompt, { temperature: 0.8, topK: 0, topP: 1, seed: 9, maxTokens: 24, stopAtEos: false });
      t.same(idsOf(r).generated, g.ids, `${engine} ${what}: the API's sampled ids`);
      const lf = join(dir, `tiny-${type}.logits`);
      const rl = await run(engine, [path, '--prompt-ids', want.join(','), '--logits', lf, '-n', '1']);
      t.equal(rl.code, 0, `${engine} ${what}: --logits exit 0`);
      const got = readF32File(lf);
      t.equal(maxAbsDiff(got, api.logits(want)), 0, `${engine} ${what}: the API's logits, bit for bit`);
    }
    api.dispose();
  }
});

t.test('golden greedy prompts and a sampled generation: the same ids as the Node API', needShared(GOLD), async (t) => {
  const ref = JSON.parse(readFileSync(requireShared(GOLD), 'utf8')) as {
    greedy_generation: { cases: { prompt: string; prompt_ids: number[]; greedy_ids: number[] }[] };
    logits_cases: { name: string; input_ids: number[] }[];
  };
  const bytes = convertReference();
  const path = join(dir, 'micro.gguf');
  writeFileSync(path, bytes);
  const api = await IteraModel.fromBytes(bytes, wasmBytes('simd'));
  for (const engine of ENGINES) {
    for (const g of ref.greedy_generation.cases) {
      const r = await run(engine, [path, g.prompt, '-t', '0', '-n', String(g.greedy_ids.length), '--no-eos', '--ids']);
      t.equal(r.code, 0, `${engine} "${g.prompt}" exit 0`);
      const ids = idsOf(r);
      t.same(ids.prompt, g.prompt_ids, `${engine} "${g.prompt}": golden prompt ids`);
      t.same(
        ids.generated,
        api.generate(g.prompt, { temperature: 0, maxTokens: g.greedy_ids.length, stopAtEos: false }).ids,
        `${engine} "${g.prompt}": the API's ids`,
      );
      t.same(ids.generated, g.greedy_ids, `${engine} "${g.prompt}": the golden ids (${r.ms.toFixed(0)} ms)`);
    }
    const o = { temperature: 0.8, topK: 40, topP: 0.95, seed: 1234 };
    const r = await run(engine, [
      path,
      'Once upon a time,',
      '-n',
      '48',
      '--ids',
      '-t',
      '0.8',
      '-k',
      '40',
      '--top-p',
      '0.95',
      '-s',
      '1234',
    ]);
    t.same(
      idsOf(r).generated,
      api.generate('Once upon a time,', { ...o, maxTokens: 48 }).ids,
      `${engine}: fixed-seed sampled generation, the API's ids`,
    );
    const c = ref.logits_cases.find((x) => x.name === 'story_prompt') ?? ref.logits_cases[0];
    const lf = join(dir, 'micro.logits');
    const rl = await run(engine, [path, '--prompt-ids', c.input_ids.join(','), '--logits', lf, '-n', '1']);
    t.equal(rl.code, 0, `${engine} --logits exit 0`);
    const d = maxAbsDiff(readF32File(lf), api.logits(c.input_ids));
    t.ok(d <= 1e-5, `${engine} ${c.name}: logits within 1e-5 of the API (max ${d.toExponential(2)})`);
  }
  api.dispose();
});

t.test('invalid model files: the Node reader and the WASI reader both refuse each one', noWasm, async (t) => {
  // one shared set: each file is the tiny model with one thing wrong, made through the GGUF
  // writer so that only that thing is wrong; host/runtime/model-file.ts and
  // assembly/wasi/model-file.ts must both refuse it (an IteraError; exit 1 with a message)
  const good = readGguf(tinyModel());
  const withMeta = (key: string, value: GgufKV['value'] | undefined) =>
    writeGguf({
      metadata:
        value === undefined
          ? good.metadata.filter((kv) => kv.key !== key)
          : good.metadata.some((kv) => kv.key === key)
            ? good.metadata.map((kv) => (kv.key === key ? { key, value } : kv))
            : [...good.metadata, { key, value }],
      tensors: good.tensors,
    });
  const withTensors = (f: (ts: GgufTensorInput[]) => GgufTensorInput[]) =>
    writeGguf({ metadata: good.metadata, tensors: f(good.tensors.map((x) => ({ ...x }))) });
  const cases: [string, Uint8Array][] = [
    ['another architecture', withMeta('general.architecture', { type: 'string', value: 'llama' })],
    ['no vocabulary size', withMeta('itera-lite.vocab_size', undefined)],
    ['the vocabulary size as i32', withMeta('itera-lite.vocab_size', { type: 'i32', value: 50 })],
    ['no layer count', withMeta('itera-lite.block_count', undefined)],
    ['a zero hidden size', withMeta('itera-lite.embedding_length', { type: 'u32', value: 0 })],
    ['no tied flag', withMeta('itera-lite.tied_embeddings', undefined)],
    ['position_embedding = true', withMeta('itera-lite.position_embedding', { type: 'bool', value: true })],
    ['an unknown tokenizer kind', withMeta('tokenizer.ggml.model', { type: 'string', value: 'sentencepiece' })],
    ['no token list', withMeta('tokenizer.ggml.tokens', undefined)],
    ['a missing tensor', withTensors((ts) => ts.filter((x) => x.name !== 'blk.1.ssm_d'))],
    [
      'an extra tensor',
      withTensors((ts) => [...ts, { name: 'blk.9.extra', type: 0, shape: [4], data: new Uint8Array(16) }]),
    ],
    [
      'a tensor of the wrong shape',
      withTensors((ts) => ts.map((x) => (x.name === 'blk.0.ssm_d' ? { ...x, shape: [x.data.length / 8, 2] } : x))),
    ],
    [
      'a norm replaced by a Q8_0 block',
      withTensors((ts) =>
        ts.map((x) => (x.name === 'output_norm.weight' ? { ...x, type: 8, shape: [32], data: new Uint8Array(34) } : x)),
      ),
    ],
  ];
  for (const [what, bytes] of cases) {
    let tsCode = '';
    try {
      readModelFile(bytes);
    } catch (e) {
      tsCode = e instanceof IteraError ? e.code : `not an IteraError: ${String(e)}`;
    }
    t.ok(tsCode !== '' && !tsCode.startsWith('not'), `${what}: the Node reader refuses it (${tsCode})`);
    const path = join(dir, 'invalid.gguf');
    writeFileSync(path, bytes);
    const r = await run('node:wasi', [path, 'w5', '-n', '1']);
    t.equal(r.code, 1, `${what}: the WASI reader refuses it, exit 1`);
    t.match(r.stderr, /^itera-wasi: (not a GGUF|model file|GGUF)/, `${what}: ${r.stderr.trim().slice(0, 110)}`);
  }
});

t.test('a missing file, a bad argument, a damaged file: a message and a non-zero exit', noWasm, async (t) => {
  const bytes = tinyModel();
  const good = join(dir, 'tiny.gguf');
  writeFileSync(good, bytes);
  const cases: [string, string[], number, RegExp][] = [
    ['missing model file', [join(dir, 'nope.gguf'), 'w5'], 1, /cannot open model file .*nope\.gguf.*no such file/],
    ['no arguments', [], 2, /missing the model file/],
    ['no prompt', [good], 2, /missing the prompt/],
    ['unknown option', [good, 'w5', '--fast'], 2, /unknown option '--fast'/],
    ['bad number', [good, 'w5', '--max-tokens', 'lots'], 2, /--max-tokens must be a whole number/],
    ['bad temperature', [good, 'w5', '-t', '-1'], 2, /--temperature must be a finite number >= 0/],
    ['bad top-p', [good, 'w5', '--top-p', '0'], 2, /--top-p must be greater than 0/],
    ['option without value', [good, 'w5', '--seed'], 2, /needs a value/],
    ['empty prompt', [good, '   '], 1, /empty prompt/],
    ['token id out of range', [good, '--prompt-ids', '3,999'], 1, /token id 999 .* out of range/],
  ];
  for (const engine of ENGINES) {
    for (const [what, args, code, msg] of cases) {
      const r = await run(engine, args);
      t.equal(r.code, code, `${engine} ${what}: exit ${code}`);
      t.match(r.stderr, msg, `${engine} ${what}: says so`);
    }
  }
  // damaged files: every truncation point class and flipped bytes end in a message, never a trap
  const points = [
    0,
    3,
    4,
    8,
    20,
    24,
    40,
    100,
    300,
    1000,
    Math.floor(bytes.length / 2),
    bytes.length - 100,
    bytes.length - 1,
  ];
  let n = 0;
  for (const len of points) {
    const p = join(dir, `cut${len}.gguf`);
    writeFileSync(p, bytes.subarray(0, len));
    const r = await run('node:wasi', [p, 'w5', '-n', '2']);
    t.equal(r.code, 1, `truncated to ${len} bytes: exit 1`);
    t.match(
      r.stderr,
      /^itera-wasi: (not a GGUF|model file)/,
      `truncated to ${len} bytes: ${r.stderr.trim().slice(0, 100)}`,
    );
    n++;
  }
  let x = 12345;
  for (let i = 0; i < 40; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const at = x % Math.min(bytes.length, 4000); // the header, metadata and tensor table
    const b = bytes.slice();
    b[at] ^= 0xff;
    const p = join(dir, 'flip.gguf');
    writeFileSync(p, b);
    const r = await run(i % 2 ? '@wasmer/wasi' : 'node:wasi', [p, 'w5', '-n', '2']);
    t.ok(
      r.code === 0 || (r.code === 1 && /^itera-wasi: /.test(r.stderr)),
      `byte ${at} flipped: exit ${r.code}${r.code ? ' — ' + r.stderr.trim().slice(0, 90) : ''}`,
    );
    t.notOk(/internal error|RuntimeError|unreachable/.test(r.stderr), `byte ${at} flipped: no trap`);
    n++;
  }
  t.ok(n > 50, `${n} damaged files`);
});

/** Greedy and fixed-seed sampled runs of a BPE model: prompt ids, generated ids and text equal the API's. */
async function bpeRuns(
  t: Test,
  path: string,
  api: { encode(s: string): number[]; generate(p: string, o: object): { ids: number[]; text: string } },
  prompts: string[],
  n: number,
): Promise<void> {
  const opts = [
    { temperature: 0, topK: 0, topP: 1, seed: 0 },
    { temperature: 0.9, topK: 40, topP: 0.95, seed: 1961 },
  ];
  for (const engine of ENGINES) {
    for (const prompt of prompts) {
      for (const o of opts) {
        const args = [
          path,
          prompt,
          '-n',
          String(n),
          '--no-eos',
          '-t',
          String(o.temperature),
          '-k',
          String(o.topK),
          '--top-p',
          String(o.topP),
          '-s',
          String(o.seed),
        ];
        const g = api.generate(prompt, { ...o, maxTokens: n, stopAtEos: false });
        const r = await run(engine, [...args, '--ids']);
        const what = `${engine} ${JSON.stringify(prompt)} t=${o.temperature} seed=${o.seed}`;
        t.equal(r.code, 0, `${what}: exit 0 (${r.stderr.trim().split('\n').pop()})`);
        const ids = idsOf(r);
        t.same(ids.prompt, api.encode(prompt), `${what}: the prompt tokenizes as the API does`);
        t.same(ids.generated, g.ids, `${what}: the API's ids`);
        const plain = await run(engine, args);
        t.equal(plain.stdout, g.text + '\n', `${what}: the streamed text is the API's text`);
      }
    }
  }
}

t.test('itera-bpe: a trained tokenizer, prompts and generations equal the Node API', noWasm, async (t) => {
  const tok = trainBpe(BPE_CORPUS, 330).tokenizer;
  const bytes = bpeModel(tok, 11);
  const path = join(dir, 'tiny-bpe.gguf');
  writeFileSync(path, bytes);
  const api = await IteraModel.fromBytes(bytes, wasmBytes('simd'));
  await bpeRuns(t, path, api, BPE_PROMPTS, 24);
  // the module's own encoder on more text, against the TypeScript one (prompt ids only)
  let x = 7;
  const pool = [
    ...'abcdefghijklmnopqrstuvwxyz ABCXYZ 0123456789      \t\r\n.,;:!?\'"()[]-\x01\x07\x1b\x7féüßøñçÅ東京日本語😀😃🎉👍🏽\u200b\u00a0\ufeffΩπσthe the cat sat',
  ];
  for (let i = 0; i < 12; i++) {
    let text = '';
    for (let j = 0; j < 60; j++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      text += pool[x % pool.length];
    }
    const r = await run('node:wasi', [path, text, '-n', '1', '--ids']);
    t.equal(r.code, 0, `random text ${i}: exit 0`);
    t.same(idsOf(r).prompt, api.encode(text), `random text ${i}: the API's ids`);
  }
  api.dispose();
});

t.test('itera-bpe: a vocabulary without some byte tokens (<UNK>) and hand-made merges', noWasm, async (t) => {
  // specials at 0..3, then bytes a, b, space, '.', then the merges of docs/tokenizers.md section 3
  const tokens = [
    '<PAD>',
    '<UNK>',
    '<BOS>',
    '<EOS>',
    'a',
    'b',
    byteChar(0x20),
    '.',
    'aa',
    'aaa',
    'bb',
    'aab',
    byteChar(0x20) + 'a',
  ];
  const merges = ['a a', 'aa a', 'b b', 'aa b', byteChar(0x20) + ' a'];
  const tok = new BpeTokenizer(tokens, merges, { pad: 0, unk: 1, bos: 2, eos: 3 });
  const bytes = bpeModel(tok, 5);
  const path = join(dir, 'hand-bpe.gguf');
  writeFileSync(path, bytes);
  const api = await IteraModel.fromBytes(bytes, wasmBytes('simd'));
  const vectors: [string, string[]][] = [
    ['aaa', ['aaa']],
    ['aaaa', ['aa', 'aa']],
    ['aab', ['aab']],
    ['abb', ['a', 'bb']],
    ['aaab', ['aaa', 'b']],
  ];
  for (const [text, want] of vectors) {
    const r = await run('node:wasi', [path, text, '-n', '1', '--ids']);
    t.same(
      idsOf(r).prompt,
      want.map((w) => tokens.indexOf(w)),
      `${text} -> ${want.join(', ')}`,
    );
  }
  await bpeRuns(t, path, api, ['aab abba. zz café', 'a  a\nb'], 16);
  api.dispose();
});

const STUDENT = join(repoRoot(), 'models', 'student-q8_0.gguf');
t.test(
  'itera-bpe: the shipped student models/student-q8_0.gguf, the same ids and text as the Node API',
  existsSync(STUDENT) && wasmThere ? {} : { skip: `${STUDENT} or ${WASM} is missing` },
  async (t) => {
    const api = await loadModel(STUDENT);
    const path = join(dir, 'student-q8_0.gguf');
    writeFileSync(path, readFileSync(STUDENT));
    await bpeRuns(t, path, api, ['café — 1961', "It's 1961,  isn't it?\nThe  end.", 'Once upon a time'], 24);
    api.dispose();
  },
);
