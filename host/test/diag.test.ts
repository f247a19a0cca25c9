// Diagnostics: a field the platform does not report is null with a reason, never a guess; the
// WebAssembly probe modules are well-formed; the real machine's document matches the schema.
import t from 'tap';
import { collectDiagnostics, decodeThrottled, parseCpuinfo, reportedFields, type DiagEnv } from '../diag/node.js';
import { EMPTY_MODULE, PROBES, probe, probeWasmFeatures } from '../diag/probes.js';
import { validateAgainst, BENCH_JSON_SCHEMA } from '../bench/schema.js';

const diagSchema = (BENCH_JSON_SCHEMA.properties as Record<string, Record<string, unknown>>).diag!;

function bareEnv(over: Partial<DiagEnv> = {}): DiagEnv {
  return {
    si: null,
    readText: () => null,
    listDir: () => null,
    run: async () => null,
    loadavg: () => null,
    platform: 'linux',
    arch: 'arm64',
    version: 'v20.0.0',
    v8: null,
    wasm: null,
    now: () => new Date(0),
    ...over,
  };
}

t.test('nothing reported: every unknown field is null with a reason', async (t) => {
  const d = await collectDiagnostics(bareEnv());
  const fields = reportedFields(d);
  t.ok(fields.length >= 25, `${fields.length} reported fields`);
  for (const [path, r] of fields) {
    if (r.value === null) t.ok(typeof r.reason === 'string' && r.reason.length > 10, `${path}: null with a reason (${r.reason})`);
    else t.ok(typeof r.source === 'string' && r.source.length > 0, `${path}: a value with its source`);
  }
  t.equal(d.cpu.model.value, null);
  t.match(d.cpu.model.reason!, /systeminformation/);
  t.equal(d.thermal.cpuTemperatureC.value, null);
  t.match(d.thermal.cpuTemperatureC.reason!, /thermal/);
  t.equal(d.thermal.throttled.value, null);
  t.match(d.thermal.throttled.reason!, /vcgencmd/);
  t.equal(d.device.revision.value, null);
  t.equal(d.energy.counter.value, null);
  t.match(d.energy.counter.reason!, /powercap|RAPL/);
  t.equal(d.cpu.loadAverage.value, null);
  t.equal(d.wasm.simd.value, null, 'no WebAssembly: unknown, not false');
  t.match(d.wasm.simd.reason!, /no WebAssembly/);
  t.equal(d.host.arch, 'arm64');
  t.same(validateAgainst(diagSchema, d), [], 'matches the schema');
});

t.test('a Raspberry Pi as its files report it', async (t) => {
  const files: Record<string, string> = {
    '/proc/device-tree/model': 'Raspberry Pi 4 Model B Rev 1.4\0',
    '/proc/cpuinfo': 'processor\t: 0\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\n\nHardware\t: BCM2835\nRevision\t: c03114\nModel\t: Raspberry Pi 4 Model B Rev 1.4\n',
    '/sys/class/thermal/thermal_zone0/temp': '48312\n',
  };
  const d = await collectDiagnostics(bareEnv({
    readText: (p) => files[p] ?? null,
    listDir: (p) => (p === '/sys/class/thermal' ? ['cooling_device0', 'thermal_zone0'] : null),
    run: async (cmd) => (cmd === 'vcgencmd' ? 'throttled=0x50005\n' : null),
  }));
  t.equal(d.device.model.value, 'Raspberry Pi 4 Model B Rev 1.4');
  t.equal(d.device.model.source, '/proc/device-tree/model');
  t.equal(d.device.revision.value, 'c03114');
  t.equal(d.thermal.cpuTemperatureC.value, 48.312);
  t.same(d.thermal.throttled.value, { raw: '0x50005', flags: ['under-voltage detected', 'currently throttled', 'under-voltage has occurred', 'throttling has occurred'] });
  t.same(d.cpu.flags.value, ['fp', 'asimd', 'evtstrm', 'crc32', 'cpuid']);
  t.equal(d.cpu.model.value, null, 'an ARM /proc/cpuinfo has no model name: unknown, not guessed from the board');
});

t.test('helpers', async (t) => {
  t.same(decodeThrottled('throttled=0x0'), { raw: '0x0', flags: [] });
  t.equal(decodeThrottled('error'), null);
  t.equal(parseCpuinfo('a : 1\na : 2\nb:x').get('a'), '1', 'first occurrence');
});

t.test('probe modules', async (t) => {
  t.ok(WebAssembly.validate(EMPTY_MODULE));
  t.ok(WebAssembly.validate(PROBES.simd as BufferSource), 'Node 20 has SIMD');
  t.ok(WebAssembly.validate(PROBES.bulkMemory as BufferSource));
  t.ok(WebAssembly.validate(PROBES.threads as BufferSource));
  const f = probeWasmFeatures();
  t.equal(f.simd.value, true);
  t.equal(f.threads.value, true);
  t.equal(f.bulkMemory.value, true);
  t.type(f.relaxedSimd.value, 'boolean', 'relaxed SIMD: known either way');
  // a feature that validates but fails at run time is reported false with the error
  const r = probe({ validate: () => true, run: () => { throw new Error('boom'); } }, PROBES.simd, 'SIMD');
  t.equal(r.value, false);
  t.match(r.source!, /boom/);
  const n = probe({ validate: () => false, run: () => 0 }, PROBES.simd, 'SIMD');
  t.equal(n.value, false);
});

t.test('this machine', async (t) => {
  const d = await collectDiagnostics();
  t.same(validateAgainst(diagSchema, d), []);
  t.equal(d.host.arch, process.arch);
  t.equal(d.host.version, process.version);
});
