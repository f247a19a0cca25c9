// What the itera train tests share: the Python they need, and a small real text.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { loadBrown } from '../data/brown.js';

export const PY = '/usr/bin/python3';
export const torchOk = spawnSync(PY, ['-c', 'import torch, numpy'], { encoding: 'utf8' }).status === 0;
/** The tap skip option: skipped with the reason off CI, run (and failed) under CI. */
export const skipWithoutTorch =
  torchOk || process.env.CI ? false : `needs PyTorch for ${PY} (apt install python3-torch python3-numpy)`;

/** About 12 KB of real text in 20 documents (the first 600 characters of 20 Brown training
 *  files, separated by blank lines), written to `path`. */
export function writeSmallText(path: string): string {
  writeFileSync(
    path,
    loadBrown({ split: 'train' })
      .slice(0, 20)
      .map((d) => d.text.slice(0, 600))
      .join('\n\n') + '\n',
  );
  return path;
}
