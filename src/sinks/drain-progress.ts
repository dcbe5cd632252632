import type { Logger } from 'pino';
import type { Metrics } from '../metrics.js';
import type { Clock } from '../util/clock.js';

/**
 * While a sink is behind, says every interval how far: records and bytes left, the rate over the
 * last interval and the ETA. Quiet when the sink keeps up. Also keeps the lag/ETA gauges current.
 */
export class DrainProgress {
  private windowStart: number;
  private windowRecords = 0;
  private windowBytes = 0;
  private draining = false;

  constructor(
    private readonly deps: { sink: string; intervalMs: number; behindThreshold: number; clock: Clock; logger: Logger; metrics: Metrics },
  ) {
    this.windowStart = deps.clock.now();
  }

  /** After each confirmed batch: what it held, and how many records are still behind the cursor. */
  shipped(records: number, bytes: number, recordsLeft: number): void {
    const { clock, metrics, sink } = this.deps;
    this.windowRecords += records;
    this.windowBytes += bytes;
    metrics.set('sluice_sink_lag_records', { sink }, recordsLeft);
    const now = clock.now();
    const elapsed = now - this.windowStart;
    if (recordsLeft === 0 || (!this.draining && recordsLeft <= this.deps.behindThreshold)) {
      if (this.draining) this.deps.logger.info({ recordsLeft }, 'backlog drained');
      this.draining = false;
      metrics.set('sluice_sink_eta_seconds', { sink }, 0);
      if (elapsed >= this.deps.intervalMs) this.reset(now);
      return;
    }
    if (!this.draining) {
      this.draining = true;
      this.reset(now);
      return;
    }
    if (elapsed < this.deps.intervalMs) return;
    const rate = (this.windowRecords * 1000) / elapsed;
    const bytesPerRecord = this.windowRecords ? this.windowBytes / this.windowRecords : 0;
    const etaS = rate > 0 ? Math.round(recordsLeft / rate) : null;
    metrics.set('sluice_sink_eta_seconds', { sink }, etaS ?? -1);
    this.deps.logger.info(
      { recordsLeft, bytesLeft: Math.round(recordsLeft * bytesPerRecord), recordsPerSecond: Math.round(rate), bytesPerSecond: Math.round((this.windowBytes * 1000) / elapsed), etaS },
      'draining backlog',
    );
    this.reset(now);
  }

  private reset(now: number): void {
    this.windowStart = now;
    this.windowRecords = 0;
    this.windowBytes = 0;
  }
}
