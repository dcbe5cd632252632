import { statSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import type { Clock } from '../util/clock.js';
import { EvictionLedger } from './eviction-ledger.js';
import type { GapReport } from './gaps.js';
import type { JournalRecord } from './journal.js';
import { decodeRecords } from './record-codec.js';
import type { SpaceReserve } from './reserve.js';
import { INTERNAL_PRIORITY } from './retention.js';
import { isDiskFull, type EvictRow, type JournalStore, type PageUsage } from './store.js';

/** The bounds a reload may change without a restart. */
export interface SpaceBounds {
  /** Most bytes of pages in use; undefined = unbounded. */
  maxBytes?: number;
  /** Records older than this (capture time), in seconds, are evicted; undefined = kept. */
  maxAgeS?: number;
  /** Keep at least this many bytes free on the journal's filesystem; 0/undefined = no bound. */
  minFreeBytes?: number;
}

/** Why the journal refuses records: a bound, or a disk that had no room for a commit. */
export type FullReason = 'max_bytes' | 'min_free_bytes' | 'disk_full';

/**
 * After the disk was full, the journal takes records again only once this much room is there
 * (free pages inside the file plus free bytes on the filesystem, beyond min_free_bytes and the
 * reserve): enough for a few group commits, so it does not flap on and off with every commit.
 */
const DISK_FULL_HEADROOM = 256 * 1024;
/**
 * When a drain and the sources take turns at the edge of a full journal, it goes full and has room
 * again many times a minute: say so (log line, alarm record) at most once a minute per reason.
 */
const REPEAT_NOTICE_MS = 60_000;

/**
 * Room kept on a nearly full filesystem, beyond min_free_bytes, so that the group commit after the
 * last one taken can still be checkpointed (a default commit of 2000 readings is about 0.5 MB).
 */
const CHECKPOINT_ROOM = 1024 * 1024;

/**
 * Decides from one place whether the journal is full and whether room came back, and makes room
 * by policy (eviction into the ledger). It measures the file and the filesystem, deletes through
 * the store, and never calls the commit path: what it has to say (alarms, gap reports) waits in
 * its outbox for the caretaker.
 */
export class SpaceKeeper {
  private reason: FullReason | null = null;
  private fullSince: number | null = null;
  private readonly ledger = new EvictionLedger();
  private ledgerGeneration = 0;
  /** The next commit carries the gap records of a drained ledger: it must clear the ledger rows. */
  private clearLedgerOnCommit = false;
  private readonly outbox: GapReport[] = [];
  /** Per sink, the highest seq it has on the wire now: those rows are not evicted. */
  private readonly onWire = new Map<string, number>();
  private bounds: SpaceBounds;
  private readonly lastNotice = new Map<string, number>();
  /**
   * While a reassess runs: what it measured so far. Each figure costs a pragma or a syscall and a
   * reassess follows every commit, so it measures once; anything that changes the file, the WAL
   * or the reserve forgets the figures.
   */
  private measured: { pages?: PageUsage; fsFree?: number | null; fileSize?: number; walSize?: number } | null = null;

  constructor(
    private readonly store: JournalStore,
    private readonly reserve: SpaceReserve,
    private readonly opts: { path: string; bounds: SpaceBounds; freeBytes: (dir: string) => number | null; logger: Logger; clock: Clock },
  ) {
    this.bounds = { ...opts.bounds };
  }

  /** Why appends are refused now, or null. */
  get full(): FullReason | null {
    return this.reason;
  }

  /** Since when the journal is full (ms), or null. */
  get fullSinceMs(): number | null {
    return this.fullSince;
  }

  get currentBounds(): SpaceBounds {
    return { ...this.bounds };
  }

  /** Evictions whose gap records the last run did not commit. */
  loadLedger(): void {
    this.ledger.load(this.store.ledgerRows());
  }

  setBounds(bounds: SpaceBounds): void {
    const was = this.bounds;
    this.bounds = { ...bounds };
    this.opts.logger.info({ was, now: this.bounds }, 'journal bounds changed');
    this.reassess();
  }

  inFlight(sink: string, seq: number | null): void {
    if (seq === null) this.onWire.delete(sink);
    else this.onWire.set(sink, seq);
  }

  private inFlightFloor(): number {
    let floor = 0;
    for (const s of this.onWire.values()) if (s > floor) floor = s;
    return floor;
  }

  /**
   * Measures the bounds and acts: over a bound, evicts what policy allows, then marks full; within
   * every bound (and, after a full disk, with room measured), takes records again. Needs no commit
   * to decide: a sink draining, space freed on the filesystem, an eviction, an aged record or a
   * raised bound all show up here, whichever path calls it.
   */
  reassess(): void {
    if (!this.store.open) return;
    this.measured = {};
    try {
      this.reassessMeasured();
    } finally {
      this.measured = null;
    }
  }

  private reassessMeasured(): void {
    let over = this.overage();
    if (over.bytes > 0 && over.reason === 'min_free_bytes' && this.truncateWal()) over = this.overage();
    if (over.bytes > 0) {
      this.evictSafely(`evicted_${over.reason}`, () => this.overage().bytes <= 0);
      over = this.overage();
    }
    let short = over.bytes <= 0 && this.checkpointShort();
    if (short || (over.bytes <= 0 && this.reason === 'disk_full' && !this.roomAfterDiskFull())) {
      // Evict (policy permitting) until there is room to take records again, not merely to the brink.
      this.evictSafely('evicted_disk_full', () => (this.walRoom() ?? Infinity) >= CHECKPOINT_ROOM + DISK_FULL_HEADROOM);
      short = this.checkpointShort();
    }
    if (over.bytes > 0) this.setFull(over.reason);
    else if (short) this.setFull('disk_full');
    else if (this.reason === 'disk_full') {
      if (this.roomAfterDiskFull()) this.clearFull();
    } else if (this.reason !== null) this.clearFull();
  }

  /**
   * The WAL file keeps its largest size (megabytes after a backlog) and min_free_bytes counts it
   * as used: once its pages are checkpointed, that room is the journal's own. Hands it back to the
   * filesystem; returns whether the file got smaller.
   */
  private truncateWal(): boolean {
    const wal = `${this.opts.path}-wal`;
    const size = (): number => {
      try {
        return statSync(wal).size;
      } catch {
        return 0;
      }
    };
    const before = size();
    if (before === 0) return false;
    try {
      this.checkpoint('TRUNCATE');
    } catch (err) {
      this.opts.logger.debug({ err }, 'journal: could not truncate the WAL yet');
    }
    return size() < before;
  }

  /** A commit found no room on the disk: refuse appends and make room by policy. */
  diskFull(pendingRows: number): void {
    this.setFull('disk_full');
    this.evictSafely('evicted_disk_full', () => false, Math.max(1, pendingRows) * 2);
  }

  /**
   * Runs a write that must not fail for a full disk (moving a cursor, deleting confirmed rows):
   * when it does, the reserve goes back to the filesystem and the write is tried once more.
   */
  withReserve<T>(write: () => T): T {
    try {
      return write();
    } catch (err) {
      if (!isDiskFull(err)) throw err;
      this.setFull('disk_full');
      if (!this.reserve.release()) throw err;
      this.opts.logger.warn({ reserveBytes: this.reserve.size }, 'journal: disk full; gave back the reserve so cursors and deletions keep working');
      this.changed();
      return write();
    } finally {
      this.changed();
    }
  }

  /**
   * Takes the reserve back when it was given: from free space on the filesystem, or else from
   * the journal's own free pages (handed back to the filesystem), so it is there for the next
   * time the disk fills even if nothing else ever frees space.
   */
  holdReserve(): void {
    if (this.reserve.held || !this.store.open) return;
    const fsFree = this.fsFree();
    const need = this.reserve.size + (this.bounds.minFreeBytes ?? 0);
    if (fsFree !== null && fsFree >= need + DISK_FULL_HEADROOM) {
      if (this.reserve.hold()) this.opts.logger.info({ reserveBytes: this.reserve.size }, 'journal: reserve held again');
      return;
    }
    const { free, pageSize } = this.pages();
    if (free * pageSize < 2 * this.reserve.size + DISK_FULL_HEADROOM) return;
    try {
      this.releasePages(Math.ceil(this.reserve.size / pageSize) + 8);
      this.checkpoint('PASSIVE');
    } catch (err) {
      this.opts.logger.debug({ err }, 'journal: could not hand free pages back for the reserve yet');
      return;
    }
    if (this.reserve.hold()) this.opts.logger.info({ reserveBytes: this.reserve.size }, 'journal: reserve held again, from the journal\'s own free pages');
  }

  private pages(): PageUsage {
    if (!this.measured) return this.store.pages();
    return (this.measured.pages ??= this.store.pages());
  }

  private fsFree(): number | null {
    if (!this.measured) return this.opts.freeBytes(dirname(this.opts.path));
    if (this.measured.fsFree === undefined) this.measured.fsFree = this.opts.freeBytes(dirname(this.opts.path));
    return this.measured.fsFree;
  }

  private fileSize(): number | undefined {
    if (this.measured?.fileSize !== undefined) return this.measured.fileSize;
    let size: number;
    try {
      size = statSync(this.opts.path).size;
    } catch {
      return undefined;
    }
    if (this.measured) this.measured.fileSize = size;
    return size;
  }

  private checkpoint(mode: 'PASSIVE' | 'TRUNCATE'): void {
    try {
      this.store.checkpoint(mode);
    } finally {
      this.changed();
    }
  }

  private releasePages(pages: number): void {
    try {
      this.store.releasePages(pages);
    } finally {
      this.changed();
    }
  }

  /** After a write that changes pages, the WAL, the file or the free space: measure again. */
  private changed(): void {
    if (this.measured) this.measured = {};
  }

  /** Bytes over the tightest bound (<= 0 when within all), and which bound. */
  private overage(): { bytes: number; reason: 'max_bytes' | 'min_free_bytes' } {
    const { used, free, pageSize } = this.pages();
    let worst: { bytes: number; reason: 'max_bytes' | 'min_free_bytes' } = { bytes: -Infinity, reason: 'max_bytes' };
    if (this.bounds.maxBytes !== undefined) worst = { bytes: used * pageSize - this.bounds.maxBytes, reason: 'max_bytes' };
    if (this.bounds.minFreeBytes) {
      const fsFree = this.fsFree();
      if (fsFree !== null) {
        const short = this.bounds.minFreeBytes - (fsFree + free * pageSize);
        if (short > worst.bytes) worst = { bytes: short, reason: 'min_free_bytes' };
      }
    }
    return worst;
  }

  /**
   * Bytes the database file must still grow by before its WAL can be checkpointed: pages committed
   * in the WAL beyond the file's end. Until a checkpoint completes the WAL cannot start over, so
   * every write (a cursor move, a deletion) needs new room on the filesystem: free pages inside
   * the file do not help while this is above 0.
   */
  private checkpointDebt(): number {
    const { used, free, pageSize } = this.pages();
    const size = this.fileSize();
    if (size === undefined) return 0;
    return Math.max(0, (used + free) * pageSize - size);
  }

  /**
   * Whether the filesystem is too full for the next group commit to be checkpointed afterwards. A
   * journal that let the disk fill past that point could never write again, not even to delete
   * what Kafka confirmed (the WAL can neither grow nor start over): so it stops taking records
   * first. Near the bound it checkpoints at once, and pays a checkpoint debt from the file's own
   * free pages (incremental_vacuum shortens the file) when the filesystem cannot.
   */
  private checkpointShort(): boolean {
    const fsFree = this.fsFree();
    if (fsFree === null) return false;
    const spare = this.reserve.held ? 0 : -this.reserve.size;
    const debt = this.checkpointDebt();
    if (debt > 0 && fsFree + spare < debt + CHECKPOINT_ROOM) this.settleDebt(debt);
    if ((this.walRoom() ?? Infinity) >= CHECKPOINT_ROOM) return false;
    // Short with nothing owed and next to nothing journaled (emptied by eviction or a drain): the
    // WAL file (megabytes after a backlog, counted nowhere) is what holds the room. Hand it back,
    // or such a journal would stay "full" for good. Not while a backlog remains: its deletions
    // need that WAL room, and handing it back would let new records take it.
    if (this.checkpointDebt() === 0 && this.store.stored.bytes < DISK_FULL_HEADROOM && this.walFileBytes() > 0) {
      try {
        this.checkpoint('TRUNCATE');
      } catch (err) {
        this.opts.logger.debug({ err }, 'journal: could not truncate the WAL yet');
      }
    }
    return (this.walRoom() ?? Infinity) < CHECKPOINT_ROOM;
  }

  /**
   * Room for commits, measured: free bytes on the filesystem (the reserve, once given back, not
   * counted) and free pages in the file, less the checkpoint debt (free pages pay it too:
   * settleDebt hands them back). Null when the filesystem cannot be measured.
   */
  private walRoom(): number | null {
    const fsFree = this.fsFree();
    if (fsFree === null) return null;
    const { free, pageSize } = this.pages();
    return fsFree - (this.reserve.held ? 0 : this.reserve.size) + free * pageSize - this.checkpointDebt();
  }

  private walFileBytes(): number {
    if (this.measured?.walSize !== undefined) return this.measured.walSize;
    let size: number;
    try {
      size = statSync(`${this.opts.path}-wal`).size;
    } catch {
      size = 0;
    }
    if (this.measured) this.measured.walSize = size;
    return size;
  }

  /** Checkpoints; when the file cannot grow enough for that, first hands free pages back. Returns the debt left. */
  private settleDebt(debt: number): number {
    try {
      this.checkpoint('PASSIVE');
    } catch (err) {
      this.opts.logger.debug({ err }, 'journal: checkpoint did not complete yet');
    }
    const left = this.checkpointDebt();
    const { free, pageSize } = this.pages();
    if (left === 0 || free === 0) return left;
    try {
      this.withReserve(() => this.releasePages(Math.min(free, Math.ceil(debt / pageSize) + 16)));
      this.checkpoint('PASSIVE');
    } catch (err) {
      this.opts.logger.debug({ err }, 'journal: could not shorten the file for a checkpoint yet');
    }
    return this.checkpointDebt();
  }

  /**
   * Room measured, not hoped for: free pages inside the file count once the WAL can be
   * checkpointed (before, every write needs the filesystem); the reserve does not count.
   */
  private roomAfterDiskFull(): boolean {
    const { free, pageSize } = this.pages();
    const fsFree = this.fsFree() ?? 0;
    const debt = this.checkpointDebt();
    if (debt > 0) return false;
    // With no debt the WAL can be checkpointed and then starts over from its beginning: its file,
    // megabytes after a backlog, is room the next commits reuse without the filesystem.
    const usable = fsFree - (this.reserve.held ? 0 : this.reserve.size) + free * pageSize + this.walFileBytes();
    return usable >= (this.bounds.minFreeBytes ?? 0) + CHECKPOINT_ROOM + DISK_FULL_HEADROOM;
  }

  private setFull(reason: FullReason): void {
    if (this.reason === reason) return;
    const was = this.reason;
    this.reason = reason;
    if (was !== null) return;
    const now = this.opts.clock.now();
    this.fullSince = now;
    if (!this.notice(`full:${reason}`, now)) {
      this.opts.logger.debug({ reason }, 'journal full again');
      return;
    }
    this.opts.logger.warn({ reason, maxBytes: this.bounds.maxBytes, minFreeBytes: this.bounds.minFreeBytes }, 'journal full: sources with overflow = "backpressure" pause, sources that cannot pause drop (with gap records)');
    this.outbox.push({ reason: `journal_full_${reason}`, source: 'sluice:journal', firstTime: now, lastTime: now, count: 0, bytes: 0, detail: 'alarm: the journal stopped taking records; nothing is lost by this alone (see gap records with other reasons for losses)' });
  }

  /** Whether a notice under `key` may be given now (at most one per REPEAT_NOTICE_MS). */
  private notice(key: string, now: number): boolean {
    const last = this.lastNotice.get(key);
    if (last !== undefined && now - last < REPEAT_NOTICE_MS) return false;
    this.lastNotice.set(key, now);
    return true;
  }

  private clearFull(): void {
    const now = this.opts.clock.now();
    const fields = { was: this.reason, fullForMs: this.fullSince === null ? null : now - this.fullSince };
    if (this.notice(`room:${this.reason}`, now)) this.opts.logger.info(fields, 'journal takes records again');
    else this.opts.logger.debug(fields, 'journal takes records again');
    this.reason = null;
    this.fullSince = null;
  }

  /** Evicts; on a full disk (a delete writes the WAL too) gives back the reserve and tries once more. */
  private evictSafely(reason: string, enough: () => boolean, maxRows = Number.POSITIVE_INFINITY): void {
    try {
      this.withReserve(() => this.evict(reason, enough, maxRows));
    } catch (err) {
      if (!isDiskFull(err)) throw err;
      this.setFull('disk_full');
      this.opts.logger.debug({ err }, 'journal: no room even to evict; will try again');
    }
  }

  /**
   * Deletes evictable rows, lowest priority then oldest first, until `enough()` or `maxRows`;
   * what they held goes to the ledger (persisted in the same transaction) and from there into gap records.
   */
  private evict(reason: string, enough: () => boolean, maxRows: number): number {
    const minCursor = this.store.minCursor();
    let rows = 0;
    this.undoOnRollback(() =>
      this.store.transaction(() => {
        while (rows < maxRows) {
          const batch = this.store.evictableRows(minCursor, this.inFlightFloor());
          if (batch.length === 0) break;
          for (const row of batch) {
            this.dropRow(row, minCursor, reason);
            rows++;
            if (rows >= maxRows || enough()) break;
          }
          if (rows >= maxRows || enough()) break;
        }
        this.persistLedger();
      }),
    );
    return rows;
  }

  /** max_age: rows older than the bound go whatever the policy (gap and alarm records stay). */
  evictAged(): void {
    if (this.bounds.maxAgeS === undefined || !this.store.open) return;
    const cutoff = this.opts.clock.now() - this.bounds.maxAgeS * 1000;
    const minCursor = this.store.minCursor();
    const run = (): void =>
      this.undoOnRollback(() =>
        this.store.transaction(() => {
          for (;;) {
            const batch = this.store.agedRows(INTERNAL_PRIORITY, cutoff, minCursor, this.inFlightFloor());
            if (batch.length === 0) break;
            for (const row of batch) this.dropRow(row, minCursor, 'evicted_max_age');
          }
          this.persistLedger();
        }),
      );
    this.withReserve(run);
  }

  /**
   * If an evicting transaction rolls back (the disk is full), the rows are still there: the ledger
   * and counts must forget them too, else a gap record would name records that are later shipped.
   */
  private undoOnRollback(run: () => void): void {
    const ledger = this.ledger.serialize();
    const stored = { ...this.store.stored };
    const outbox = this.outbox.length;
    try {
      run();
    } catch (err) {
      this.ledger.restore(ledger);
      this.store.stored.records = stored.records;
      this.store.stored.bytes = stored.bytes;
      this.outbox.length = outbox;
      throw err;
    }
  }

  private dropRow(row: EvictRow, minCursor: number, reason: string): void {
    this.store.deleteRow(row);
    this.changed();
    let records: JournalRecord[];
    try {
      records = decodeRecords(row.data, row.first_seq, row.count);
    } catch {
      records = [];
      this.outbox.push({ reason, source: 'sluice:journal', firstSeq: row.first_seq, lastSeq: row.last_seq, firstTime: 0, lastTime: 0, count: row.count, bytes: row.bytes, detail: 'evicted row could not be decoded' });
    }
    this.ledger.add(reason, records, minCursor);
  }

  /** Keyed by drain generation: entries already drained into not-yet-committed gap records keep their own rows. */
  private persistLedger(): void {
    this.store.persistLedger(this.ledger.serialize().map(([reason, entry]) => [`${reason}#${this.ledgerGeneration}`, entry]));
  }

  get hasReports(): boolean {
    return this.outbox.length > 0 || !this.ledger.empty;
  }

  /** Alarms and evictions to report since the last call; the commit carrying them clears the ledger rows. */
  drainReports(): GapReport[] {
    const out = this.outbox.splice(0);
    if (!this.ledger.empty) {
      for (const gap of this.ledger.drain()) {
        this.opts.logger.warn({ reason: gap.reason, count: gap.count, bytes: gap.bytes, firstSeq: gap.firstSeq, lastSeq: gap.lastSeq }, 'journal evicted records; a gap record lists them');
        out.push(gap);
      }
      this.clearLedgerOnCommit = true;
      this.ledgerGeneration++;
    }
    return out;
  }

  /** Inside a group commit's transaction: the gap records it carries replace the ledger rows. */
  inCommit(): (() => void) | null {
    if (!this.clearLedgerOnCommit) return null;
    this.store.clearLedger();
    this.persistLedger(); // entries evicted since the drain stay recorded
    return () => {
      this.clearLedgerOnCommit = false;
    };
  }
}
