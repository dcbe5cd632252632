import { existsSync, mkdirSync, unlinkSync } from 'node:fs';
import type Database from 'better-sqlite3';
import type { CommitHook } from './commit-hook.js';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { SluiceError } from '../errors.js';
import type { Clock } from '../util/clock.js';
import { salvageSetAside } from './auto-salvage.js';
import type { CaptureClock } from '../time/clock-watch.js';
import { Caretaker } from './caretaker.js';
import { ClockEpochs } from './clock-epochs.js';
import { CommitQueue } from './commit-queue.js';
import { freeBytes as statFreeBytes } from './disk-space.js';
import { inspectJournalPath } from './file-guard.js';
import type { GapReport, ReportGap } from './gaps.js';
import { HighWaterMark } from './high-water-mark.js';
import type { CommitSidecar, Journal, JournalRecord, JournalStats, NewRecord, TimeQuality } from './journal.js';
import { SpaceReserve } from './reserve.js';
import type { Classify } from './retention.js';
import { setAside } from './set-aside.js';
import { Sidecars } from './sidecars.js';
import { SpaceKeeper, type SpaceBounds } from './space-keeper.js';
import { JournalStore } from './store.js';

/** Settings of the SQLite journal; see `journal` in the config schema. */
export interface SqliteJournalOptions {
  path: string;
  durability: 'power' | 'crash';
  /** Longest a record waits for its group commit, ms. */
  commitDelayMs: number;
  /** Commit at once when this many records wait. */
  commitMaxRecords: number;
  /** Most bytes of pages in use; undefined = unbounded. */
  maxBytes?: number;
  /** Records older than this (capture time), in seconds, are evicted. */
  maxAgeS?: number;
  /** Keep at least this many bytes free on the journal's filesystem. */
  minFreeBytes?: number;
  /** Bytes held in a reserve file beside the journal, given back when the disk fills. Default 524288; 0 = none. */
  reserveBytes?: number;
  /** Priority and evictability of a record; default: everything kept. */
  classify?: Classify;
  /** Where evictions and alarms are reported (the gateway's GapRecorder). */
  reportGap?: ReportGap;
  /** Free bytes on the filesystem holding a directory; injectable for tests. */
  freeBytes?: (dir: string) => number | null;
  /** How often space, age, the WAL file and pending gap reports are looked after, ms. Default 1000. */
  maintenanceIntervalMs?: number;
  logger: Logger;
  clock: Clock;
  /** The clock records are dated by (boot, monotonic time, sync state); absent: no time quality is tracked. */
  captureClock?: CaptureClock;
}

export const DEFAULT_RESERVE_BYTES = 512 * 1024;

/**
 * The journal the rest of sluice sees. Inside, parts that call one way only:
 *   SqliteJournal → Caretaker → CommitQueue → SpaceKeeper → JournalStore → SQLite
 * (each may also call any part to its right; none calls to its left). The store holds the file,
 * the commit queue appends and group-commits, the space keeper decides "full" and "room" and
 * evicts, the caretaker ticks and reports. See README, "How it is built".
 */
export class SqliteJournal implements Journal {
  readonly name = 'journal';
  private readonly store: JournalStore;
  private readonly space: SpaceKeeper;
  private readonly queue: CommitQueue;
  private readonly caretaker: Caretaker;
  private readonly sidecars: Sidecars;
  private readonly mark: HighWaterMark;
  private readonly epochs: ClockEpochs | null;
  private unsubscribeClock: (() => void) | null = null;
  private started = false;

