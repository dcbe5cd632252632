import type { Logger } from 'pino';
import { SluiceError } from '../errors.js';
import { Backoff } from '../util/backoff.js';
import type { Clock } from '../util/clock.js';
import { GAP_SOURCE, type GapReport } from './gaps.js';
import type { ClockEpochs } from './clock-epochs.js';
import type { NewRecord } from './journal.js';
import { keepEverything, type Classify, type RecordClass } from './retention.js';
import type { SpaceKeeper } from './space-keeper.js';
import { isDiskFull, type JournalStore } from './store.js';
import type { CommitHook } from './commit-hook.js';

/**
 * While commits fail (for a reason other than a full disk, which has its own path), records wait in
 * memory. Past PENDING_COMMITS group commits' worth of records, or PENDING_MAX_BYTES of payload,
 * appends throw SLUICE_JOURNAL_FULL ("commit_failing") like a full journal: MQTT pauses (the broker
 * keeps the messages), serial drops with gap records, and memory stays bounded however long the
 * failure lasts. Four commits ride over a short hiccup (a lock, a slow checkpoint) without pausing
 * anyone; 32 MiB stays small beside a Raspberry Pi's memory even with large payloads.
 */
const PENDING_COMMITS = 4;
const PENDING_MAX_BYTES = 32 * 1024 * 1024;
/**
 * A group commit happens at once when this much payload waits, whatever commit_max_records says:
 * the commit copies every waiting payload into one row, so this bounds that copy and how many
 * large payloads (up to receive_maximum × max_payload_bytes in flight) sit in memory before their
 * acknowledgement releases them. 4 MiB is thousands of ordinary readings, so small records still
 * commit by count or by time.
 */
const COMMIT_MAX_BYTES = 4 * 1024 * 1024;
/** Gap, alarm and health records may use this many times the bound, so a loss during the failure is still reported. */
const PENDING_INTERNAL_FACTOR = 2;

/** Records the journal takes even while full: small, rare, and the operator's only view of the site. */
export function isInternal(record: Pick<NewRecord, 'source'>): boolean {
  return record.source === GAP_SOURCE || record.source === 'sluice:health';
}

/**
 * Appends, seqs and group commits: records wait here until one transaction writes many of them;
 * while commits fail they stay, bounded, and the commit is retried with backoff. It asks the space
 * keeper whether the journal is full and tells it how a commit went; it is called by nothing below it.
 */
export class CommitQueue {
  private pending: NewRecord[] = [];
  private pendingClass: RecordClass[] = [];
  private pendingBytes = 0;
  private pendingFullAlarmed = false;
  private nextSeq = 1;
  private committed = 0;
  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  private readonly listeners = new Set<(seq: number) => void>();
  private commitCount = 0;
  private failing = false;
  private readonly retry = new Backoff({ initialMs: 250, maxMs: 4000 });
  private readonly outbox: GapReport[] = [];
  private stopped = false;

  constructor(
    private readonly store: JournalStore,
    private readonly space: SpaceKeeper,
    private readonly hooks: CommitHook[],
    private readonly opts: { commitDelayMs: number; commitMaxRecords: number; classify?: Classify; logger: Logger; clock: Clock; epochs?: ClockEpochs },
  ) {}

  /** Seqs continue after `lastSeq` (from the file, or above a set-aside or lost journal). */
  init(lastSeq: number): void {
    this.nextSeq = lastSeq + 1;
    this.committed = lastSeq;
    this.stopped = false;
  }

  get committedSeq(): number {
    return this.committed;
  }

  get lastAssignedSeq(): number {
    return this.nextSeq - 1;
  }

  get commits(): number {
    return this.commitCount;
  }

  get pendingRecords(): number {
    return this.pending.length;
  }

  /** A full group (commit_max_records or 4 MiB) waits for a commit already scheduled, and commits succeed. */
  get commitDue(): boolean {
    return this.immediate !== null && !this.failing;
  }

  /** False while commits fail and the records waiting reached their bound. */
  get accepting(): boolean {
    return !(this.failing && this.pendingOver(1));
  }

  get isFailing(): boolean {
    return this.failing;
  }

  append(record: NewRecord): number {
    const internal = isInternal(record);
    // Gap, alarm and health records are small, rare and coalesced: they get in even when full, so no loss goes unreported.
    const full = this.space.full;
    if (full !== null && !internal) throw new SluiceError('SLUICE_JOURNAL_FULL', `journal full (${full})`, { retriable: true });
    if (this.failing && this.pendingOver(internal ? PENDING_INTERNAL_FACTOR : 1)) {
      this.alarmPendingFull();
      throw new SluiceError('SLUICE_JOURNAL_FULL', `journal full (commit_failing: ${this.pending.length} records, ${this.pendingBytes} bytes wait for a commit that fails)`, { retriable: true });
    }
    this.opts.epochs?.stamp(this.nextSeq, record.time);
    this.pending.push(record);
    this.pendingBytes += record.payload.length;
    this.pendingClass.push((this.opts.classify ?? keepEverything)(record.source, record.topic));
    const seq = this.nextSeq++;
    if (this.failing || this.stopped) return seq; // the retry timer paces commits while they fail
    if (this.pending.length >= this.opts.commitMaxRecords || this.pendingBytes >= COMMIT_MAX_BYTES) {
      // Commit outside the caller's stack: listeners acknowledge upstream and must not re-enter the source.
      this.immediate ??= setImmediate(() => {
        this.immediate = null;
        this.commitSafely();
      });
    } else {
      this.timer ??= setTimeout(() => {
        this.timer = null;
        this.commitSafely();
      }, this.opts.commitDelayMs);
    }
    return seq;
  }

