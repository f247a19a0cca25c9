// The CLI's contract: --help on every command, usage mistakes exit 2 with a pointer to --help,
// runtime errors exit 1 with a sentence, never a stack trace.
import t from 'tap';
import { commands, main } from '../cli/itera.js';
import { captureIo } from './helpers.js';

t.test('every command has --help, listed in the top-level help', async (t) => {
  const top = captureIo();
  t.equal(await main(['--help'], top.io), 0);
  for (const c of commands) {
    t.match(top.out(), new RegExp(`\\n  ${c.name} `), `${c.name} is listed`);
    const h = captureIo();
    t.equal(await main([c.name, '--help'], h.io), 0, `${c.name} --help exits 0`);
    t.match(h.out(), /Usage: itera /, `${c.name} --help shows a usage line`);
  }
});

t.test('usage mistakes exit 2 and say what to do; runtime errors exit 1 with a sentence', async (t) => {
  const u = captureIo();
  t.equal(await main(['frobnicate'], u.io), 2);
  t.match(u.err(), /unknown command 'frobnicate'/);
  const cases: [string[], number, RegExp][] = [
    [['run', '--temperature', 'hot'], 2, /--temperature must be a number, got 'hot'.*Try 'itera run --help'/s],
    [['run', '--top-p', '0'], 2, /--top-p must be greater than 0 and at most 1/],
    [['run', '--max-tokens=-3'], 2, /--max-tokens must be at least 0/],
    [['run', '--max-tokens', '-3'], 2, /argument is ambiguous.*--max-tokens=-XYZ/s],
    [['run', '--bogus'], 2, /Unknown option '--bogus'/],
    [['convert'], 2, /missing argument/],
    [['convert', 'nope.pt', '--tokenizer', 'nope.json', '-o', '/tmp/x.gguf'], 1, /file not found: nope\.pt/],
    [['run', '--model', '/nonexistent/m.gguf'], 1, /model file not found/],
    [['logits', '--ids', '1,x', '-o', '/tmp/o.f32'], 2, /'x' is not a token id/],
  ];
  for (const [argv, code, re] of cases) {
    const c = captureIo();
    t.equal(await main(argv, c.io), code, `${argv.join(' ')}: exit ${code}`);
    t.match(c.err(), re, `${argv.join(' ')}: says why`);
    t.notMatch(c.err(), /\n\s+at /, `${argv.join(' ')}: no stack trace`);
  }
});