  constructor(private readonly opts: SqliteJournalOptions) {
    this.store = new JournalStore({ path: opts.path, durability: opts.durability });
    this.mark = new HighWaterMark(`${opts.path}-hwm`);
    const reserve = new SpaceReserve(`${opts.path}-reserve`, opts.reserveBytes ?? DEFAULT_RESERVE_BYTES);
    this.space = new SpaceKeeper(this.store, reserve, {
      path: opts.path,
      bounds: { maxBytes: opts.maxBytes, maxAgeS: opts.maxAgeS, minFreeBytes: opts.minFreeBytes },
      freeBytes: opts.freeBytes ?? statFreeBytes,
      logger: opts.logger,
      clock: opts.clock,
    });
    this.sidecars = new Sidecars(this.store);
    this.epochs = opts.captureClock ? new ClockEpochs(this.store, opts.captureClock) : null;
    const hooks = this.epochs ? [this.sidecars, this.space, this.epochs] : [this.sidecars, this.space];
    this.queue = new CommitQueue(this.store, this.space, hooks, { commitDelayMs: opts.commitDelayMs, commitMaxRecords: opts.commitMaxRecords, classify: opts.classify, logger: opts.logger, clock: opts.clock, epochs: this.epochs ?? undefined });
    this.caretaker = new Caretaker(this.store, this.queue, this.space, { path: opts.path, intervalMs: opts.maintenanceIntervalMs ?? 1000, reportGap: opts.reportGap, logger: opts.logger, clock: opts.clock });
  }

  async start(): Promise<void> {
    if (this.started) return;
    const { path, logger } = this.opts;
    mkdirSync(dirname(path), { recursive: true });
    const startGaps: GapReport[] = [];
    const verdict = inspectJournalPath(path, this.mark.path);
    const previousMark = this.mark.read();
    let floor = 0;
    try {
      if (verdict.kind === 'damaged_ours') throw new SluiceError('SLUICE_JOURNAL_CORRUPT', `journal ${path} has no SQLite header (its mark file says it was sluice's)`);
      this.store.openFile();
    } catch (err) {
      if (!(err instanceof SluiceError) || err.code !== 'SLUICE_JOURNAL_CORRUPT') throw err;
      const cause = (err.cause ?? {}) as { foreign?: boolean; ours?: boolean };
      if (cause.foreign === true || (!cause.ours && verdict.kind === 'sqlite' && !verdict.markedOurs)) {
        throw new SluiceError('SLUICE_JOURNAL_NOT_OURS', `journal.path: ${cause.foreign ? err.message : `${path} is a SQLite file that cannot be shown to be a sluice journal (${err.message})`}; refusing to touch it`, { cause: err });
      }
      // A damaged journal must not become a crash loop, nor a silent empty start: set it aside,
      // start anew above its seqs, salvage what is readable, and say so in records shipped like readings.
      const aside = setAside(path, new Date(this.opts.clock.now()));
      logger.error({ err: err.message, setAside: aside.files, lastSeq: aside.lastSeq, unshippedRecords: aside.unshippedRecords }, 'journal unusable: set aside; starting a new journal and salvaging what is readable');
      this.store.openFile();
      // Seqs must never go backwards: continue above the old file's (or its mark's, which is never
      // below a committed seq), above the clock only when neither tells. The salvage names what is
      // lost up to that last known seq, never up to the clock's.
      const lastKnown = aside.lastSeq === null && previousMark === null ? null : Math.max(aside.lastSeq ?? 0, previousMark ?? 0);
      floor = lastKnown ?? this.opts.clock.now();
      this.store.transaction(() => {
        this.store.raiseNextSeq(floor + 1);
        this.store.setSalvageState(aside.path, 'pending', lastKnown);
      });
      this.store.reloadState();
      const now = this.opts.clock.now();
      startGaps.push({
        reason: 'journal_set_aside',
        source: 'sluice:journal',
        firstTime: now,
        lastTime: now,
        count: 0,
        bytes: 0,
        detail: `journal failed its check (${err.message}); moved to ${aside.path}; ${aside.unshippedRecords === null ? 'how many records it held is unknown' : `${aside.unshippedRecords} records were not yet shipped`}; what is readable is salvaged into the new journal with its seqs (see journal_salvage_lost for what is not)`,
      });
    }
    this.removeSalvaged();
    for (const asidePath of this.store.pendingSalvage()) startGaps.push(...this.salvage(asidePath, this.store.salvageLastSeq(asidePath)));
    startGaps.push(...this.checkMark(previousMark));
    this.queue.init(this.store.lastSeqOnOpen);
    this.space.loadLedger();
    this.epochs?.load();
    this.started = true;
    // A sync (or jump) seen while nothing is appended must still reach the file: it corrects records already journaled.
    this.unsubscribeClock = this.opts.captureClock?.onChange(() => this.clockChanged()) ?? null;
    // The clock may have synced while sluice was down (same boot): records already journaled are corrected now, not at the next append.
    this.clockChanged();
    this.queue.onCommit((seq) => {
      this.writeMark(seq);
      // A commit on the queue's own timer may have turned the journal full (or evicted): report it soon, outside the commit.
      if (this.caretaker.hasReports) setImmediate(() => this.caretaker.report({ commit: false }));
    });
    this.writeMark(this.store.lastSeqOnOpen);
    const stats = this.stats();
    logger.info({ path, durability: this.opts.durability, backlog: stats.backlogRecords, nextSeq: this.queue.lastAssignedSeq + 1, maxBytes: this.opts.maxBytes, maxAgeS: this.opts.maxAgeS, minFreeBytes: this.opts.minFreeBytes }, 'journal open');
    for (const gap of startGaps) this.opts.reportGap?.(gap);
    this.space.reassess();
    this.space.holdReserve();
    this.caretaker.start();
    this.caretaker.report();
  }

