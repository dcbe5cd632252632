import type { Logger } from 'pino';
import type { Component } from '../component.js';
import type { ReportGap } from '../journal/gaps.js';
import type { Metrics } from '../metrics.js';
import type { SyncReader, SyncReading, SyncState } from './sync-reader.js';
import { BootClock, type TimeSources } from './time-sources.js';

/** What the journal reads to date records: see ClockEpochs. */
export interface CaptureClock {
  readonly bootId: string;
  /** Milliseconds since boot (CLOCK_BOOTTIME as far as measurable): one clock read, no syscall. */
  mono(): number;
  /** Whether the wall clock is known to be set from a time source now. */
  readonly synced: boolean;
  /** Wall minus mono now, freshly measured (suspend included): to confirm a suspected jump. */
  offsetNow(): number;
  /** Wall and mono may disagree by this much before it counts as a jump, ms. */
  readonly jumpThresholdMs: number;
  /** Called when a tick saw the clock become synced (or not) or jump. Returns an unsubscribe function. */
  onChange(listener: () => void): () => void;
}

/** The clock as status, metrics and health records show it. */
export interface ClockState {
  state: SyncState;
  via: string;
  boot_id: string;
  /** Since when (ms since the epoch, best known) this process has seen the clock synced, or null. */
  synced_since: number | null;
  /** Seconds the clock has been not known synced (since start or its last sync), 0 when synced. */
  unsynced_for_s: number;
  /** Jumps of the wall clock against the monotonic clock this process saw. */
  jumps: number;
  /** Size of the last jump, ms (positive = forward), or null. */
  last_jump_ms: number | null;
  /** Time spent suspended since boot, ms (as far as /proc/uptime tells). */
  suspended_ms: number;
  /** True while unsynced for longer than time.unsynced_alarm_after_s. */
  alarm: boolean;
}

export interface ClockWatchOptions {
  jumpThresholdMs: number;
  unsyncedAlarmAfterMs: number;
  /** Tick interval, ms. Default 1000. */
  intervalMs?: number;
}

export const CLOCK_SOURCE = 'sluice:clock';

/**
 * Watches the system clock: whether it is synchronised (a SyncReader, once per tick), whether the
 * wall clock jumps against the monotonic one (a step by NTP, a person, fake-hwclock), and whether
 * the machine was suspended. It never touches records: the journal's ClockEpochs reads it per
 * append and the sinks correct times when they encode. Unsynced for too long is an alarm (log,
 * metric, a `clock_unsynced` gap record with count 0, /readyz degraded).
 */
export class ClockWatch implements Component, CaptureClock {
  readonly name = 'clock';
  readonly bootId: string;
  private readonly boot: BootClock;
  private reading: SyncReading = { state: 'unknown', via: 'not read yet' };
  private readonly listeners = new Set<() => void>();
  private timer: NodeJS.Timeout | null = null;
  private ticking: Promise<void> | null = null;
  private lastOffset: number;
  private jumps = 0;
  private lastJumpMs: number | null = null;
  /** Mono time since which the clock is not known synced (start, or the last time it was). */
  private unsyncedSinceMono: number;
  private syncedSinceMono: number | null = null;
  private alarmed = false;
  /** The first tick's state is logged by start(). */
  private ticked = false;

  constructor(
    private readonly opts: ClockWatchOptions,
    private readonly deps: { sources: TimeSources; syncReader: SyncReader; metrics: Metrics; logger: Logger; reportGap?: ReportGap },
  ) {
    this.bootId = deps.sources.bootId();
    this.boot = new BootClock(deps.sources);
    this.lastOffset = this.offsetNow();
    this.unsyncedSinceMono = this.boot.now();
  }

  get jumpThresholdMs(): number {
    return this.opts.jumpThresholdMs;
  }

  get synced(): boolean {
    return this.reading.state === 'synced';
  }

  mono(): number {
    return this.boot.now();
  }

