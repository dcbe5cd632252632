import { dirname } from 'node:path';
import type { Logger } from 'pino';
import type { Component } from '../component.js';
import { errorMessage } from '../errors.js';
import type { ReportGap } from '../journal/gaps.js';
import type { Journal } from '../journal/journal.js';
import type { Metrics } from '../metrics.js';
import type { ClockState } from '../time/clock-watch.js';
import type { Clock } from '../util/clock.js';
import { SystemStatsCollector, type SystemStats } from './system-stats.js';

/** Source name health records carry. */
export const HEALTH_SOURCE = 'sluice:health';

export interface HealthSourceOptions {
  intervalS: number;
  /** Source topic of the records; routes send it to Kafka. */
  topic: string;
  /** The journal file: its filesystem's free space is reported. */
  journalPath: string;
}

/** The JSON body of a health record. */
export interface HealthPayload extends SystemStats {
  type: 'health';
  gateway: string;
  time: string;
  journal_backlog_records: number;
  journal_oldest_age_s: number | null;
  journal_used_bytes: number;
  /** The system clock: "synced", "unsynced" or "unknown" (absent when not watched). */
  clock_state?: string;
  clock_unsynced_s?: number;
  /** True while unsynced for longer than time.unsynced_alarm_after_s. */
  clock_alarm?: boolean;
}

/**
 * Gateway health as data: every interval, one record with CPU, temperature, memory, disk, network
 * and backlog figures, journaled like a reading (source `sluice:health`) so it reaches Kafka by
 * the same guarantees. A record the journal refuses is reported as a gap.
 */
export class HealthSource implements Component {
  readonly name = HEALTH_SOURCE;
  private timer: NodeJS.Timeout | null = null;
  private collecting: Promise<void> | null = null;
  private readonly collector: SystemStatsCollector;
  private readonly log: Logger;

  constructor(
    private readonly opts: HealthSourceOptions,
    private readonly deps: { journal: Journal; logger: Logger; metrics: Metrics; clock: Clock; gatewayId: string; reportGap: ReportGap; collector?: SystemStatsCollector; clockState?: () => ClockState },
  ) {
    this.collector = deps.collector ?? new SystemStatsCollector(dirname(opts.journalPath));
    this.log = deps.logger.child({ component: HEALTH_SOURCE });
  }

  async start(): Promise<void> {
    if (this.timer) return;
    // A first sample primes the CPU-busy delta, so the first record already has it.
    await this.collector.collect().catch(() => undefined);
    this.timer = setInterval(() => {
      // One collection at a time: a slow /sys read must not pile up.
      this.collecting ??= this.tick().then(() => undefined).finally(() => (this.collecting = null));
    }, this.opts.intervalS * 1000);
    this.log.info({ intervalS: this.opts.intervalS, topic: this.opts.topic }, 'health records started');
  }

  /** Collects one health record and journals it; returns the payload (for tests). */
  async tick(): Promise<HealthPayload | null> {
    try {
      const payload = await this.snapshot();
      const body = Buffer.from(JSON.stringify(payload));
      try {
        this.deps.journal.append({ time: this.deps.clock.now(), source: HEALTH_SOURCE, topic: this.opts.topic, key: this.deps.gatewayId, payload: body, headers: null });
        this.deps.metrics.inc('sluice_source_received_total', { source: HEALTH_SOURCE });
      } catch (err) {
        const now = this.deps.clock.now();
        const code = (err as { code?: unknown }).code;
        this.deps.reportGap({ reason: code === 'SLUICE_JOURNAL_FULL' ? 'journal_full' : 'journal_error', source: HEALTH_SOURCE, firstTime: now, lastTime: now, count: 1, bytes: body.length, detail: errorMessage(err) });
      }
      return payload;
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, 'health collection failed');
      return null;
    }
  }

  async snapshot(): Promise<HealthPayload> {
    const system = await this.collector.collect();
    const now = this.deps.clock.now();
    const stats = this.deps.journal.stats();
    return {
      type: 'health',
      gateway: this.deps.gatewayId,
      time: new Date(now).toISOString(),
      ...system,
      journal_backlog_records: stats.backlogRecords,
      journal_oldest_age_s: stats.oldestTime === null ? null : Math.max(0, Math.round((now - stats.oldestTime) / 100) / 10),
      journal_used_bytes: stats.usedBytes,
      ...this.clockFields(),
    };
  }

  private clockFields(): Pick<HealthPayload, 'clock_state' | 'clock_unsynced_s' | 'clock_alarm'> {
    const c = this.deps.clockState?.();
    return c ? { clock_state: c.state, clock_unsynced_s: c.unsynced_for_s, clock_alarm: c.alarm } : {};
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.collecting;
  }
}