  /** The mark beside the journal says higher seqs were committed than the file holds: its WAL was lost. */
  private checkMark(previousMark: number | null): GapReport[] {
    const inFile = this.store.lastSeqOnOpen;
    if (previousMark === null || previousMark <= inFile) return [];
    this.store.transaction(() => this.store.raiseNextSeq(previousMark + 1));
    this.store.reloadState();
    const count = previousMark - inFile;
    this.opts.logger.error({ firstSeq: inFile + 1, lastSeq: previousMark, count }, 'journal lost committed records while sluice was down (its WAL file was deleted or not restored); a gap record names them');
    const now = this.opts.clock.now();
    return [{ reason: 'journal_lost_at_start', source: 'sluice:journal', firstSeq: inFile + 1, lastSeq: previousMark, ranges: [[inFile + 1, previousMark]], firstTime: now, lastTime: now, count, bytes: 0, detail: 'records committed by the last run are not in the journal file (its WAL was deleted or not restored with it); some may have been shipped before the stop' }];
  }

  private writeMark(seq: number): void {
    try {
      this.mark.write(seq);
    } catch (err) {
      this.opts.logger.debug({ err }, 'journal: could not update the high-water mark');
    }
  }

  /** A kill -9 between a salvage's commit and the removal of its set-aside file leaves the file: remove it now. */
  private removeSalvaged(): void {
    for (const asidePath of this.store.doneSalvage()) {
      for (const f of [asidePath, `${asidePath}-wal`, `${asidePath}-shm`]) {
        if (!existsSync(f)) continue;
        unlinkSync(f);
        this.opts.logger.warn({ file: f }, 'journal: removed a set-aside file whose salvage had committed (sluice stopped before removing it)');
      }
    }
  }

  private salvage(asidePath: string, lastSeq: number | null): GapReport[] {
    const r = salvageSetAside(this.store, asidePath, lastSeq);
    this.opts.logger.warn({ from: asidePath, rows: r.rows, records: r.records, lost: r.lostCount, lostRanges: r.lost.slice(0, 20), problems: r.problems.slice(0, 10), removed: r.removed }, 'journal: salvaged the set-aside journal into the new one (intact rows keep their seqs); the set-aside file is removed');
    if (r.lostCount === 0) return [];
    const now = this.opts.clock.now();
    return [{ reason: 'journal_salvage_lost', source: 'sluice:journal', firstSeq: r.lost[0]![0], lastSeq: r.lost[r.lost.length - 1]![1], ranges: r.lost, firstTime: now, lastTime: now, count: r.lostCount, bytes: 0, detail: `records of the damaged journal that could not be read back (${r.problems.slice(0, 3).join('; ')}); seqs evicted earlier may be named again here` }];
  }

