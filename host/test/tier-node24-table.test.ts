// The Node 24 tier (x64), part two: the recorded sampling table (seeds, settings and the tokens
// they give, both builds) on the pinned official Node 24. See tier-node-common.ts.
import t from 'tap';
import { existsSync } from 'node:fs';
import { engineOption } from './tier-common.js';
import { nodeBinary, nodeTier } from './tier-node-common.js';

const node = nodeBinary('24');
t.test(
  'Node 24 x64: the sampling table',
  engineOption(existsSync(node) ? null : `the pinned Node 24 is not installed (${node})`),
  async (t) => nodeTier(t, '24', 'table'),
);