  onCommit(listener: (committedSeq: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Adds a hook run in the transaction of every group commit (a component's own table written
   * with the records it appended: the downlink marks its result records journaled this way).
   * Returns a function that removes it.
   */
  addHook(hook: CommitHook): () => void {
    this.hooks.push(hook);
    return () => {
      const i = this.hooks.indexOf(hook);
      if (i >= 0) this.hooks.splice(i, 1);
    };
  }

  /** Retries a failing commit now (room came back) instead of waiting for the backoff. */
  kick(): void {
    if (!this.failing || this.pending.length === 0 || this.immediate || this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.immediate = setImmediate(() => {
      this.immediate = null;
      this.commitSafely();
    });
  }

  /** Commits whatever is pending now; throws when the commit fails (the records stay pending and a retry is armed). */
  flush(): void {
    if (this.pending.length === 0) return;
    this.clearTimers();
    const records = this.pending;
    const classes = this.pendingClass;
    const firstSeq = this.nextSeq - records.length;
    const lastSeq = this.nextSeq - 1;
    let inserted: { records: number; bytes: number };
    try {
      inserted = this.insertOrMakeRoom(records, classes, firstSeq);
    } catch (err) {
      this.commitFailed(err);
      throw err;
    }
    if (this.failing) this.opts.logger.info({ pendingFullWasHit: this.pendingFullAlarmed }, 'journal: commits succeed again; taking records again');
    this.failing = false;
    this.retry.reset();
    this.pendingFullAlarmed = false;
    this.pendingBytes = 0;
    this.store.addStored(inserted);
    this.pending = [];
    this.pendingClass = [];
    this.committed = lastSeq;
    this.commitCount++;
    for (const l of this.listeners) {
      try {
        l(lastSeq);
      } catch (err) {
        this.opts.logger.error({ err }, 'journal: commit listener failed');
      }
    }
    this.space.reassess();
  }

  /** Stops the timers; what is pending stays for a last flush. */
  stop(): void {
    this.stopped = true;
    this.clearTimers();
  }

  get hasReports(): boolean {
    return this.outbox.length > 0;
  }

  /** Alarms raised since the last call (for the caretaker to report). */
  drainReports(): GapReport[] {
    return this.outbox.splice(0);
  }

  private commitSafely(): void {
    try {
      this.flush();
    } catch {
      // flush() logged it, marked the queue failing and armed the retry.
    }
  }

  private pendingOver(factor: number): boolean {
    return this.pending.length >= factor * PENDING_COMMITS * this.opts.commitMaxRecords || this.pendingBytes >= factor * PENDING_MAX_BYTES;
  }

  private alarmPendingFull(): void {
    if (this.pendingFullAlarmed) return;
    this.pendingFullAlarmed = true;
    this.opts.logger.warn({ pending: this.pending.length, pendingBytes: this.pendingBytes }, 'journal full: commits keep failing and the records waiting for one reached their bound; sources with overflow = "backpressure" pause, sources that cannot pause drop (with gap records)');
    const now = this.opts.clock.now();
    this.outbox.push({ reason: 'journal_full_commit_failing', source: 'sluice:journal', firstTime: now, lastTime: now, count: 0, bytes: 0, detail: 'alarm: commits to the journal keep failing; it stopped taking records until one succeeds; nothing is lost by this alone (see gap records with other reasons for losses)' });
  }

  /** A commit failed: remember it, say so once, and retry with backoff (also when the failed flush came from outside). */
  private commitFailed(err: unknown): void {
    if (!this.failing) this.opts.logger.error({ err, pending: this.pending.length }, 'journal: commit failed; holding acknowledgements and retrying');
    this.failing = true;
    if (this.immediate) clearImmediate(this.immediate);
    this.immediate = null;
    if (this.stopped) return;
    this.timer ??= setTimeout(() => {
      this.timer = null;
      this.commitSafely();
    }, this.retry.next());
  }

  /** Inserts the pending records; on a full disk, lets the space keeper make room by policy and tries once more. */
  private insertOrMakeRoom(records: NewRecord[], classes: RecordClass[], firstSeq: number): { records: number; bytes: number } {
    try {
      return this.insert(records, classes, firstSeq);
    } catch (err) {
      if (!isDiskFull(err)) throw new SluiceError('SLUICE_JOURNAL_WRITE', `journal commit failed: ${(err as Error).message}`, { retriable: true, cause: err });
      this.space.diskFull(Math.ceil(records.length / this.opts.commitMaxRecords));
      try {
        return this.insert(records, classes, firstSeq);
      } catch (err2) {
        throw new SluiceError('SLUICE_JOURNAL_FULL', `journal commit failed, disk full: ${(err2 as Error).message}`, { retriable: true, cause: err2 });
      }
    }
  }

  private insert(records: NewRecord[], classes: RecordClass[], firstSeq: number): { records: number; bytes: number } {
    const done: (() => void)[] = [];
    const inserted = this.store.transaction(() => {
      for (const h of this.hooks) {
        const d = h.inCommit();
        if (d) done.push(d);
      }
      return this.store.insertRuns(records, classes, firstSeq);
    });
    for (const d of done) d();
    return inserted;
  }

  private clearTimers(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.timer = null;
    this.immediate = null;
  }
}
