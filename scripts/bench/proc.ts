import { readFileSync } from 'node:fs';

/** CPU time (user+system, µs), disk bytes written and memory of a live process, from /proc. */
export interface ProcSample {
  cpuUs: number;
  writeBytes: number;
  rssBytes: number;
  peakRssBytes: number;
}

const TICK_US = 1e6 / 100; // USER_HZ is 100 on Linux

export function sample(pid: number): ProcSample {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpuUs = (Number(fields[11]) + Number(fields[12])) * TICK_US;
  const io = readFileSync(`/proc/${pid}/io`, 'utf8');
  const writeBytes = Number(/write_bytes: (\d+)/.exec(io)?.[1] ?? 0);
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string): number => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) * 1024;
  return { cpuUs, writeBytes, rssBytes: kb('VmRSS'), peakRssBytes: kb('VmHWM') };
}
