// Diagnostics on Node: systeminformation for the portable facts, and the Linux files a Raspberry
// Pi reports through (/proc/device-tree/model, /proc/cpuinfo's Revision, vcgencmd get_throttled,
// /sys/class/thermal, /sys/class/powercap). Everything the machine does not report is null with the
// reason. The environment is injectable so that tests can take every source away.

import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import { known, reported, unknown, type Diagnostics, type Reported } from './schema.js';
import { probeWasmFeatures, type WasmApi } from '../runtime/probe/probes.js';
import { measureSimdPeak } from '../runtime/probe/throughput.js';

/** The subset of systeminformation used here (so a test can stub it). */
export interface SiApi {
  cpu(): Promise<{
    manufacturer?: string;
    brand?: string;
    vendor?: string;
    speed?: number;
    speedMin?: number;
    speedMax?: number;
    cores?: number;
    physicalCores?: number;
    flags?: string;
  }>;
  mem(): Promise<{ total?: number; available?: number }>;
  osInfo(): Promise<{ distro?: string; release?: string; kernel?: string; platform?: string }>;
  system(): Promise<{
    manufacturer?: string;
    model?: string;
    virtual?: boolean;
    raspberry?: { type?: string; revision?: string; manufacturer?: string };
  }>;
  cpuTemperature(): Promise<{ main?: number | null }>;
  cpuCurrentSpeed(): Promise<{ avg?: number }>;
}

export interface DiagEnv {
  /** null when systeminformation cannot be loaded */
  si: SiApi | null;
  readText(path: string): string | null;
  listDir(path: string): string[] | null;
  /** Runs a program, resolves its stdout, or null if it is missing or fails. */
  run(cmd: string, args: string[], timeoutMs: number): Promise<string | null>;
  loadavg(): number[] | null;
  platform: string;
  arch: string;
  version: string;
  v8: string | null;
  wasm: WasmApi | null | undefined;
  now(): Date;
}

function readTextSafe(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

function listDirSafe(path: string): string[] | null {
  try {
    return existsSync(path) ? readdirSync(path) : null;
  } catch {
    return null;
  }
}

function runSafe(cmd: string, args: string[], timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    try {
      execFile(cmd, args, { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout) => resolve(err ? null : stdout));
    } catch {
      resolve(null);
    }
  });
}

export async function nodeEnv(): Promise<DiagEnv> {
  let si: SiApi | null = null;
  try {
    si = (await import('systeminformation')).default as unknown as SiApi;
  } catch {
    si = null;
  }
  return {
    si,
    readText: readTextSafe,
    listDir: listDirSafe,
    run: runSafe,
    loadavg: () => (process.platform === 'win32' ? null : os.loadavg()),
    platform: process.platform,
    arch: process.arch,
    version: process.version,
    v8: process.versions.v8 ?? null,
    wasm: undefined,
    now: () => new Date(),
  };
}

/** A promise's value, or null if it throws or takes longer than ms. */
async function safe<T>(p: (() => Promise<T>) | undefined, ms = 4000): Promise<T | null> {
  if (!p) return null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p().catch(() => null),
      new Promise<null>((r) => {
        timer = setTimeout(() => r(null), ms);
      }),
    ]);
  } finally {
    if (timer) clearTimeout(timer);
  }
}

/** /proc/cpuinfo lines "key : value" (first occurrence of each key). */
export function parseCpuinfo(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i < 0) continue;
    const k = line.slice(0, i).trim();
    if (k && !m.has(k)) m.set(k, line.slice(i + 1).trim());
  }
  return m;
}

/** vcgencmd get_throttled bits (Raspberry Pi firmware documentation). */
const THROTTLE_BITS: [number, string][] = [
  [0, 'under-voltage detected'],
  [1, 'arm frequency capped'],
  [2, 'currently throttled'],
  [3, 'soft temperature limit active'],
  [16, 'under-voltage has occurred'],
  [17, 'arm frequency capping has occurred'],
  [18, 'throttling has occurred'],
  [19, 'soft temperature limit has occurred'],
];

export function decodeThrottled(stdout: string): { raw: string; flags: string[] } | null {
  const m = /throttled=(0x[0-9a-fA-F]+)/.exec(stdout);
  if (!m) return null;
  const v = parseInt(m[1]!, 16);
  return { raw: m[1]!, flags: THROTTLE_BITS.filter(([b]) => (v >>> b) & 1).map(([, s]) => s) };
}

const MHZ_TO_GHZ = (mhz: number): number => Math.round(mhz) / 1000;