  private clockChanged(): void {
    if (!this.epochs || !this.store.open) return;
    this.epochs.check(this.queue.lastAssignedSeq + 1);
    if (!this.epochs.hasUnsaved) return;
    try {
      this.space.withReserve(() => this.epochs!.saveNow());
    } catch (err) {
      this.opts.logger.warn({ err: (err as Error).message }, 'journal: could not write the clock change yet; it goes with the next commit');
    }
  }

  async stop(): Promise<void> {
    if (!this.started) return;
    this.unsubscribeClock?.();
    this.unsubscribeClock = null;
    this.caretaker.stop();
    this.queue.stop();
    this.caretaker.report();
    try {
      this.queue.flush();
    } catch (err) {
      this.opts.logger.error({ err, pending: this.queue.pendingRecords }, 'journal: final commit failed; unacknowledged records will be redelivered by their sources');
    }
    try {
      this.space.withReserve(() => this.store.saveCursors());
    } catch (err) {
      this.opts.logger.error({ err }, 'journal: could not save the cursors; the last confirmed batches will be sent again');
    }
    this.store.close();
    this.mark.close();
    this.started = false;
    this.opts.logger.info('journal closed');
  }

  private requireOpen(): void {
    if (!this.started || !this.store.open) throw new SluiceError('SLUICE_JOURNAL_CLOSED', 'journal is not open');
  }

  append(record: NewRecord): number {
    this.requireOpen();
    try {
      return this.queue.append(record);
    } catch (err) {
      // The alarm of a journal turning full goes out now; its commit is left to the queue's timer,
      // never run inside a source's call.
      this.caretaker.report({ commit: false });
      throw err;
    }
  }

  onCommit(listener: (committedSeq: number) => void): () => void {
    return this.queue.onCommit(listener);
  }

  get committedSeq(): number {
    return this.queue.committedSeq;
  }

  get lastAssignedSeq(): number {
    return this.queue.lastAssignedSeq;
  }

  get commitDue(): boolean {
    return this.queue.commitDue;
  }

  /** Whether appends are taken now (false while a bound, a full disk or failing commits hold them off). */
  get accepting(): boolean {
    return this.space.full === null && this.queue.accepting;
  }

  flush(): void {
    this.requireOpen();
    try {
      this.queue.flush();
    } finally {
      this.caretaker.report({ commit: false });
    }
  }

  /** Runs the maintenance tick now (it also runs on its own timer). */
  maintain(): void {
    this.caretaker.tick();
  }

  /** Writes changed sidecars now, in a transaction of their own (state that changed with no record to commit). */
  commitSidecars(): void {
    this.requireOpen();
    const done = this.space.withReserve(() => this.store.transaction(() => this.sidecars.inCommit()));
    done?.();
  }

  /**
   * The journal's open database, for a component that keeps its own table in the same file (the
   * downlink's commands): its writes share the file's durability and its commit transactions.
   */
  get database(): Database.Database {
    this.requireOpen();
    return this.store.db;
  }

  /** Runs `hook` in the transaction of every group commit (see CommitQueue.addHook); returns its removal. */
  addCommitHook(hook: CommitHook): () => void {
    return this.queue.addHook(hook);
  }

  setCommitSidecar(name: string, sidecar: CommitSidecar | null): Buffer | null {
    this.requireOpen();
    return this.sidecars.set(name, sidecar);
  }

