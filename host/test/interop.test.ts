// Our files read by other people's code: the model files by @huggingface/gguf (the GGUF reader of
// the Hugging Face Hub), whose metadata (keys in order, value types by name, values), tensor
// types (by name), shapes and offsets must be what our reader says; the bench JSON by ajv, an
// independent JSON Schema 2020-12 validator, against docs/bench-schema.json (the committed results
// and a fresh `itera bench` run), agreeing with our own validator on damaged documents. ONNX
// Runtime running our ONNX export: that fresh run's native peer on the shipped model here, the
// logits against ours and PyTorch's in onnx-export.test.ts and position-free.test.ts.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gguf, GGMLQuantizationType, GGUFValueType } from '@huggingface/gguf';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { ggmlTypeName, readGguf, VALUE_TYPE_CODES, type GgufValue } from '../runtime/gguf.js';
import { MODEL_KEYS, readModelFile } from '../runtime/model-file.js';
import { writeModelFile } from '../convert/model-write.js';
import { WordTokenizer } from '../runtime/tokenizer/index.js';
import { validateBenchDocument } from '../bench/schema.js';
import { randomWeights, tensorShapes, TINY } from './helpers.js';
import { repoRoot } from './shared.js';

const root = repoRoot();
const work = mkdtempSync(join(tmpdir(), 'itera-interop-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));

/** GGUF's value type names as @huggingface/gguf spells them, for ours. */
const THEIR_TYPE_NAME: Record<keyof typeof VALUE_TYPE_CODES, string> = {
  u8: 'UINT8',
  i8: 'INT8',
  u16: 'UINT16',
  i16: 'INT16',
  u32: 'UINT32',
  i32: 'INT32',
  f32: 'FLOAT32',
  bool: 'BOOL',
  string: 'STRING',
  array: 'ARRAY',
  u64: 'UINT64',
  i64: 'INT64',
  f64: 'FLOAT64',
};

/** A value in a form both readers' values compare in (64-bit integers as strings). */
const plain = (v: unknown): unknown => (typeof v === 'bigint' ? v.toString() : Array.isArray(v) ? v.map(plain) : v);

/** The model files to read: every committed one, and two written here: a position-free model
 *  (the `itera-lite.position_embedding` key, no position tensor) stored as F16, and one with a
 *  word tokenizer. */
function modelFiles(): string[] {
  // the shipped models, and the test fixtures kept as files where there are any
  const files = [join(root, 'models'), join(root, 'host', 'test', 'fixtures', 'models')]
    .filter((dir) => existsSync(dir))
    .flatMap((dir) =>
      readdirSync(dir)
        .filter((f) => f.endsWith('.gguf'))
        .map((f) => join(dir, f)),
    );
  const shapes = tensorShapes(TINY);
  const words = ['<PAD>', '<UNK>', '<BOS>', '<EOS>'];
  for (let i = words.length; i < TINY.vocabSize; i++) words.push(`w${i}`);
  const tokenizer = new WordTokenizer(words, { pad: 0, unk: 1, bos: 2, eos: 3 });
  const all = [...randomWeights(TINY, 3)].map(([name, data]) => ({ name, shape: shapes.get(name)!, data }));
  const nopos = join(work, 'position-free-f16.gguf');
  writeFileSync(
    nopos,
    writeModelFile({
      config: { ...TINY, positionEmbedding: false },
      tensors: all.filter((x) => x.name !== 'position_embd.weight'),
      tokenizer,
      name: 'position-free',
      type: 'F16',
    }),
  );
  const wordsFile = join(work, 'words-q8_0.gguf');
  writeFileSync(wordsFile, writeModelFile({ config: TINY, tensors: all, tokenizer, name: 'words', type: 'Q8_0' }));
  return [...files, nopos, wordsFile];
}

t.test('@huggingface/gguf reads our model files as our reader does', async (t) => {
  const files = modelFiles();
  t.ok(files.length >= 8, `${files.length} files`);
  const typesSeen = new Set<string>();
  let positionFree = 0;
  for (const path of files) {
    const name = path.slice(path.lastIndexOf('/') + 1);
    const bytes = readFileSync(path);
    const ours = readGguf(bytes);
    const model = readModelFile(bytes); // and the file is one our runtime loads
    const theirs = await gguf(path, { allowLocalFile: true, typedMetadata: true });

    const tm = theirs.typedMetadata as unknown as Record<string, { value: unknown; type: number; subType?: number }>;
    t.equal(plain(tm.version!.value), ours.version, `${name}: version ${ours.version}`);
    t.equal(plain(tm.kv_count!.value), String(ours.metadata.length), `${name}: ${ours.metadata.length} keys`);
    t.equal(plain(tm.tensor_count!.value), String(ours.tensors.length), `${name}: ${ours.tensors.length} tensors`);
    const theirKeys = Object.keys(tm).filter((k) => !['version', 'kv_count', 'tensor_count'].includes(k));
    t.same(
      theirKeys,
      ours.metadata.map((kv) => kv.key),
      `${name}: the same keys in the same order`,
    );
    const diffs: string[] = [];
    for (const { key, value } of ours.metadata) {
      const th = tm[key];
      if (!th) continue;
      const v = value as GgufValue;
      if (GGUFValueType[th.type] !== THEIR_TYPE_NAME[v.type]) diffs.push(`${key}: type ${GGUFValueType[th.type]}`);
      if (v.type === 'array') {
        if (th.subType === undefined || GGUFValueType[th.subType] !== THEIR_TYPE_NAME[v.itemType])
          diffs.push(`${key}: item type ${th.subType}`);
      }
      if (JSON.stringify(plain(th.value)) !== JSON.stringify(plain(v.value))) diffs.push(`${key}: value differs`);
    }
    t.same(diffs, [], `${name}: every value, with its type, as ours`);
    t.equal(Number(theirs.tensorDataOffset), ours.dataOffset, `${name}: data section at ${ours.dataOffset}`);
    const tdiffs: string[] = [];
    t.equal(theirs.tensorInfos.length, ours.tensors.length, `${name}: tensor count`);
    ours.tensors.forEach((o, i) => {
      const th = theirs.tensorInfos[i];
      if (!th) return;
      typesSeen.add(ggmlTypeName(o.type));
      if (th.name !== o.name) tdiffs.push(`#${i}: ${th.name} vs ${o.name}`);
      if (GGMLQuantizationType[th.dtype] !== ggmlTypeName(o.type))
        tdiffs.push(`${o.name}: ${GGMLQuantizationType[th.dtype]} vs ${ggmlTypeName(o.type)}`);
      // GGUF stores the innermost dimension first; our reader gives PyTorch's order
      const shape = th.shape.map(Number).reverse();
      if (JSON.stringify(shape) !== JSON.stringify(o.shape)) tdiffs.push(`${o.name}: [${shape}] vs [${o.shape}]`);
      if (th.n_dims !== o.shape.length) tdiffs.push(`${o.name}: n_dims ${th.n_dims}`);
      if (Number(th.offset) !== o.offset) tdiffs.push(`${o.name}: offset ${th.offset} vs ${o.offset}`);
    });
    t.same(tdiffs, [], `${name}: every tensor's name, type, shape and offset as ours`);
    t.equal(
      tm['general.architecture']?.value,
      'itera-lite',
      `${name}: architecture itera-lite, ${model.tensors.size} tensors`,
    );
    if (tm[MODEL_KEYS.positionEmbedding]) {
      positionFree++;
      t.equal(tm[MODEL_KEYS.positionEmbedding]!.value, false, `${name}: position-free, as the key says`);
      t.notOk(
        theirs.tensorInfos.some((x) => x.name === 'position_embd.weight'),
        `${name}: no position tensor`,
      );
    }
  }
  t.ok(positionFree >= 1, `a position-free file was among them (${positionFree})`);
  for (const type of ['F32', 'F16', 'Q8_0', 'Q4_0'])
    t.ok(typesSeen.has(type), `${type} tensors were among them (${[...typesSeen].join(', ')})`);
});

t.test('ajv validates the bench JSON against docs/bench-schema.json', async (t) => {
  const schema = JSON.parse(readFileSync(join(root, 'docs', 'bench-schema.json'), 'utf8')) as object;
  // strict: ajv refuses a schema with unknown keywords or other mistakes, besides checking it
  // against the 2020-12 meta-schema
  const ajv = new Ajv2020({ allErrors: true, strict: true });
  const validate = ajv.compile(schema);
  const errors = (): string[] => (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`);

  const dir = join(root, 'reports', 'results');
  const committed = readdirSync(dir).filter((f) => f.endsWith('.json'));
  t.ok(committed.length >= 1, `${committed.length} committed result file(s)`);
  const docs: [string, unknown][] = committed.map((f) => [
    `reports/results/${f}`,
    JSON.parse(readFileSync(join(dir, f), 'utf8')),
  ]);

  // a fresh, short run of the CLI as a user runs it, with the native peer so its sections appear
  const out = join(work, 'bench.json');
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const r = spawnSync(
    process.execPath,
    [
      join(root, 'bin', 'itera.js'),
      'bench',
      '--model',
      join(root, 'models', 'student-q8_0.gguf'),
      '--runs',
      '1',
      '--peers',
      'ort-node',
      '--reference',
      'none',
      '--context',
      '16',
      '--prompt',
      '4',
      '--json',
      out,
    ],
    { encoding: 'utf8', env, timeout: 180_000 },
  );
  if (t.equal(r.status, 0, 'itera bench --runs 1 --peers ort-node --json ran')) {
    const fresh = JSON.parse(readFileSync(out, 'utf8')) as { models: { sameTokens: Record<string, boolean> }[] };
    docs.push(['a fresh itera bench run', fresh]);
    // the bench runs our ONNX export of the shipped (Q8_0) model in ONNX Runtime native
    t.equal(fresh.models[0]?.sameTokens['ort-node'], true, 'ONNX Runtime decoded our greedy tokens from the export');
  } else t.comment(r.stderr.slice(-2000));

  for (const [what, doc] of docs) {
    t.ok(validate(doc), `${what}: valid for ajv ${errors().slice(0, 5).join('; ')}`);
    t.same(validateBenchDocument(doc), [], `${what}: valid for our validator too`);
  }

  // damaged documents: ajv and our validator both refuse them
  const fresh = docs[docs.length - 1]![1] as Record<string, unknown> & { models: Record<string, unknown>[] };
  const damaged: [string, (d: typeof fresh) => void][] = [
    ['a required field missing', (d) => delete d.models[0]!.engines],
    ['a wrong type', (d) => (d.createdAt = 5)],
    ['another schema version', (d) => (d.schema = 'itera-bench/0')],
  ];
  for (const [what, damage] of damaged) {
    const d = structuredClone(fresh);
    damage(d);
    t.notOk(validate(d), `${what}: ajv refuses it (${errors()[0] ?? ''})`);
    t.not(validateBenchDocument(d).length, 0, `${what}: our validator refuses it too`);
  }
});
