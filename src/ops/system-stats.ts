import { readdir, readFile, statfs } from 'node:fs/promises';
import { availableParallelism } from 'node:os';

/** What the gateway machine looks like right now; every field null where the platform does not say. */
export interface SystemStats {
  load_1m: number | null;
  load_5m: number | null;
  load_15m: number | null;
  /** Busy share of all CPUs since the previous sample, percent; null on the first. */
  cpu_busy_pct: number | null;
  cpu_count: number;
  cpu_temp_c: number | null;
  mem_total_bytes: number | null;
  mem_available_bytes: number | null;
  process_rss_bytes: number;
  /** Filesystem holding the journal. */
  disk_path: string;
  disk_total_bytes: number | null;
  /** Bytes available to unprivileged users (what sluice can still use). */
  disk_free_bytes: number | null;
  system_uptime_s: number | null;
  process_uptime_s: number;
  /** Bytes received/sent on all interfaces but loopback since boot. */
  net_rx_bytes: number | null;
  net_tx_bytes: number | null;
}

/** Reads a file, or null if it cannot be read (absent on this platform, hidden by the sandbox). */
export type ReadText = (path: string) => Promise<string | null>;

const readText: ReadText = (path) => readFile(path, 'utf8').then(
  (t) => t,
  () => null,
);

/**
 * Collects `SystemStats` without spawning a process and without blocking the event loop: every
 * read is an asynchronous read of /proc or /sys (systeminformation's currentLoad, cpuTemperature,
 * networkStats and fsSize spawn shell commands; its `mem` only reads /proc/meminfo, so it is used).
 */
export class SystemStatsCollector {
  private prevCpu: { busy: number; total: number } | null = null;
  private thermalZone: string | null | undefined;

  constructor(
    private readonly diskPath: string,
    private readonly read: ReadText = readText,
  ) {}

  async collect(): Promise<SystemStats> {
    const [loadavg, stat, temp, mem, disk, uptime, netdev] = await Promise.all([
      this.read('/proc/loadavg'),
      this.read('/proc/stat'),
      this.cpuTemp(),
      this.memory(),
      statfs(this.diskPath).catch(() => null),
      this.read('/proc/uptime'),
      this.read('/proc/net/dev'),
    ]);
    const load = loadavg?.split(/\s+/).slice(0, 3).map(Number) ?? [];
    const net = parseNetDev(netdev);
    return {
      load_1m: num(load[0]),
      load_5m: num(load[1]),
      load_15m: num(load[2]),
      cpu_busy_pct: this.cpuBusy(stat),
      cpu_count: availableParallelism(),
      cpu_temp_c: temp,
      mem_total_bytes: mem?.total ?? null,
      mem_available_bytes: mem?.available ?? null,
      process_rss_bytes: process.memoryUsage.rss(),
      disk_path: this.diskPath,
      disk_total_bytes: disk ? disk.blocks * disk.bsize : null,
      disk_free_bytes: disk ? disk.bavail * disk.bsize : null,
      system_uptime_s: num(Number(uptime?.split(/\s+/)[0])),
      process_uptime_s: Math.round(process.uptime()),
      net_rx_bytes: net?.rx ?? null,
      net_tx_bytes: net?.tx ?? null,
    };
  }

  /**
   * MemTotal and MemAvailable from /proc/meminfo (what systeminformation's mem() reads on Linux);
   * systeminformation itself, ~1.3 MB of heap once loaded, only where /proc/meminfo is absent.
   */
  private async memory(): Promise<{ total: number; available: number } | null> {
    const info = await this.read('/proc/meminfo');
    const kb = (k: string): number | null => {
      const m = info === null ? null : new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(info);
      return m ? Number(m[1]) * 1024 : null;
    };
    const total = kb('MemTotal');
    const available = kb('MemAvailable');
    if (total !== null && available !== null) return { total, available };
    const si = (await import('systeminformation')).default;
    return si.mem().catch(() => null);
  }

  /** From the aggregate "cpu" line of /proc/stat: busy jiffies over total jiffies since last time. */
  private cpuBusy(stat: string | null): number | null {
    const line = stat?.split('\n').find((l) => l.startsWith('cpu '));
    if (!line) return null;
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const idle = (v[3] ?? 0) + (v[4] ?? 0); // idle + iowait
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0); // user … steal; guest is inside user
    const prev = this.prevCpu;
    this.prevCpu = { busy: total - idle, total };
    if (!prev || total <= prev.total) return null;
    return Math.round((((total - idle - prev.busy) / (total - prev.total)) * 100) * 10) / 10;
  }

  /** The CPU's thermal zone (type containing "cpu" or "soc", as on a Pi; else the first), in °C. */
  private async cpuTemp(): Promise<number | null> {
    if (this.thermalZone === undefined) this.thermalZone = await this.findThermalZone();
    if (!this.thermalZone) return null;
    const t = Number((await this.read(`${this.thermalZone}/temp`))?.trim());
    return Number.isFinite(t) ? Math.round(t / 100) / 10 : null;
  }

  private async findThermalZone(): Promise<string | null> {
    const base = '/sys/class/thermal';
    const zones = (await readdir(base).catch(() => [] as string[])).filter((z) => z.startsWith('thermal_zone')).sort();
    let first: string | null = null;
    for (const z of zones) {
      const type = (await this.read(`${base}/${z}/type`))?.trim().toLowerCase();
      if (type === undefined) continue;
      if (/cpu|soc|x86_pkg/.test(type)) return `${base}/${z}`;
      first ??= `${base}/${z}`;
    }
    return first;
  }
}

function num(v: number | undefined): number | null {
  return v !== undefined && Number.isFinite(v) ? v : null;
}

/** Sums receive and transmit bytes over every interface but loopback. */
export function parseNetDev(text: string | null): { rx: number; tx: number } | null {
  if (!text) return null;
  let rx = 0;
  let tx = 0;
  for (const line of text.split('\n').slice(2)) {
    const [name, rest] = line.split(':');
    if (!rest || name!.trim() === 'lo') continue;
    const f = rest.trim().split(/\s+/).map(Number);
    rx += f[0] ?? 0;
    tx += f[8] ?? 0;
  }
  return { rx, tx };
}
