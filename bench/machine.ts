import { readFileSync } from 'node:fs';
import { availableParallelism, cpus, freemem, loadavg, platform, release, totalmem } from 'node:os';

/** What the benchmark ran on: results mean little without it. */
export interface MachineInfo {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGb: number;
  readonly freeMemoryGb: number;
  readonly os: string;
  readonly node: string;
  readonly v8: string;
  /** 1, 5 and 15 minute load averages at the start and at the end of the run (a shared machine shows here). */
  readonly loadAverageStart: readonly number[];
  readonly loadAverageEnd?: readonly number[];
  readonly date: string;
  /** 'full' or 'short' (BENCH_SHORT=1: small sizes for CI). */
  readonly mode: 'full' | 'short';
}

const round = (n: number, digits = 2): number => Number(n.toFixed(digits));

function cpuModel(): string {
  const model = cpus()[0]?.model?.trim() ?? 'unknown';
  try {
    // The hypervisor flag tells a shared virtual machine from bare metal.
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    const mhz = /cpu MHz\s*:\s*([\d.]+)/.exec(info)?.[1];
    const virtual = /^flags\s*:.*\bhypervisor\b/m.test(info);
    return `${model}${mhz ? ` @ ${Math.round(Number(mhz))} MHz` : ''}${virtual ? ' (virtual machine)' : ''}`;
  } catch {
    return model;
  }
}

export function machineInfo(mode: 'full' | 'short', now: Date): MachineInfo {
  return {
    cpu: cpuModel(),
    cores: availableParallelism(),
    memoryGb: round(totalmem() / 2 ** 30, 1),
    freeMemoryGb: round(freemem() / 2 ** 30, 1),
    os: `${platform()} ${release()}`,
    node: process.version,
    v8: process.versions.v8,
    loadAverageStart: loadavg().map((l) => round(l)),
    date: now.toISOString(),
    mode,
  };
}

export const withEndLoad = <T extends MachineInfo>(m: T): T => ({
  ...m,
  loadAverageEnd: loadavg().map((l) => round(l)),
});
