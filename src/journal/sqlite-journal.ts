import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { crc32 } from 'node:zlib';
import Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { SluiceError } from '../errors.js';
import type { Clock } from '../util/clock.js';
import { freeBytes as statFreeBytes } from './disk-space.js';
import { EvictionLedger } from './eviction-ledger.js';
import { APPLICATION_ID, inspectHeader, SCHEMA_VERSION } from './header.js';
import { GAP_SOURCE, type ReportGap } from './gaps.js';
import type { CommitSidecar, Journal, JournalRecord, JournalStats, NewRecord } from './journal.js';
import { decodeRecords, encodeRecords } from './record-codec.js';
import { INTERNAL_PRIORITY, keepEverything, type Classify, type RecordClass } from './retention.js';
import { setAside } from './set-aside.js';

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
  /** Priority and evictability of a record; default: everything kept. */
  classify?: Classify;
  /** Where evictions and alarms are reported (the gateway's GapRecorder). */
  reportGap?: ReportGap;
  /** Free bytes on the filesystem holding a directory; injectable for tests. */
  freeBytes?: (dir: string) => number | null;
  /** How often bounds, age, the WAL file and pending gap reports are looked after, ms. Default 1000. */
  maintenanceIntervalMs?: number;
  logger: Logger;
  clock: Clock;
}

/** After a failed commit, the pending records stay queued and we keep trying on a timer. */
const RETRY_COMMIT_MS = 1000;
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
/** Gap and alarm records may use this many times the bound, so a loss during the failure is still reported. */
const PENDING_INTERNAL_FACTOR = 2;

type Row = { first_seq: number; last_seq: number; count: number; bytes: number; min_time: number; max_time: number; data: Buffer; crc: number | null };
type EvictRow = { first_seq: number; last_seq: number; count: number; bytes: number; data: Buffer };
/** max_age is looked at every this many maintenance ticks. */
const AGE_EVERY_TICKS = 5;
const EVICT_CHUNK = 16;

function isDiskFull(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return code === 'SQLITE_FULL' || code === 'SQLITE_IOERR_WRITE' || code === 'ENOSPC';
}

export class SqliteJournal implements Journal {
  readonly name = 'journal';
  private db: Database.Database | null = null;
  private pending: NewRecord[] = [];
  private pendingClass: RecordClass[] = [];
  /** Payload bytes of `pending`. */
  private pendingBytes = 0;
  /** Set once per failing episode when the pending bound refused an append (for the alarm). */
  private pendingFullAlarmed = false;
  /** Records and payload bytes in the batches table (all sinks, confirmed rows excluded). */
  private stored = { records: 0, bytes: 0 };
  /** Why the journal refuses appends now (a bound or the disk), or null. */
  private fullReason: string | null = null;
  private readonly ledger = new EvictionLedger();
  private maintenance: NodeJS.Timeout | null = null;
  private ticks = 0;
  private pageSize = 4096;
  /** The next commit carries the gap records of the ledger: clear its persisted rows with it. */
  private clearLedgerOnCommit = false;
  private ledgerGeneration = 0;
  /** Per sink, the highest seq it has on the wire now. */
  private readonly onWire = new Map<string, number>();
  private nextSeq = 1;
  private committed = 0;
  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  private readonly listeners = new Set<(seq: number) => void>();
  private readonly cursors = new Map<string, number>();
  /** Component state written with each commit; `written` is the version on disk. */
  private readonly sidecars = new Map<string, { sidecar: CommitSidecar; written: number | null }>();
  private commitCount = 0;
  private failing = false;
  private stmts!: {
    insert: Database.Statement;
    findStart: Database.Statement;
    readFrom: Database.Statement;
    setCursor: Database.Statement;
    deleteThrough: Database.Statement;
    setMeta: Database.Statement;
    oldest: Database.Statement;
    evictable: Database.Statement;
    aged: Database.Statement;
    deleteRow: Database.Statement;
    setSidecar: Database.Statement;
    nextSeq: Database.Statement;
    rowEnd: Database.Statement;
    upsertEvicted: Database.Statement;
    deleteCursor: Database.Statement;
  };

  constructor(private readonly opts: SqliteJournalOptions) {}

