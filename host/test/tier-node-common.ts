// The pinned Node builds of the Node-version tiers (scripts/engines/node.sh,
// scripts/engines/node-versions.txt): where each one's node binary is.
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './shared.js';

/** The pinned versions, by major: { '22': '22.23.5', '24': '24.22.3' }. */
export function pinnedNodes(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(join(repoRoot(), 'scripts', 'engines', 'node-versions.txt'), 'utf8').split('\n')) {
    const m = /^(\d+)\s+(\d+\.\d+\.\d+)\s*$/.exec(line);
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

/** The node binary of the pinned build of a major version for an architecture (it may be absent). */
export function nodeBinary(major: string, arch: 'x64' | 'arm64' = 'x64'): string {
  const v = pinnedNodes()[major];
  if (v === undefined) throw new Error(`Node ${major} is not pinned in scripts/engines/node-versions.txt`);
  const cache = process.env.ITERA_ENGINE_CACHE ?? join(homedir(), '.cache', 'itera-engines');
  return join(cache, arch, `node-${v}`, 'bin', 'node');
}