  offsetNow(): number {
    this.boot.refresh();
    return this.deps.sources.wall.now() - this.boot.now();
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Reads the sync state once before anything is journaled, then on every tick. */
  async start(): Promise<void> {
    if (this.timer) return;
    await this.tick();
    const { state, via } = this.reading;
    if (state === 'synced') this.deps.logger.info({ via, bootId: this.bootId }, 'system clock is synchronised');
    else this.deps.logger.warn({ state, via, bootId: this.bootId }, state === 'unknown' ? 'cannot tell whether the system clock is synchronised: records are marked "unsynced" (set time.sync_source to say how to tell)' : 'system clock not synchronised yet: records are marked "unsynced", and corrected when it syncs while they are still journaled');
    this.timer = setInterval(() => {
      this.ticking ??= this.tick().finally(() => (this.ticking = null));
    }, this.opts.intervalMs ?? 1000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.ticking;
  }

  /** One look at the clock: suspend, jumps, sync state, alarm. */
  async tick(): Promise<void> {
    let reading: SyncReading;
    try {
      reading = await this.deps.syncReader.read();
    } catch (err) {
      reading = { state: 'unknown', via: `reading the sync state failed: ${(err as Error).message}` };
    }
    const sleptBefore = this.boot.sleptMs;
    const offset = this.offsetNow();
    let changed = false;
    if (this.boot.sleptMs !== sleptBefore) this.deps.logger.info({ suspendedMs: Math.round(this.boot.sleptMs - sleptBefore) }, 'the machine was suspended; capture times count the suspended time');
    const jump = offset - this.lastOffset;
    if (Math.abs(jump) > this.opts.jumpThresholdMs) {
      this.jumps++;
      this.lastJumpMs = Math.round(jump);
      this.deps.metrics.inc('sluice_clock_jumps_total');
      this.deps.logger.warn({ jumpMs: Math.round(jump), synced: reading.state === 'synced' }, 'the system clock jumped against the monotonic clock');
      changed = true;
    }
    this.lastOffset = offset;
    const was = this.reading.state;
    this.reading = reading;
    const now = this.boot.now();
    if (reading.state === 'synced') {
      if (was !== 'synced') {
        this.syncedSinceMono = now;
        changed = true;
        if (this.ticked) this.deps.logger.info({ via: reading.via }, 'system clock synchronised: records of this boot still journaled are shipped with corrected capture times');
      }
      this.unsyncedSinceMono = now;
    } else if (was === 'synced') {
      this.syncedSinceMono = null;
      this.unsyncedSinceMono = now;
      changed = true;
      this.deps.logger.warn({ state: reading.state, via: reading.via }, 'system clock no longer known to be synchronised');
    }
    this.ticked = true;
    this.checkAlarm(now);
    this.deps.metrics.set('sluice_clock_synced', {}, this.synced ? 1 : 0);
    this.deps.metrics.set('sluice_clock_unsynced_seconds', {}, this.synced ? 0 : Math.round((now - this.unsyncedSinceMono) / 1000));
    this.deps.metrics.set('sluice_clock_alarm', {}, this.alarmed ? 1 : 0);
    if (changed) {
      for (const l of this.listeners) {
        try {
          l();
        } catch (err) {
          this.deps.logger.error({ err }, 'clock listener failed');
        }
      }
    }
  }

  private checkAlarm(now: number): void {
    const forMs = this.synced ? 0 : now - this.unsyncedSinceMono;
    if (!this.alarmed && forMs > this.opts.unsyncedAlarmAfterMs) {
      this.alarmed = true;
      const forS = Math.round(forMs / 1000);
      const wall = this.deps.sources.wall.now();
      this.deps.logger.error({ forS, state: this.reading.state, via: this.reading.via }, `system clock not synchronised for ${forS} s: every capture time is a guess; /readyz reports degraded until it syncs`);
      this.deps.reportGap?.({ reason: 'clock_unsynced', source: CLOCK_SOURCE, firstTime: wall - forMs, lastTime: wall, count: 0, bytes: 0, detail: `alarm: the system clock has not been known synchronised for ${forS} s (${this.reading.state}: ${this.reading.via}); capture times are the gateway's guess, marked unsynced (or corrected later)` });
    } else if (this.alarmed && forMs <= this.opts.unsyncedAlarmAfterMs) {
      this.alarmed = false;
      this.deps.logger.info('system clock synchronised again: clock alarm over');
    }
  }

  /** The clock for status and health records. */
  state(): ClockState {
    const now = this.boot.now();
    const wall = this.deps.sources.wall.now();
    return {
      state: this.reading.state,
      via: this.reading.via,
      boot_id: this.bootId,
      synced_since: this.syncedSinceMono === null ? null : wall - (now - this.syncedSinceMono),
      unsynced_for_s: this.synced ? 0 : Math.round((now - this.unsyncedSinceMono) / 1000),
      jumps: this.jumps,
      last_jump_ms: this.lastJumpMs,
      suspended_ms: Math.round(this.boot.sleptMs),
      alarm: this.alarmed,
    };
  }
}