  async start(): Promise<void> {
    if (this.db) return;
    const { path, logger } = this.opts;
    mkdirSync(dirname(path), { recursive: true });
    let db: Database.Database;
    try {
      db = this.open(path);
    } catch (err) {
      if (!(err instanceof SluiceError) || err.code !== 'SLUICE_JOURNAL_CORRUPT' || (err.cause as { foreign?: boolean } | undefined)?.foreign) throw err;
      // A damaged journal must not become a crash loop, nor a silent empty start: set it aside,
      // start anew above its seqs, and say so in an alarm record shipped like a reading.
      const aside = setAside(path, new Date(this.opts.clock.now()));
      logger.error({ err: err.message, setAside: aside.files, lastSeq: aside.lastSeq, unshippedRecords: aside.unshippedRecords }, 'journal unusable: set aside; starting a new journal (recover what is readable with `sluice journal salvage`)');
      db = this.open(path);
      // Seqs must never go backwards: continue above the old file's, or above the clock when unreadable.
      const floor = aside.lastSeq ?? this.opts.clock.now();
      if (floor + 1 > this.nextSeq) {
        db.prepare("INSERT INTO meta (k, v) VALUES ('next_seq', ?) ON CONFLICT (k) DO UPDATE SET v = max(v, excluded.v)").run(floor + 1);
        this.nextSeq = floor + 1;
        this.committed = floor;
      }
      this.db = db;
      this.opts.reportGap?.({
        reason: 'journal_set_aside',
        source: 'sluice:journal',
        firstTime: this.opts.clock.now(),
        lastTime: this.opts.clock.now(),
        count: aside.unshippedRecords ?? 0,
        bytes: 0,
        detail: `journal failed its check (${err.message}); moved to ${aside.path}; ${aside.unshippedRecords === null ? 'how many records it held is unknown' : `${aside.unshippedRecords} records were not yet shipped`}; recover them with \`sluice journal salvage ${aside.path}\``,
      });
    }
    this.db = db;
    const stats = this.stats();
    logger.info({ path, durability: this.opts.durability, backlog: stats.backlogRecords, nextSeq: this.nextSeq, maxBytes: this.opts.maxBytes, maxAgeS: this.opts.maxAgeS, minFreeBytes: this.opts.minFreeBytes }, 'journal open');
    this.maintenance = setInterval(() => this.maintain(), this.opts.maintenanceIntervalMs ?? 1000);
    this.maintenance.unref();
    this.checkBounds();
  }