  /** Applies bounds changed by a reload: a raised bound is room at once. */
  setBounds(bounds: SpaceBounds): void {
    this.space.setBounds(bounds);
    this.caretaker.tick();
  }

  registerSinks(names: readonly string[]): void {
    this.requireOpen();
    for (const sink of this.store.registerSinks(names)) this.opts.logger.warn({ sink }, 'journal: forgot the cursor of a sink no longer configured');
  }

  cursor(sink: string): number {
    const c = this.store.cursor(sink);
    if (c === undefined) throw new SluiceError('SLUICE_JOURNAL_CLOSED', `no cursor for sink ${sink}`);
    return c;
  }

  read(afterSeq: number, maxRecords: number, maxBytes: number): JournalRecord[] {
    this.requireOpen();
    const { records, corrupt } = this.store.read(afterSeq, maxRecords, maxBytes);
    for (const row of corrupt) {
      // A damaged row cannot be shipped; it must not stop the sink either. Say exactly what was lost.
      this.opts.logger.error({ firstSeq: row.first_seq, lastSeq: row.last_seq, count: row.count }, 'journal row failed its checksum: its records cannot be read; a gap record names them');
      this.opts.reportGap?.({ reason: 'journal_row_corrupt', source: 'sluice:journal', firstSeq: row.first_seq, lastSeq: row.last_seq, firstTime: row.min_time, lastTime: row.max_time, count: row.count, bytes: row.bytes, detail: 'stored bytes damaged (checksum mismatch or undecodable); records in this seq range are lost' });
    }
    const epochs = this.epochs;
    if (epochs) {
      // Corrected as they leave, never rewritten on disk: one offset per boot does it.
      let span = { from: 1, to: 0, quality: 'unsynced' as TimeQuality, delta: 0 };
      for (const r of records) {
        if (r.seq < span.from || r.seq >= span.to) span = epochs.span(r.seq);
        r.timeQuality = span.quality;
        if (span.quality === 'corrected') {
          r.clockTime = r.time;
          r.time = Math.round(r.time + span.delta);
        }
      }
    }
    return records;
  }

  timeOf(seq: number, time: number): { time: number; quality: TimeQuality } {
    return this.epochs ? this.epochs.timeOf(seq, time) : { time, quality: 'unsynced' };
  }

  /**
   * Moves the sink's cursor; on a full disk the cursor still moves (in memory, written as soon as
   * a write fits), so a batch Kafka confirmed is not sent again.
   */
  ack(sink: string, seq: number): void {
    this.requireOpen();
    const current = this.cursor(sink);
    if (seq <= current) return;
    const unsaved = this.store.cursorsUnsaved;
    try {
      this.space.withReserve(() => this.store.ack(sink, seq));
    } catch (err) {
      if (!unsaved) this.opts.logger.warn({ err: (err as Error).message, sink, seq }, 'journal: disk full; the cursor moved in memory and is written once a write fits (the confirmed batch is not sent again)');
    }
    if (this.space.full !== null) {
      this.space.reassess();
      if (this.space.full === null) this.queue.kick();
    }
    this.caretaker.report({ commit: false });
  }

  inFlight(sink: string, seq: number | null): void {
    this.space.inFlight(sink, seq);
  }

  stats(): JournalStats {
    this.requireOpen();
    const { used, pageSize } = this.store.pages();
    const stored = this.store.stored;
    return {
      backlogRecords: Math.max(0, stored.records - this.store.confirmedInStraddlingRow() + this.queue.pendingRecords),
      storedBytes: stored.bytes,
      oldestTime: this.store.oldestTime(),
      committedSeq: this.queue.committedSeq,
      usedBytes: used * pageSize,
      commits: this.queue.commits,
      full: this.space.full ?? (this.queue.accepting ? null : 'commit_failing'),
    };
  }

  /** Since when appends are refused (ms), or null while they are taken. */
  get fullSince(): number | null {
    return this.space.fullSinceMs;
  }
}
