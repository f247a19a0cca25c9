// The itera command line: one subcommand per job, each with --help.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { closest, fail, parse, watchPipe, type Command, type Io } from './command.js';
import { run } from './commands/run.js';
import { logits } from './commands/logits.js';
import { score } from './commands/score.js';
import { bench } from './commands/bench.js';
import { convert } from './commands/convert.js';
import { info } from './commands/info.js';
import { diag } from './commands/diag.js';
import { exportCmd } from './commands/export.js';
import { report } from './commands/report.js';
import { compare } from './commands/compare.js';
import { data } from './commands/data.js';
import { pruneVocab } from './commands/prune-vocab.js';
import { quantize } from './commands/quantize.js';
import { serveDemo } from './commands/serve-demo.js';
import { serve } from './commands/serve.js';
import { service } from './commands/service.js';
import { tokenizer } from './commands/tokenizer.js';
import { train } from './commands/train.js';
import { packageRoot } from '../node/index.js';

export const commands: Command[] = [
  run,
  convert,
  info,
  logits,
  score,
  bench,
  diag,
  exportCmd,
  report,
  quantize,
  compare,
  data,
  tokenizer,
  train,
  pruneVocab,
  serve,
  service,
  serveDemo,
];

function version(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}

function usage(): string {
  const w = Math.max(...commands.map((c) => c.name.length));
  return `Usage: itera <command> [options]

Itera-Lite Edge ${version()}: tiny state-space + mixture-of-experts language models in WebAssembly.

Commands:
${commands.map((c) => `  ${c.name.padEnd(w)}  ${c.summary}`).join('\n')}

Run 'itera <command> --help' for a command's options.
`;
}

export async function main(argv: string[], io: Io = { out: process.stdout, err: process.stderr }): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    const target = name === 'help' ? commands.find((c) => c.name === rest[0]) : undefined;
    io.out.write(target ? target.help + '\n' : usage());
    return 0;
  }
  if (name === '--version' || name === '-v') {
    io.out.write(version() + '\n');
    return 0;
  }
  const cmd = commands.find((c) => c.name === name);
  if (!cmd) {
    const near = closest(
      name,
      commands.map((c) => c.name),
    );
    io.err.write(
      near
        ? `itera: unknown command '${name}'. Did you mean '${near}'?\nRun 'itera --help' for the list.\n`
        : `itera: unknown command '${name}'\n\n${usage()}`,
    );
    return 2;
  }
  // the real stdout: a reader that goes away (itera run | head) ends the command quietly
  const pipe = io.closed === undefined && io.out === process.stdout ? watchPipe(io.out, io.err) : null;
  const cio: Io = pipe ? { ...io, closed: pipe.closed } : io;
  try {
    const p = parse(cmd, rest);
    if (p === 'help') {
      cio.out.write(cmd.help + '\n');
      return 0;
    }
    const code = await cmd.run(p.values, p.positionals, cio);
    return pipe?.failed() ? 1 : code;
  } catch (e) {
    // a write after the reader left: not a failure of the command
    if (pipe?.closed()) return pipe.failed() ? 1 : 0;
    return fail(e, cmd.name, cio);
  }
}
