import { readFileSync } from 'node:fs';
import type { Clock } from '../util/clock.js';

/**
 * The raw clocks sluice reads to date a record; injected everywhere (tests drive them by hand).
 * - `wall`: CLOCK_REALTIME (Date.now()), what NTP sets and a power cut leaves wrong.
 * - `mono`: CLOCK_MONOTONIC in ms (process.hrtime), system-wide, so every run of sluice in one boot
 *   agrees on it; it does not count time spent suspended.
 * - `bootTime`: CLOCK_BOOTTIME in ms (/proc/uptime, 10 ms steps), which does count suspend; read
 *   only on sluice's clock tick and when a jump is suspected, never per record.
 * - `bootId`: /proc/sys/kernel/random/boot_id, new at every boot.
 */
export interface TimeSources {
  wall: Clock;
  mono(): number;
  bootTime(): number | null;
  bootId(): string;
}

const bootIdPath = '/proc/sys/kernel/random/boot_id';

export const systemTimeSources: TimeSources = {
  wall: { now: () => Date.now() },
  mono: () => Number(process.hrtime.bigint()) / 1e6,
  bootTime: () => {
    try {
      return Number.parseFloat(readFileSync('/proc/uptime', 'utf8')) * 1000;
    } catch {
      return null;
    }
  },
  bootId: () => {
    try {
      return readFileSync(bootIdPath, 'utf8').trim();
    } catch {
      // Not Linux (or /proc hidden): one "boot" per process is the safe guess — a restart is
      // then never mistaken for the same boot, so nothing is corrected with a wrong offset.
      return `process-${process.pid}-${Date.now()}`;
    }
  },
};

/** Suspends shorter than this are not told apart from /proc/uptime's 10 ms steps. */
export const SUSPEND_MIN_MS = 50;

/**
 * CLOCK_BOOTTIME as sluice uses it: CLOCK_MONOTONIC plus the time suspended, which is measured
 * from /proc/uptime on `refresh()` (and kept at 0 below SUSPEND_MIN_MS, so two runs in one boot
 * that never suspended agree exactly). Per record only `now()` runs: one vDSO clock read, no syscall.
 */
export class BootClock {
  private slept = 0;

  constructor(private readonly sources: TimeSources) {
    this.refresh();
  }

  now(): number {
    return this.sources.mono() + this.slept;
  }

  /** Re-measures the time spent suspended; returns true when it grew. */
  refresh(): boolean {
    const boot = this.sources.bootTime();
    if (boot === null) return false;
    const slept = boot - this.sources.mono();
    if (slept < SUSPEND_MIN_MS || slept <= this.slept + SUSPEND_MIN_MS) return false;
    this.slept = slept;
    return true;
  }

  /** Milliseconds suspended since boot, as last measured. */
  get sleptMs(): number {
    return this.slept;
  }
}
