// The module's interface is written once, in assembly/abi.ts; host/runtime/abi.ts is generated
// from it. These tests fail when the generated copy is out of date, and check that the generator
// reads what it must (and refuses what it cannot read) so that the check itself can fail.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { repoRoot } from './shared.js';
import * as abi from '../runtime/abi.js';

const root = repoRoot();
const source = readFileSync(join(root, 'assembly', 'abi.ts'), 'utf8');
const { generateAbi } = (await import(pathToFileURL(join(root, 'scripts', 'gen-abi.mjs')).href)) as {
  generateAbi: (s: string) => string;
};

t.test('host/runtime/abi.ts is what scripts/gen-abi.mjs makes of assembly/abi.ts', async (t) => {
  t.equal(
    readFileSync(join(root, 'host', 'runtime', 'abi.ts'), 'utf8'),
    generateAbi(source),
    'run `npm run gen:abi` and commit the result',
  );
});

t.test('a change to assembly/abi.ts changes the generated copy', async (t) => {
  const bumped = source.replace('export const ABI_VERSION: i32 = 1;', 'export const ABI_VERSION: i32 = 2;');
  t.not(bumped, source, 'the edit applied');
  t.not(generateAbi(bumped), generateAbi(source));
  const renamed = source.replace("'ssm_a_log'", "'ssm_a_logx'");
  t.match(generateAbi(renamed), /'ssm_a_logx'/);
});

t.test('the generator refuses what it cannot read', async (t) => {
  t.throws(() => generateAbi(source + '\nexport const FOO: i32 = BAR + 1;\n'), /'BAR' is used before it is defined/);
  t.throws(() => generateAbi(source + '\nexport const FOO: i32 = 1.5;\n'), /cannot read the value '1.5'/);
  t.throws(() => generateAbi(source + '\nexport const FOO: i32 = 3 / 2;\n'), /not an integer/);
  t.throws(() => generateAbi(source + '\nexport function foo(): i32 { return 1; }\n'), /cannot read/);
  t.throws(() => generateAbi(source + '\nexport const ERR_X: i32 = -9;\n'), /needs a comment/);
});

t.test('the layout the hosts see', async (t) => {
  t.equal(abi.D_LAYERS, abi.D_GLOBALS + abi.SLOT_WORDS * abi.G_COUNT);
  t.equal(abi.GLOBAL_TENSORS.length, abi.G_COUNT, 'a name for every global slot');
  t.equal(abi.LAYER_TENSORS.length, abi.S_COUNT, 'a name for every layer slot');
  t.equal(abi.GLOBAL_TENSORS[abi.G_OUTPUT], 'output.weight');
  t.equal(abi.LAYER_TENSORS[abi.S_ROUTER], 'ffn_gate_inp.weight');
  t.equal(abi.ERROR_MESSAGES[abi.ERR_BAD_TOKEN], 'token id out of range');
  const codes = Object.entries(abi).filter(([k]) => k.startsWith('ERR_'));
  t.equal(codes.length, 6);
  t.ok(
    codes.every(([, v]) => typeof abi.ERROR_MESSAGES[v as number] === 'string'),
    'every error code has a message',
  );
  t.equal(Object.keys(abi.ERROR_MESSAGES).length, codes.length, 'and nothing else has one');
});
