// Energy counters: Linux RAPL (/sys/class/powercap/intel-rapl:N/energy_uj, microjoules, wrapping at
// max_energy_range_uj). Whole-package energy: other processes on the machine count too, which the
// bench says beside every figure. Node only.

import { readFileSync, readdirSync } from 'node:fs';

export interface EnergyMeter {
  /** where the counter is */
  source: string;
  /** microjoules now */
  read(): number;
  /** microjoules between two readings, wraparound handled */
  delta(a: number, b: number): number;
}

export function raplMeter(root = '/sys/class/powercap'): { meter: EnergyMeter | null; reason: string } {
  let zones: string[];
  try {
    zones = readdirSync(root)
      .filter((z) => /^intel-rapl:\d+$/.test(z))
      .sort();
  } catch {
    return { meter: null, reason: `no ${root} on this machine (no RAPL energy counter exposed)` };
  }
  if (zones.length === 0) return { meter: null, reason: `no intel-rapl zone under ${root}` };
  const files = zones.map((z) => `${root}/${z}/energy_uj`);
  let range = 0;
  try {
    for (const f of files) readFileSync(f, 'utf8');
    range = Number(readFileSync(`${root}/${zones[0]}/max_energy_range_uj`, 'utf8').trim()) || 0;
  } catch (e) {
    return {
      meter: null,
      reason: `RAPL counters exist but are not readable (${(e as Error).message}); reading energy_uj needs root on recent kernels`,
    };
  }
  return {
    reason: '',
    meter: {
      source: `Linux RAPL, sum of ${zones.join(', ')} (whole package: other processes count too)`,
      read: () => files.reduce((s, f) => s + Number(readFileSync(f, 'utf8').trim()), 0),
      delta: (a, b) => (b >= a ? b - a : b + range * files.length - a),
    },
  };
}
