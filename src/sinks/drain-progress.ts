import type { Logger } from 'pino';
import type { Clock } from '../util/clock.js';

/**
 * While a sink is behind, says every interval how far: records and bytes left, the rate over the
 * last interval and the ETA. Quiet when the sink keeps up. It sets no gauges: the status report
 * computes lag and ETA from the live cursor at scrape time, and a second copy set here went stale
 * the moment a record was journaled after the last confirmed batch (a scrape then held two
 * `sluice_sink_lag_records{sink=…}` series, 0 and 1).
 */
export class DrainProgress {
  private windowStart: number;
  private windowRecords = 0;
  private windowBytes = 0;
  private draining = false;

  constructor(
    private readonly deps: { intervalMs: number; behindThreshold: number; clock: Clock; logger: Logger },
  ) {
    this.windowStart = deps.clock.now();
  }

  /** After each confirmed batch: what it held, and how many records are still behind the cursor. */
  shipped(records: number, bytes: number, recordsLeft: number): void {
    const { clock } = this.deps;
    this.windowRecords += records;
    this.windowBytes += bytes;
    const now = clock.now();
    const elapsed = now - this.windowStart;
    if (recordsLeft === 0 || (!this.draining && recordsLeft <= this.deps.behindThreshold)) {
      if (this.draining) this.deps.logger.info({ recordsLeft }, 'backlog drained');
      this.draining = false;
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
