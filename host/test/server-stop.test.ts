// Stop strings over streamed pieces: found across piece boundaries, nothing at or past one ever
// released, held-back text released when it turns out not to be a stop string.
import t from 'tap';
import { StopMatcher } from '../server/stop.js';

function run(stops: string[], pieces: string[]): { out: string[]; stopped: boolean; all: string } {
  const m = new StopMatcher(stops);
  const out: string[] = [];
  let stopped = false;
  for (const p of pieces) {
    const f = m.push(p);
    out.push(f.text);
    if (f.stopped) {
      stopped = true;
      break;
    }
  }
  if (!stopped) out.push(m.end());
  return { out, stopped, all: out.join('') };
}

t.test('no stop strings: every piece goes out as it comes', async (t) => {
  t.same(run([], ['a', 'b', 'c']).out, ['a', 'b', 'c', '']);
});

t.test('a stop string inside one piece cuts there', async (t) => {
  const r = run(['END'], ['hello END world']);
  t.equal(r.all, 'hello ');
  t.ok(r.stopped);
});

t.test('a stop string spanning three pieces: the start is held back, then cut', async (t) => {
  const r = run(['d the f'], [', an', 'd', ' the', ' first']);
  t.same(r.out, [', an', '', '', '']);
  t.equal(r.all, ', an');
  t.ok(r.stopped);
});

t.test('held-back text that is not a stop string goes out with the next piece, or at the end', async (t) => {
  t.same(run(['abc'], ['xa', 'bz', 'q']).out, ['x', 'abz', 'q', '']);
  t.same(run(['abc'], ['xab']).out, ['x', 'ab']);
});

t.test('the earliest of several stop strings wins', async (t) => {
  const r = run(['world', 'lo w'], ['hel', 'lo wor', 'ld']);
  t.equal(r.all, 'hel');
  t.ok(r.stopped);
});

t.test('released characters are counted', async (t) => {
  const m = new StopMatcher(['zz']);
  m.push('abz');
  t.equal(m.released, 2);
  m.push('y');
  t.equal(m.released, 4);
});
