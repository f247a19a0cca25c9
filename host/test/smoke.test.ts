import t from 'tap';
import { readFileSync } from 'node:fs';

t.test('release wasm builds and instantiates', async (t) => {
  const bytes = readFileSync(new URL('../../../build/itera.wasm', import.meta.url));
  const { instance } = await WebAssembly.instantiate(bytes, {});
  t.equal((instance.exports.abi_version as () => number)(), 1);
});
