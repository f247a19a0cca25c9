#!/usr/bin/env node
// The `itera` command: the compiled CLI lives in dist/ (built by `npm run build`).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
const main = new URL('../dist/host/cli/itera.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  process.stderr.write(
    "itera: the CLI is not built (dist/ is missing): in a clone run 'npm run build'; a git dependency is never built (npm runs only 'prepare' there): install itera-lite from the registry or a tarball made by 'npm pack'\n",
  );
  process.exit(1);
}
const { main: run } = await import(main.href);
process.exitCode = await run(process.argv.slice(2));