  private open(path: string): Database.Database {
    let db: Database.Database;
    try {
      db = new Database(path);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'SQLITE_CANTOPEN' && existsSync(path)) {
        throw new SluiceError('SLUICE_JOURNAL_CORRUPT', `journal ${path} cannot be opened: ${(err as Error).message}`, { cause: err });
      }
      throw new SluiceError('SLUICE_JOURNAL_OPEN', `cannot open journal ${path}: ${(err as Error).message}`, { cause: err });
    }
    try {
      this.prepare(db);
    } catch (err) {
      db.close();
      if (err instanceof SluiceError) throw err;
      throw new SluiceError('SLUICE_JOURNAL_CORRUPT', `journal ${path} is not a readable sluice journal: ${(err as Error).message}`, { cause: err });
    }
    return db;
  }

  private prepare(db: Database.Database): void {
    const header = inspectHeader(db);
    if (header.kind === 'foreign') {
      throw new SluiceError('SLUICE_JOURNAL_CORRUPT', `${this.opts.path} is ${header.problem}; refusing to use it`, { cause: { foreign: true } });
    }
    if (header.kind === 'damaged') {
      // Ours (it has sluice's tables), so refusing it would only be a crash loop: set it aside.
      throw new SluiceError('SLUICE_JOURNAL_CORRUPT', `journal ${this.opts.path} has ${header.problem}`);
    }
    if (header.kind === 'empty') {
      // auto_vacuum only takes effect before the first table exists.
      db.pragma('auto_vacuum = INCREMENTAL');
      db.pragma(`application_id = ${APPLICATION_ID}`);
      db.pragma(`user_version = ${SCHEMA_VERSION}`);
    } else {
      const check = db.pragma('quick_check', { simple: true }) as string;
      if (check !== 'ok') throw new SluiceError('SLUICE_JOURNAL_CORRUPT', `journal ${this.opts.path} failed SQLite's quick_check: ${check}`);
      if (header.version === 1) {
        // Version 2 added eviction classes; old rows are kept-everything, priority 0.
        db.exec('ALTER TABLE batches ADD COLUMN priority INTEGER NOT NULL DEFAULT 0; ALTER TABLE batches ADD COLUMN evictable INTEGER NOT NULL DEFAULT 0; ALTER TABLE batches ADD COLUMN crc INTEGER;');
        db.pragma(`user_version = ${SCHEMA_VERSION}`);
      }
    }
    const mode = db.pragma('journal_mode = WAL', { simple: true }) as string;
    if (mode !== 'wal') throw new SluiceError('SLUICE_JOURNAL_OPEN', `journal ${this.opts.path}: cannot switch to WAL mode (got ${mode})`);
    db.pragma(`synchronous = ${this.opts.durability === 'power' ? 'FULL' : 'NORMAL'}`);
    db.exec(`
      CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS cursors (sink TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS batches (
        first_seq INTEGER PRIMARY KEY,
        last_seq INTEGER NOT NULL,
        count INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        min_time REAL NOT NULL,
        max_time REAL NOT NULL,
        data BLOB NOT NULL,
        priority INTEGER NOT NULL DEFAULT 0,
        evictable INTEGER NOT NULL DEFAULT 0,
        crc INTEGER
      );
      CREATE INDEX IF NOT EXISTS batches_eviction ON batches (evictable, priority, first_seq);
      CREATE TABLE IF NOT EXISTS evicted (reason TEXT PRIMARY KEY, entry TEXT NOT NULL) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS sidecars (name TEXT PRIMARY KEY, data BLOB NOT NULL) WITHOUT ROWID;
    `);
    this.pageSize = db.pragma('page_size', { simple: true }) as number;
    this.stmts = {
      insert: db.prepare('INSERT INTO batches (first_seq, last_seq, count, bytes, min_time, max_time, data, priority, evictable, crc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)'),
      findStart: db.prepare('SELECT first_seq FROM batches WHERE first_seq <= ? ORDER BY first_seq DESC LIMIT 1').pluck(),
      readFrom: db.prepare('SELECT first_seq, last_seq, count, bytes, min_time, max_time, data, crc FROM batches WHERE first_seq >= ? ORDER BY first_seq'),
      setCursor: db.prepare('INSERT INTO cursors (sink, seq) VALUES (?, ?) ON CONFLICT (sink) DO UPDATE SET seq = excluded.seq'),
      deleteThrough: db.prepare('DELETE FROM batches WHERE last_seq <= ? RETURNING count, bytes'),
      setMeta: db.prepare('INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = max(v, excluded.v)'),
      oldest: db.prepare('SELECT min(min_time) FROM batches').pluck(),
      evictable: db.prepare(`SELECT first_seq, last_seq, count, bytes, data FROM batches WHERE evictable = 1 AND last_seq > ? AND first_seq > ? ORDER BY priority, first_seq LIMIT ${EVICT_CHUNK}`),
      aged: db.prepare(`SELECT first_seq, last_seq, count, bytes, data FROM batches WHERE priority < ${INTERNAL_PRIORITY} AND max_time < ? AND last_seq > ? AND first_seq > ? ORDER BY first_seq LIMIT ${EVICT_CHUNK}`),
      deleteRow: db.prepare('DELETE FROM batches WHERE first_seq = ?'),
      setSidecar: db.prepare('INSERT INTO sidecars (name, data) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET data = excluded.data'),
      nextSeq: db.prepare("SELECT v FROM meta WHERE k = 'next_seq'").pluck(),
      rowEnd: db.prepare('SELECT last_seq FROM batches WHERE first_seq = ?').pluck(),
      upsertEvicted: db.prepare('INSERT INTO evicted (reason, entry) VALUES (?, ?) ON CONFLICT (reason) DO UPDATE SET entry = excluded.entry'),
      deleteCursor: db.prepare('DELETE FROM cursors WHERE sink = ?'),
    };
    // Evictions whose gap record was not yet committed when the last run ended.
    this.ledger.load(db.prepare('SELECT reason, entry FROM evicted').all() as { reason: string; entry: string }[]);
    const totals = db.prepare('SELECT count(*) AS rows, coalesce(sum(count), 0) AS records, coalesce(sum(bytes), 0) AS bytes FROM batches').get() as { records: number; bytes: number };
    this.stored = { records: totals.records, bytes: totals.bytes };
    // The counter survives the table draining: meta.next_seq is raised whenever rows are deleted.
    const metaNext = (db.prepare("SELECT v FROM meta WHERE k = 'next_seq'").pluck().get() as number | undefined) ?? 1;
    const maxLast = (db.prepare('SELECT max(last_seq) FROM batches').pluck().get() as number | null) ?? 0;
    this.nextSeq = Math.max(metaNext, maxLast + 1);
    this.committed = this.nextSeq - 1;
    for (const row of db.prepare('SELECT sink, seq FROM cursors').all() as { sink: string; seq: number }[]) {
      this.cursors.set(row.sink, row.seq);
    }
  }

  async stop(): Promise<void> {
    if (!this.db) return;
    this.clearTimers();
    if (this.maintenance) clearInterval(this.maintenance);
    this.maintenance = null;
    this.reportEvictions();
    try {
      this.flush();
    } catch (err) {
      this.opts.logger.error({ err, pending: this.pending.length }, 'journal: final commit failed; unacknowledged records will be redelivered by their sources');
    }
    this.clearTimers(); // the failed flush armed a retry
    this.db.close();
    this.db = null;
    this.opts.logger.info('journal closed');
  }

  append(record: NewRecord): number {
    if (!this.db) throw new SluiceError('SLUICE_JOURNAL_CLOSED', 'journal is not open');
    // Gap and alarm records are small, rare and coalesced: they get in even when full, so no loss goes unreported.
    if (this.fullReason !== null && record.source !== GAP_SOURCE) {
      throw new SluiceError('SLUICE_JOURNAL_FULL', `journal full (${this.fullReason})`, { retriable: true });
    }
    if (this.failing && this.pendingOver(record.source === GAP_SOURCE ? PENDING_INTERNAL_FACTOR : 1)) {
      this.alarmPendingFull();
      throw new SluiceError('SLUICE_JOURNAL_FULL', `journal full (commit_failing: ${this.pending.length} records, ${this.pendingBytes} bytes wait for a commit that fails)`, { retriable: true });
    }
    this.pending.push(record);
    this.pendingBytes += record.payload.length;
    this.pendingClass.push((this.opts.classify ?? keepEverything)(record.source, record.topic));
    const seq = this.nextSeq++;
    if (this.pending.length >= this.opts.commitMaxRecords && !this.failing) {
      // Commit outside the caller's stack: listeners acknowledge upstream and must not re-enter the source.
      // Not while commits fail: the retry timer paces those, else every append would retry at once.
      this.immediate ??= setImmediate(() => {
        this.immediate = null;
        this.commitSafely();
      });
    } else if (!this.timer && !this.failing) {
      this.timer = setTimeout(() => {
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

  get committedSeq(): number {
    return this.committed;
  }

  get lastAssignedSeq(): number {
    return this.nextSeq - 1;
  }

  private commitSafely(): void {
    try {
      this.flush();
    } catch {
      // flush() logged it, marked the journal failing and armed the retry.
    }
  }

  /** Whether the records waiting for a commit exceed `factor` times the bound kept while commits fail. */
  private pendingOver(factor: number): boolean {
    return this.pending.length >= factor * PENDING_COMMITS * this.opts.commitMaxRecords || this.pendingBytes >= factor * PENDING_MAX_BYTES;
  }

  private alarmPendingFull(): void {
    if (this.pendingFullAlarmed) return;
    this.pendingFullAlarmed = true;
    this.opts.logger.warn({ pending: this.pending.length, pendingBytes: this.pendingBytes }, 'journal full: commits keep failing and the records waiting for one reached their bound; sources with overflow = "backpressure" pause, sources that cannot pause drop (with gap records)');
    this.opts.reportGap?.({ reason: 'journal_full_commit_failing', source: 'sluice:journal', firstTime: this.opts.clock.now(), lastTime: this.opts.clock.now(), count: 0, bytes: 0, detail: 'alarm: commits to the journal keep failing; it stopped taking records until one succeeds; nothing is lost by this alone (see gap records with other reasons for losses)' });
  }

  /** A commit failed: remember it, say so once, and retry on a timer (also when the failed flush came from outside). */
  private commitFailed(err: unknown): void {
    if (!this.failing) this.opts.logger.error({ err, pending: this.pending.length }, 'journal: commit failed; holding acknowledgements and retrying');
    this.failing = true;
    if (this.immediate) clearImmediate(this.immediate);
    this.immediate = null;
    this.timer ??= setTimeout(() => {
      this.timer = null;
      this.commitSafely();
    }, RETRY_COMMIT_MS);
  }

  flush(): void {
    this.requireDb();
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
    this.pendingFullAlarmed = false;
    this.pendingBytes = 0;
    this.clearLedgerOnCommit = false;
    this.stored.records += inserted.records;
    this.stored.bytes += inserted.bytes;
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
    this.checkBounds();
  }

  /** Inserts the pending records; on a full disk, refuses new ones, evicts by policy and tries once more. */
  private insertOrMakeRoom(records: NewRecord[], classes: RecordClass[], firstSeq: number): { records: number; bytes: number } {
    try {
      return this.insertRuns(records, classes, firstSeq);
    } catch (err) {
      if (!isDiskFull(err)) throw new SluiceError('SLUICE_JOURNAL_WRITE', `journal commit failed: ${(err as Error).message}`, { retriable: true, cause: err });
      this.setFull('disk_full');
      this.evict(Number.POSITIVE_INFINITY, 'evicted_disk_full', () => false, Math.max(1, Math.ceil(records.length / this.opts.commitMaxRecords)) * 2);
      try {
        return this.insertRuns(records, classes, firstSeq);
      } catch (err2) {
        throw new SluiceError('SLUICE_JOURNAL_FULL', `journal commit failed, disk full: ${(err2 as Error).message}`, { retriable: true, cause: err2 });
      }
    }
  }

  /** One row per run of records with the same class, so eviction can take whole rows. */
  private insertRuns(records: NewRecord[], classes: RecordClass[], firstSeq: number): { records: number; bytes: number } {
    let bytesTotal = 0;
    let written: (() => void) | null = null;
    this.db!.transaction(() => {
      if (this.clearLedgerOnCommit) {
        this.db!.exec('DELETE FROM evicted');
        this.persistLedger(); // entries evicted since the drain stay recorded
      }
      written = this.writeSidecars();
      let start = 0;
      for (let i = 1; i <= records.length; i++) {
        const a = classes[start]!;
        const b = classes[i];
        if (i < records.length && b!.priority === a.priority && b!.evictable === a.evictable) continue;
        const run = start === 0 && i === records.length ? records : records.slice(start, i);
        let minTime = Infinity;
        let maxTime = -Infinity;
        let bytes = 0;
        for (const r of run) {
          if (r.time < minTime) minTime = r.time;
          if (r.time > maxTime) maxTime = r.time;
          bytes += r.payload.length;
        }
        const data = encodeRecords(run);
        this.stmts.insert.run(firstSeq + start, firstSeq + i - 1, run.length, bytes, minTime, maxTime, data, a.priority, a.evictable ? 1 : 0, crc32(data));
        bytesTotal += bytes;
        start = i;
      }
    })();
    (written as (() => void) | null)?.();
    return { records: records.length, bytes: bytesTotal };
  }

  /** Inside a commit's transaction; returns what marks them written once it committed. */
  private writeSidecars(): (() => void) | null {
    if (this.sidecars.size === 0) return null;
    const done: [{ written: number | null }, number][] = [];
    for (const [name, s] of this.sidecars) {
      const v = s.sidecar.version();
      if (v === s.written) continue;
      this.stmts.setSidecar.run(name, s.sidecar.encode());
      done.push([s, v]);
    }
    return () => {
      for (const [s, v] of done) s.written = v;
    };
  }

  commitSidecars(): void {
    const db = this.requireDb();
    let written: (() => void) | null = null;
    db.transaction(() => {
      written = this.writeSidecars();
    })();
    (written as (() => void) | null)?.();
  }

  setCommitSidecar(name: string, sidecar: CommitSidecar | null): Buffer | null {
    const db = this.requireDb();
    if (sidecar) this.sidecars.set(name, { sidecar, written: null });
    else this.sidecars.delete(name);
    return (db.prepare('SELECT data FROM sidecars WHERE name = ?').pluck().get(name) as Buffer | undefined) ?? null;
  }

  /** Whether appends are taken now (false while a bound or a full disk holds them off). */
  get accepting(): boolean {
    return this.fullReason === null && !(this.failing && this.pendingOver(1));
  }

  private setFull(reason: string): void {
    if (this.fullReason === reason) return;
    const was = this.fullReason;
    this.fullReason = reason;
    if (was === null) {
      this.opts.logger.warn({ reason, maxBytes: this.opts.maxBytes, minFreeBytes: this.opts.minFreeBytes }, 'journal full: sources with overflow = "backpressure" pause, sources that cannot pause drop (with gap records)');
      this.opts.reportGap?.({ reason: `journal_full_${reason}`, source: 'sluice:journal', firstTime: this.opts.clock.now(), lastTime: this.opts.clock.now(), count: 0, bytes: 0, detail: 'alarm: the journal stopped taking records; nothing is lost by this alone (see gap records with other reasons for losses)' });
    }
  }

  /** Bytes over the tightest bound (<= 0 when within all), and which bound. */
  private overage(): { bytes: number; reason: string } {
    const db = this.db!;
    const pages = db.pragma('page_count', { simple: true }) as number;
    const free = db.pragma('freelist_count', { simple: true }) as number;
    const used = (pages - free) * this.pageSize;
    let worst = { bytes: -Infinity, reason: 'max_bytes' };
    if (this.opts.maxBytes !== undefined) worst = { bytes: used - this.opts.maxBytes, reason: 'max_bytes' };
    if (this.opts.minFreeBytes) {
      const fsFree = (this.opts.freeBytes ?? statFreeBytes)(dirname(this.opts.path));
      if (fsFree !== null) {
        const short = this.opts.minFreeBytes - (fsFree + free * this.pageSize);
        if (short > worst.bytes) worst = { bytes: short, reason: 'min_free_bytes' };
      }
    }
    return worst;
  }

  /** Evicts by policy while over a bound; sets or clears the full state. */
  private checkBounds(): void {
    if (!this.db) return;
    let over = this.overage();
    if (over.bytes > 0) {
      this.evict(over.bytes, `evicted_${over.reason}`, () => this.overage().bytes <= 0);
      over = this.overage();
    }
    if (over.bytes > 0) {
      this.setFull(over.reason);
    } else if (this.fullReason !== null) {
      if (this.fullReason === 'disk_full' && this.pending.length > 0) {
        // The retry timer decides, but a flush from outside commitSafely (a source pausing for
        // the full journal) clears that timer and fails again, leaving none: without this the
        // journal never took records again after the disk had room.
        if (!this.timer && !this.immediate) this.commitSafely();
        return;
      }
      this.opts.logger.info({ was: this.fullReason }, 'journal takes records again');
      this.fullReason = null;
    }
  }

  /**
   * Deletes evictable rows, lowest priority then oldest first, until `enough()` or `maxRows`;
   * what they held goes to the eviction ledger and from there into gap records.
   */
  private evict(_bytes: number, reason: string, enough: () => boolean, maxRows = Number.POSITIVE_INFINITY): number {
    const minCursor = this.minCursor();
    let rows = 0;
    this.undoLedgerOnRollback(() => this.db!.transaction(() => {
      while (rows < maxRows) {
        const batch = this.stmts.evictable.all(minCursor, this.inFlightFloor()) as EvictRow[];
        if (batch.length === 0) return;
        for (const row of batch) {
          this.dropRow(row, minCursor, reason);
          rows++;
          if (rows >= maxRows || enough()) break;
        }
        if (rows >= maxRows || enough()) break;
      }
      this.persistLedger();
    })());
    return rows;
  }

  /**
   * Runs an evicting transaction; if it rolls back (the disk is full: even a delete writes the
   * WAL), the rows are still there, so the ledger and counts must forget them too — else a gap
   * record would name records that are later shipped.
   */
  private undoLedgerOnRollback(run: () => void): void {
    const ledger = this.ledger.serialize();
    const stored = { ...this.stored };
    try {
      run();
    } catch (err) {
      this.ledger.restore(ledger);
      this.stored = stored;
      throw err;
    }
  }

  private dropRow(row: EvictRow, minCursor: number, reason: string): void {
    this.stmts.deleteRow.run(row.first_seq);
    this.stored.records -= row.count;
    this.stored.bytes -= row.bytes;
    let records: JournalRecord[];
    try {
      records = decodeRecords(row.data, row.first_seq, row.count);
    } catch {
      records = [];
      this.opts.reportGap?.({ reason, source: 'sluice:journal', firstSeq: row.first_seq, lastSeq: row.last_seq, firstTime: 0, lastTime: 0, count: row.count, bytes: row.bytes, detail: 'evicted row could not be decoded' });
    }
    this.ledger.add(reason, records, minCursor);
  }

  inFlight(sink: string, seq: number | null): void {
    if (seq === null) this.onWire.delete(sink);
    else this.onWire.set(sink, seq);
  }

  /** Rows starting at or below this hold records a sink is sending: not evictable now. */
  private inFlightFloor(): number {
    let floor = 0;
    for (const s of this.onWire.values()) if (s > floor) floor = s;
    return floor;
  }

  private minCursor(): number {
    if (this.cursors.size) return Math.min(...this.cursors.values());
    return this.deletedThrough();
  }

  /** Every seq at or below this has been confirmed by all sinks and deleted. */
  private deletedThrough(): number {
    return ((this.stmts.nextSeq.get() as number | undefined) ?? 1) - 1;
  }

  /** Once a second: pending gap reports, max_age, a full journal getting room back, a deleted WAL. */
  private maintain(): void {
    if (!this.db) return;
    try {
      this.ticks++;
      if (!existsSync(`${this.opts.path}-wal`)) this.recoverDeletedWal();
      if (this.opts.maxAgeS !== undefined && this.ticks % AGE_EVERY_TICKS === 0) this.evictAged();
      if (this.fullReason !== null) this.checkBounds();
      this.reportEvictions();
    } catch (err) {
      this.opts.logger.error({ err }, 'journal maintenance failed; will try again');
    }
  }

  private evictAged(): void {
    const cutoff = this.opts.clock.now() - this.opts.maxAgeS! * 1000;
    const minCursor = this.minCursor();
    this.undoLedgerOnRollback(() => this.db!.transaction(() => {
      for (;;) {
        const batch = this.stmts.aged.all(cutoff, minCursor, this.inFlightFloor()) as EvictRow[];
        if (batch.length === 0) return;
        for (const row of batch) this.dropRow(row, minCursor, 'evicted_max_age');
      }
    })());
    this.db!.transaction(() => this.persistLedger())();
  }

  /** Evictions and their ledger entry commit together: a kill -9 in between cannot hide a loss. */
  private persistLedger(): void {
    const upsert = this.stmts.upsertEvicted;
    // Keyed by drain generation: entries already drained into not-yet-committed gap records keep their own rows.
    for (const [reason, entry] of this.ledger.serialize()) upsert.run(`${reason}#${this.ledgerGeneration}`, entry);
  }

  /** Turns the ledger into gap records; the ledger rows go in the same commit as those records. */
  private reportEvictions(): void {
    if (this.ledger.empty || !this.opts.reportGap || !this.db) return;
    for (const gap of this.ledger.drain()) {
      this.opts.logger.warn({ reason: gap.reason, count: gap.count, bytes: gap.bytes, firstSeq: gap.firstSeq, lastSeq: gap.lastSeq }, 'journal evicted records; a gap record lists them');
      this.opts.reportGap(gap);
    }
    this.clearLedgerOnCommit = true;
    this.ledgerGeneration++;
    try {
      this.flush();
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
    const db = this.db!;
    this.flush();
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.close();
    this.db = this.open(this.opts.path);
    this.opts.logger.error({ path: `${this.opts.path}-wal` }, 'journal WAL file was deleted while running; its contents were checkpointed into the database and a new WAL started');
    this.opts.reportGap?.({ reason: 'journal_wal_deleted', source: 'sluice:journal', firstTime: this.opts.clock.now(), lastTime: this.opts.clock.now(), count: 0, bytes: 0, detail: 'alarm: the WAL was deleted by something else while sluice ran; checkpointed before reopening, nothing lost' });
  }

  registerSinks(names: readonly string[]): void {
    const db = this.requireDb();
    const wanted = new Set(names);
    const deletedThrough = this.deletedThrough();
    db.transaction(() => {
      for (const [sink] of this.cursors) {
        if (!wanted.has(sink)) {
          this.stmts.deleteCursor.run(sink);
          this.cursors.delete(sink);
          this.opts.logger.warn({ sink }, 'journal: forgot the cursor of a sink no longer configured');
        }
      }
      for (const sink of wanted) {
        if (!this.cursors.has(sink)) {
          // A new sink gets everything still journaled.
          this.stmts.setCursor.run(sink, deletedThrough);
          this.cursors.set(sink, deletedThrough);
        }
      }
    })();
    this.deleteConfirmed();
  }

  cursor(sink: string): number {
    const c = this.cursors.get(sink);
    if (c === undefined) throw new SluiceError('SLUICE_JOURNAL_CLOSED', `no cursor for sink ${sink}`);
    return c;
  }

  read(afterSeq: number, maxRecords: number, maxBytes: number): JournalRecord[] {
    this.requireDb();
    const start = (this.stmts.findStart.get(afterSeq + 1) as number | undefined) ?? 0;
    const out: JournalRecord[] = [];
    let bytes = 0;
    const bad: Row[] = [];
    // Rows hold up to commitMaxRecords each; fetch one at a time so no blob is read in vain.
    for (const row of this.stmts.readFrom.iterate(start) as IterableIterator<Row>) {
      if (row.last_seq <= afterSeq) continue;
      const records = this.decodeRow(row);
      if (!records) {
        bad.push(row);
        continue;
      }
      let full = false;
      for (const rec of records) {
        if (rec.seq <= afterSeq) continue;
        if (out.length >= maxRecords || (out.length > 0 && bytes + rec.payload.length > maxBytes)) {
          full = true;
          break;
        }
        out.push(rec);
        bytes += rec.payload.length;
      }
      if (full) break;
    }
    for (const row of bad) this.dropCorruptRow(row);
    return out;
  }

  /** The row's records, or null when its bytes fail their checksum or do not decode. */
  private decodeRow(row: Row): JournalRecord[] | null {
    if (row.crc !== null && crc32(row.data) !== row.crc) return null;
    try {
      return decodeRecords(row.data, row.first_seq, row.count);
    } catch {
      return null;
    }
  }

  /** A damaged row cannot be shipped; it must not stop the sink either. Remove it and say exactly what was lost. */
  private dropCorruptRow(row: Row): void {
    this.stmts.deleteRow.run(row.first_seq);
    this.stored.records -= row.count;
    this.stored.bytes -= row.bytes;
    this.opts.logger.error({ firstSeq: row.first_seq, lastSeq: row.last_seq, count: row.count }, 'journal row failed its checksum: its records cannot be read; a gap record names them');
    this.opts.reportGap?.({ reason: 'journal_row_corrupt', source: 'sluice:journal', firstSeq: row.first_seq, lastSeq: row.last_seq, firstTime: row.min_time, lastTime: row.max_time, count: row.count, bytes: row.bytes, detail: 'stored bytes damaged (checksum mismatch or undecodable); records in this seq range are lost' });
  }

  ack(sink: string, seq: number): void {
    const db = this.requireDb();
    const current = this.cursor(sink);
    if (seq <= current) return;
    db.transaction(() => {
      this.stmts.setCursor.run(sink, seq);
      this.cursors.set(sink, seq);
      this.deleteConfirmed();
    })();
    if (this.fullReason !== null) this.checkBounds();
  }

  private deleteConfirmed(): void {
    if (this.cursors.size === 0) return;
    const through = Math.min(...this.cursors.values());
    if (through <= 0) return;
    for (const r of this.stmts.deleteThrough.all(through) as { count: number; bytes: number }[]) {
      this.stored.records -= r.count;
      this.stored.bytes -= r.bytes;
    }
    this.stmts.setMeta.run('next_seq', through + 1);
  }

  stats(): JournalStats {
    const db = this.requireDb();
    const minCursor = this.minCursor();
    const pages = db.pragma('page_count', { simple: true }) as number;
    const free = db.pragma('freelist_count', { simple: true }) as number;
    // Rows are contiguous seq runs; the one holding the slowest cursor is partly confirmed.
    const straddle = this.stmts.findStart.get(minCursor) as number | undefined;
    const straddleRow = straddle === undefined ? undefined : (this.stmts.rowEnd.get(straddle) as number);
    const confirmedInRow = straddle !== undefined && straddleRow !== undefined && straddleRow > minCursor ? minCursor - straddle + 1 : 0;
    return {
      backlogRecords: Math.max(0, this.stored.records - confirmedInRow + this.pending.length),
      storedBytes: this.stored.bytes,
      oldestTime: (this.stmts.oldest.get() as number | null | undefined) ?? null,
      committedSeq: this.committed,
      usedBytes: (pages - free) * this.pageSize,
      commits: this.commitCount,
      full: this.fullReason ?? (this.failing && this.pendingOver(1) ? 'commit_failing' : null),
    };
  }

  private requireDb(): Database.Database {
    if (!this.db) throw new SluiceError('SLUICE_JOURNAL_CLOSED', 'journal is not open');
    return this.db;
  }

  private clearTimers(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.timer = null;
    this.immediate = null;
  }
}
