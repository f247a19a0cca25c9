import type { Command } from '../command.js';
import { fmtBytes } from '../command.js';
import { collectDiagnostics, reportedFields } from '../../diag/node.js';
import { resolveBuild } from '../../node/index.js';
import { buildFrom } from './model-option.js';
import type { Diagnostics } from '../../diag/schema.js';

export const diag: Command = {
  name: 'diag',
  summary: 'hardware and runtime diagnostics: CPU, memory, OS, device, temperature, WebAssembly features',
  help: `Usage: itera diag [--build B] [--json]

Reports what this machine and JavaScript engine are: CPU model, cores and frequencies, memory, OS,
device model (a Raspberry Pi's board name and revision), CPU temperature and throttling, the
energy counter the bench can use, Node's version and architecture, and the WebAssembly features
the engine actually has (SIMD, relaxed SIMD, threads, bulk memory: tiny probe modules are
validated, instantiated and run), and the engine's SIMD ceiling on this CPU: multiply-adds per
second on one thread of f32x4.mul + f32x4.add (what FP32 matrix kernels are made of) and of
i32x4.dot_i16x8_s + i32x4.add (the quantized ones), from timed probe loops (about half a second).
A field the platform does not report is shown as unknown with
the reason (in JSON: {"value": null, "reason": "..."}), never guessed. Last, the module build that
runs here for --build B (default auto): for relaxed, whether this engine validates it and its
self-test passes, whether its multiply-adds fuse, or why the SIMD build runs instead.

Options:
      --build B        the build to check: auto (default), simd, scalar, relaxed
      --json           print the diagnostics as JSON (docs/bench-schema.md describes it)
  -h, --help           this help`,
  options: { json: { type: 'boolean' }, build: { type: 'string' } },
  async run(v, _p, io) {
    const d = await collectDiagnostics();
    const asked = buildFrom(v);
    const r = await resolveBuild(asked);
    const build = { asked, ran: r.build, note: r.note, fusedMadd: r.fused };
    if (v.json) io.out.write(JSON.stringify({ ...d, build }, null, 2) + '\n');
    else io.out.write(formatDiagnostics(d) + formatBuild(build));
    return 0;
  },
};

function show(r: { value: unknown; reason?: string }, fmt: (x: never) => string = (x) => String(x)): string {
  if (r.value === null) return `unknown (${r.reason})`;
  return fmt(r.value as never);
}

const yes = (b: boolean): string => (b ? 'yes' : 'no');
const gmac =
  (mix: string) =>
  (x: number): string =>
    `${x.toFixed(1)} G multiply-adds/s, one thread (${mix})`;
const fmtMem = (n: number): string => (n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(1)} GiB` : fmtBytes(n));

export function formatDiagnostics(d: Diagnostics): string {
  const ghz = (x: number): string => `${x.toFixed(2)} GHz`;
  const rows: [string, string][] = [
    ['host', `Node ${d.host.version} ${d.host.platform} ${d.host.arch}, ${show(d.host.engine)}`],
    ['cpu', show(d.cpu.model)],
    ['cores', `${show(d.cpu.logicalCores)} logical, ${show(d.cpu.physicalCores)} physical`],
    [
      'frequency',
      `base ${show(d.cpu.baseGHz, ghz)}; min ${show(d.cpu.minGHz, ghz)}; max ${show(d.cpu.maxGHz, ghz)}; now ${show(d.cpu.currentGHz, ghz)}`,
    ],
    ['load average', show(d.cpu.loadAverage, (x: number[]) => x.join(', '))],
    ['memory', `${show(d.memory.totalBytes, fmtMem)} total, ${show(d.memory.availableBytes, fmtMem)} available`],
    ['os', `${show(d.os.name)} ${d.os.release.value ?? ''}, kernel ${show(d.os.kernel)}`],
    ['device', show(d.device.model)],
    ['board revision', show(d.device.revision)],
    ['virtualised', show(d.device.virtual, yes)],
    ['cpu temperature', show(d.thermal.cpuTemperatureC, (x: number) => `${x.toFixed(1)} °C`)],
    [
      'throttling',
      show(
        d.thermal.throttled,
        (x: { raw: string; flags: string[] }) =>
          `${x.raw}${x.flags.length ? ' (' + x.flags.join(', ') + ')' : ' (none)'}`,
      ),
    ],
    ['energy counter', show(d.energy.counter)],
    ['wasm simd', show(d.wasm.simd, yes)],
    ['wasm relaxed simd', show(d.wasm.relaxedSimd, yes)],
    ['wasm threads', show(d.wasm.threads, yes)],
    ['wasm bulk memory', show(d.wasm.bulkMemory, yes)],
    ['SharedArrayBuffer', show(d.wasm.sharedArrayBuffer, yes)],
    ...(d.simdPeak
      ? ([
          ['simd peak f32', show(d.simdPeak.f32MulAdd, gmac('f32x4.mul + f32x4.add'))],
          ['simd peak int16', show(d.simdPeak.i16DotAdd, gmac('i32x4.dot_i16x8_s + i32x4.add'))],
        ] as [string, string][])
      : []),
  ];
  const unknownCount = reportedFields(d).filter(([, r]) => r.value === null).length;
  const w = Math.max(...rows.map(([k]) => k.length));
  return (
    rows.map(([k, val]) => `${k.padEnd(w)}  ${val}`).join('\n') +
    `\n${''.padEnd(w)}  (${unknownCount} field${unknownCount === 1 ? '' : 's'} not reported by this platform; --json has every source and reason)\n`
  );
}

const BUILD_NAMES = { simd: 'SIMD', scalar: 'scalar', relaxed: 'relaxed-SIMD' } as const;

/** The line saying which module build runs here for the one asked for, and why. */
export function formatBuild(b: {
  asked: string;
  ran: 'simd' | 'scalar' | 'relaxed';
  note: string | null;
  fusedMadd: boolean | null;
}): string {
  const why =
    b.note ??
    (b.ran === 'relaxed'
      ? `self-test passed; multiply-adds ${b.fusedMadd ? 'fused (one rounding)' : 'unfused'}`
      : b.ran === 'simd'
        ? 'the same bits on every host'
        : 'this engine has no WebAssembly SIMD');
  return `module build: ${BUILD_NAMES[b.ran]} (asked: ${b.asked}; ${why})\n`;
}