/** Collects the diagnostics. `env` defaults to this Node process and machine. */
export async function collectDiagnostics(envIn?: DiagEnv): Promise<Diagnostics> {
  const env = envIn ?? (await nodeEnv());
  const si = env.si;
  const noSi = 'the systeminformation package could not be loaded';
  const [cpu, mem, osi, sys, temp, speed] = await Promise.all([
    safe(si ? () => si.cpu() : undefined),
    safe(si ? () => si.mem() : undefined),
    safe(si ? () => si.osInfo() : undefined),
    safe(si ? () => si.system() : undefined),
    safe(si ? () => si.cpuTemperature() : undefined),
    safe(si ? () => si.cpuCurrentSpeed() : undefined),
  ]);
  const cpuinfoText = env.readText('/proc/cpuinfo');
  const cpuinfo = cpuinfoText ? parseCpuinfo(cpuinfoText) : null;

  // CPU model: /proc/cpuinfo's "model name" is the full name; ARM kernels have no model name but
  // may give "Model" (the board) and "Hardware".
  const siModel = cpu ? [cpu.manufacturer, cpu.brand].filter((x) => x && x.trim()).join(' ') : '';
  let model: Reported<string>;
  if (cpuinfo?.get('model name')) model = known(cpuinfo.get('model name')!, '/proc/cpuinfo model name');
  else if (siModel) model = known(siModel, 'systeminformation cpu()');
  else
    model = unknown(
      cpuinfo
        ? '/proc/cpuinfo has no "model name" (usual on ARM) and systeminformation gave none'
        : si
          ? 'systeminformation gave no CPU brand and there is no /proc/cpuinfo'
          : noSi,
    );

  const ghz = (v: number | undefined, what: string): Reported<number> =>
    v !== undefined && v > 0
      ? known(v, `systeminformation cpu().${what}`)
      : unknown(
          si
            ? `the platform does not report the CPU's ${what} frequency (systeminformation gave ${v ?? 'nothing'})`
            : noSi,
        );
  let currentGHz: Reported<number>;
  const cpuMHz = cpuinfo?.get('cpu MHz');
  if (speed?.avg && speed.avg > 0) currentGHz = known(speed.avg, 'systeminformation cpuCurrentSpeed().avg');
  else if (cpuMHz && Number(cpuMHz) > 0)
    currentGHz = known(MHZ_TO_GHZ(Number(cpuMHz)), '/proc/cpuinfo cpu MHz (first core)');
  else currentGHz = unknown('neither systeminformation nor /proc/cpuinfo reports a current CPU frequency');

  const flagsText = cpu?.flags ?? cpuinfo?.get('flags') ?? cpuinfo?.get('Features') ?? '';
  const flags = flagsText.trim() ? flagsText.trim().split(/\s+/) : null;

  // device model: device tree first (Raspberry Pi and other ARM boards), then DMI / systeminformation
  const dt = env.readText('/proc/device-tree/model') ?? env.readText('/sys/firmware/devicetree/base/model');
  let device: Reported<string>;
  if (dt && dt.replace(/\0/g, '').trim()) device = known(dt.replace(/\0/g, '').trim(), '/proc/device-tree/model');
  else if (sys?.raspberry?.type)
    device = known(`Raspberry Pi ${sys.raspberry.type}`, 'systeminformation system().raspberry');
  else if (cpuinfo?.get('Model')) device = known(cpuinfo.get('Model')!, '/proc/cpuinfo Model');
  else if (sys && [sys.manufacturer, sys.model].some((x) => x && x.trim() && x !== '-')) {
    device = known(
      [sys.manufacturer, sys.model]
        .filter((x) => x && x.trim())
        .join(' ')
        .trim(),
      'systeminformation system()',
    );
  } else device = unknown('no /proc/device-tree/model, and the firmware (DMI) reports no system model');

  const rev = cpuinfo?.get('Revision');
  const revision: Reported<string> = rev
    ? known(rev, '/proc/cpuinfo Revision')
    : sys?.raspberry?.revision
      ? known(sys.raspberry.revision, 'systeminformation system().raspberry.revision')
      : unknown(
          cpuinfo
            ? '/proc/cpuinfo has no Revision line (only Raspberry Pi kernels report one)'
            : 'no /proc/cpuinfo on this machine',
        );

  let virtual: Reported<boolean>;
  if (flags?.includes('hypervisor')) virtual = known(true, "CPU flag 'hypervisor'");
  else if (sys && typeof sys.virtual === 'boolean') virtual = known(sys.virtual, 'systeminformation system().virtual');
  else virtual = unknown('the platform reports neither a hypervisor flag nor a virtualisation state');

  // temperature: systeminformation, then /sys/class/thermal zones
  let temperature: Reported<number>;
  if (temp && typeof temp.main === 'number' && Number.isFinite(temp.main))
    temperature = known(temp.main, 'systeminformation cpuTemperature().main');
  else {
    const zones = (env.listDir('/sys/class/thermal') ?? []).filter((z) => z.startsWith('thermal_zone'));
    let found: Reported<number> | null = null;
    for (const z of zones) {
      const t = env.readText(`/sys/class/thermal/${z}/temp`);
      const v = t === null ? NaN : Number(t.trim());
      if (Number.isFinite(v)) {
        found = known(v / 1000, `/sys/class/thermal/${z}/temp`);
        break;
      }
    }
    temperature =
      found ??
      unknown(
        zones.length
          ? '/sys/class/thermal has zones but none is readable'
          : `no /sys/class/thermal zones on this machine${env.listDir('/sys/class/thermal') === null ? ' (the folder is missing)' : ''} and systeminformation reports no CPU temperature`,
      );
  }

  // throttling: only the Raspberry Pi firmware reports it (vcgencmd)
  const vc = await env.run('vcgencmd', ['get_throttled'], 2000);
  const th = vc ? decodeThrottled(vc) : null;
  const throttled: Reported<{ raw: string; flags: string[] }> = th
    ? known(th, 'vcgencmd get_throttled')
    : unknown(
        vc === null
          ? 'vcgencmd is not available (only Raspberry Pi firmware reports throttling)'
          : `vcgencmd get_throttled printed something unexpected: ${vc.trim().slice(0, 80)}`,
      );

  const rapl = (env.listDir('/sys/class/powercap') ?? []).filter((z) => /^intel-rapl:\d+$/.test(z)).sort();
  let energy: Reported<string>;
  if (rapl.length === 0)
    energy = unknown(
      env.listDir('/sys/class/powercap') === null
        ? 'no /sys/class/powercap on this machine (no RAPL energy counter exposed)'
        : 'no intel-rapl zone under /sys/class/powercap',
    );
  else {
    const p = `/sys/class/powercap/${rapl[0]}/energy_uj`;
    energy =
      env.readText(p) !== null
        ? known(p, 'Linux RAPL powercap')
        : unknown(`${p} exists but is not readable (needs root on recent kernels)`);
  }

  const la = env.loadavg();
  const wasm = probeWasmFeatures(env.wasm === undefined ? undefined : env.wasm);
  return {
    schema: 'itera-diag/1',
    takenAt: env.now().toISOString(),
    host: {
      kind: 'node',
      version: env.version,
      arch: env.arch,
      platform: env.platform,
      engine: env.v8 ? known(`V8 ${env.v8}`, 'process.versions.v8') : unknown('process.versions.v8 is missing'),
    },
    cpu: {
      model,
      vendor: reported(
        cpu?.vendor || cpu?.manufacturer || cpuinfo?.get('vendor_id') || cpuinfo?.get('CPU implementer'),
        cpu ? 'systeminformation cpu()' : '/proc/cpuinfo',
        'the platform reports no CPU vendor',
      ),
      logicalCores: reported(
        cpu?.cores ?? (os.cpus().length || null),
        cpu ? 'systeminformation cpu().cores' : 'os.cpus()',
        'the platform reports no core count',
      ),
      physicalCores: reported(
        cpu?.physicalCores,
        'systeminformation cpu().physicalCores',
        si ? 'the platform reports no physical core count' : noSi,
      ),
      baseGHz: ghz(cpu?.speed, 'base'),
      minGHz: ghz(cpu?.speedMin, 'minimum'),
      maxGHz: ghz(cpu?.speedMax, 'maximum'),
      currentGHz,
      flags: flags
        ? known(flags, cpu?.flags ? 'systeminformation cpu().flags' : '/proc/cpuinfo')
        : unknown('the platform reports no CPU feature flags'),
      loadAverage:
        la && la.length === 3
          ? known(
              la.map((x) => Math.round(x * 100) / 100),
              'os.loadavg()',
            )
          : unknown('this platform has no load average (Windows)'),
    },
    memory: {
      totalBytes: reported(
        mem?.total ?? os.totalmem(),
        mem ? 'systeminformation mem().total' : 'os.totalmem()',
        'the platform reports no memory size',
      ),
      availableBytes: reported(
        mem?.available ?? os.freemem(),
        mem ? 'systeminformation mem().available' : 'os.freemem()',
        'the platform reports no available memory',
      ),
    },
    os: {
      name: reported(
        osi?.distro,
        'systeminformation osInfo().distro',
        si ? 'the OS reports no distribution name' : noSi,
      ),
      release: reported(osi?.release, 'systeminformation osInfo().release', si ? 'the OS reports no release' : noSi),
      kernel: reported(
        osi?.kernel,
        'systeminformation osInfo().kernel',
        si ? 'the OS reports no kernel version' : noSi,
      ),
    },
    device: { model: device, revision, virtual },
    thermal: { cpuTemperatureC: temperature, throttled },
    energy: { counter: energy },
    wasm,
    // measured with the engine's own WebAssembly; a test that takes WebAssembly away (wasm: null)
    // gets the reason instead
    simdPeak: measureSimdPeak(wasm.simd, env.wasm === null ? null : undefined),
  };
}

/** Every Reported field of a document, by dotted path (for tables and tests). */
export function reportedFields(
  d: unknown,
  prefix = '',
): [string, { value: unknown; reason?: string; source?: string }][] {
  const out: [string, { value: unknown; reason?: string; source?: string }][] = [];
  if (d === null || typeof d !== 'object' || Array.isArray(d)) return out;
  const o = d as Record<string, unknown>;
  if ('value' in o && ('reason' in o || 'source' in o))
    return [[prefix, o as { value: unknown; reason?: string; source?: string }]];
  for (const [k, v] of Object.entries(o)) out.push(...reportedFields(v, prefix ? `${prefix}.${k}` : k));
  return out;
}
