import { existsSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Clock } from '../util/clock.js';
import type { CommitQueue } from './commit-queue.js';
import type { ReportGap } from './gaps.js';
import type { SpaceKeeper } from './space-keeper.js';
import type { JournalStore } from './store.js';

/** max_age is looked at every this many ticks. */
const AGE_EVERY_TICKS = 5;

/**
 * The journal's maintenance, on a tick of its own so that no way out of a pause waits for a
 * commit or a sink: it re-measures space (room may come back by any way), saves cursors a full
 * disk held in memory, takes the reserve back, evicts by age, notices a WAL deleted under it, and
 * turns what the space keeper and the commit queue have to say into gap records.
 */
export class Caretaker {
  private timer: NodeJS.Timeout | null = null;
  private ticks = 0;

  constructor(
    private readonly store: JournalStore,
    private readonly queue: CommitQueue,
    private readonly space: SpaceKeeper,
    private readonly opts: { path: string; intervalMs: number; reportGap?: ReportGap; logger: Logger; clock: Clock },
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.tick(), this.opts.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  tick(): void {
    if (!this.store.open) return;
    try {
      this.ticks++;
      if (!existsSync(`${this.opts.path}-wal`)) this.recoverDeletedWal();
      if (this.ticks % AGE_EVERY_TICKS === 0) this.space.evictAged();
      if (this.store.cursorsUnsaved) this.saveCursors();
      const wasFull = this.space.full;
      this.space.reassess();
      this.space.holdReserve();
      if (wasFull !== null && this.space.full === null) this.queue.kick();
    } catch (err) {
      this.opts.logger.error({ err }, 'journal maintenance failed; will try again');
    }
    this.report();
  }

  /** Cursors a full disk kept in memory only: written as soon as a write fits. */
  saveCursors(): void {
    try {
      this.space.withReserve(() => this.store.saveCursors());
    } catch (err) {
      this.opts.logger.debug({ err }, 'journal: cursors still cannot be written; will try again');
    }
  }

  get hasReports(): boolean {
    return this.space.hasReports || this.queue.hasReports;
  }

  /**
   * Alarms and evictions become gap records (their ledger rows are cleared by the commit that
   * carries them); committed now unless `commit` is false (then by the queue's timer).
   */
  report(opts: { commit?: boolean } = {}): void {
    if (!this.opts.reportGap || !this.store.open) return;
    const gaps = [...this.space.drainReports(), ...this.queue.drainReports()];
    if (gaps.length === 0) return;
    for (const gap of gaps) this.opts.reportGap(gap);
    if (opts.commit === false) return;
    try {
      this.queue.flush();
    } catch (err) {
      this.opts.logger.error({ err }, 'journal: could not commit gap records yet; they stay pending');
    }
  }

  /**
   * Someone deleted the WAL under the running daemon. This connection still holds the unlinked
   * file, so checkpoint it into the database (nothing committed is lost), then reopen to get a
   * real WAL again, and raise an alarm.
   */
  private recoverDeletedWal(): void {
    this.queue.flush();
    this.store.saveCursors();
    this.store.checkpoint('TRUNCATE');
    this.store.close();
    this.store.openFile();
    this.opts.logger.error({ path: `${this.opts.path}-wal` }, 'journal WAL file was deleted while running; its contents were checkpointed into the database and a new WAL started');
    const now = this.opts.clock.now();
    this.opts.reportGap?.({ reason: 'journal_wal_deleted', source: 'sluice:journal', firstTime: now, lastTime: now, count: 0, bytes: 0, detail: 'alarm: the WAL was deleted by something else while sluice ran; checkpointed before reopening, nothing lost' });
  }
}
