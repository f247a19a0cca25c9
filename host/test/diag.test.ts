// Diagnostics: a field the platform does not report is null with a reason, never a guess; the
// WebAssembly probe modules are well-formed; the real machine's document matches the schema.
import t from 'tap';
import { collectDiagnostics, decodeThrottled, parseCpuinfo, reportedFields, type DiagEnv } from '../diag/node.js';
import { EMPTY_MODULE, PROBES, probe, probeWasmFeatures } from '../runtime/probe/probes.js';
import {
  instantiatePeak,
  measurePeak,
  measureSimdPeak,
  peakModule,
  type PeakKind,
} from '../runtime/probe/throughput.js';
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
    if (r.value === null)
      t.ok(typeof r.reason === 'string' && r.reason.length > 10, `${path}: null with a reason (${r.reason})`);
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
    '/proc/cpuinfo':
      'processor\t: 0\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\n\nHardware\t: BCM2835\nRevision\t: c03114\nModel\t: Raspberry Pi 4 Model B Rev 1.4\n',
    '/sys/class/thermal/thermal_zone0/temp': '48312\n',
  };
  const d = await collectDiagnostics(
    bareEnv({
      readText: (p) => files[p] ?? null,
      listDir: (p) => (p === '/sys/class/thermal' ? ['cooling_device0', 'thermal_zone0'] : null),
      run: async (cmd) => (cmd === 'vcgencmd' ? 'throttled=0x50005\n' : null),
    }),
  );
  t.equal(d.device.model.value, 'Raspberry Pi 4 Model B Rev 1.4');
  t.equal(d.device.model.source, '/proc/device-tree/model');
  t.equal(d.device.revision.value, 'c03114');
  t.equal(d.thermal.cpuTemperatureC.value, 48.312);
  t.same(d.thermal.throttled.value, {
    raw: '0x50005',
    flags: ['under-voltage detected', 'currently throttled', 'under-voltage has occurred', 'throttling has occurred'],
  });
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
  const r = probe(
    {
      validate: () => true,
      run: () => {
        throw new Error('boom');
      },
    },
    PROBES.simd,
    'SIMD',
  );
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
  for (const k of ['f32MulAdd', 'i16DotAdd'] as const) {
    const r = d.simdPeak![k];
    t.ok(typeof r.value === 'number' && r.value > 0.05, `SIMD peak ${k}: ${r.value} G multiply-adds/s`);
  }
});

// What a peak probe's run(n) returns: lane 0 of the sum of its eight accumulators, worked out here
// from the weights in its memory (iteration t reads 4 vectors at byte (64 t) mod 4096, vector i
// feeds accumulators with activations j = 0, 1 whose lanes 0 and 1 are 1 + 4j and 2 + 4j, / 16 in
// f32).
function expectedLane0(kind: PeakKind, mem: ArrayBuffer, n: number): number {
  let sum = 0;
  for (let it = 0; it < n; it++) {
    const off = (64 * it) % 4096;
    for (let i = 0; i < 4; i++) {
      for (let j = 0; j < 2; j++) {
        if (kind === 'f32') sum += new Float32Array(mem, off + 16 * i, 1)[0]! * ((1 + 4 * j) / 16);
        else {
          const w = new Int16Array(mem, off + 16 * i, 2);
          sum += w[0]! * (1 + 4 * j) + w[1]! * (2 + 4 * j);
        }
      }
    }
  }
  return sum;
}

t.test('SIMD peak probes compute what they time', async (t) => {
  for (const kind of ['f32', 'i16'] as const) {
    t.ok(WebAssembly.validate(peakModule(kind) as BufferSource), `${kind} probe validates`);
    const p = instantiatePeak(kind);
    const mem = p.memory.buffer;
    // small integers (f32: small multiples of 1/16), so every sum is exact in f32 and in int32
    const bytes = new DataView(mem);
    for (let o = 0; o < 4096; o += 4) {
      const v = (((o * 7919) >>> 2) % 13) - 6;
      if (kind === 'f32') bytes.setFloat32(o, v, true);
      else {
        bytes.setInt16(o, v, true);
        bytes.setInt16(o + 2, 5 - v, true);
      }
    }
    for (const n of [1, 3, 70]) {
      // 70 passes the wrap at 64 iterations
      const got = p.run(n);
      const want = expectedLane0(kind, mem, n);
      const lane0 = kind === 'f32' ? new Float32Array(new Int32Array([got]).buffer)[0]! : got;
      t.equal(lane0, want, `${kind}, ${n} iterations: lane 0 = ${want}`);
    }
  }
  t.test('not measurable: null with the reason', async (t) => {
    const none = measureSimdPeak({ value: true, source: 'x' }, null);
    t.equal(none.f32MulAdd.value, null);
    t.match(none.f32MulAdd.reason!, /no WebAssembly/);
    const noSimd = measureSimdPeak({ value: false, source: 'the probe failed' });
    t.equal(noSimd.i16DotAdd.value, null);
    t.match(noSimd.i16DotAdd.reason!, /no WebAssembly SIMD/);
    const d = await collectDiagnostics(bareEnv());
    t.equal(d.simdPeak!.f32MulAdd.value, null, 'an engine without WebAssembly: unknown');
  });
  t.test('a coarse clock and a sizing call slowed by other work still give a figure', async (t) => {
    // a 1 ms clock (as WebKit's) over a probe that takes 1 ns an iteration, whose sizing call
    // took 40 ms because the machine was busy: the calls sized from it are too short to see
    let clock = 0;
    let calls = 0;
    const probe = {
      run: (n: number) => {
        calls++;
        clock += calls === 4 ? 40 : n * 1e-6; // the fourth sizing call (n = 64,000) is the slow one
        return 0;
      },
      memory: new WebAssembly.Memory({ initial: 1 }),
    };
    const g = measurePeak(probe, 'i16', () => Math.floor(clock), 15, 12);
    t.ok(g > 0, `a figure (${g.toFixed(1)} G/s), not 0`);
    t.ok(calls <= 4 + 48, 'a bounded number of calls');
  });
});
