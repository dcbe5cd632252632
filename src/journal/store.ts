import { crc32 } from 'node:zlib';
import Database from 'better-sqlite3';
import { SluiceError } from '../errors.js';
import { APPLICATION_ID, inspectHeader, SCHEMA_VERSION } from './header.js';
import type { JournalRecord, NewRecord } from './journal.js';
import { decodeRecords, encodeRecords } from './record-codec.js';
import type { RecordClass } from './retention.js';

/** A stored row: one run of records with the same eviction class. */
export type StoredRow = { first_seq: number; last_seq: number; count: number; bytes: number; min_time: number; max_time: number; data: Buffer; crc: number | null };
/** A row as eviction sees it. */
export type EvictRow = { first_seq: number; last_seq: number; count: number; bytes: number; data: Buffer };

/** A clock epoch as stored (see clock-epochs.ts). */
export type EpochRow = { id: number; first_seq: number; boot_id: string; offset_ms: number; synced: number };

/** Pages of the database file: what bounds are measured in. */
export interface PageUsage {
  pageSize: number;
  /** Pages holding data. */
  used: number;
  /** Pages in the freelist: room inside the file the journal can reuse without the filesystem. */
  free: number;
}

export const EVICT_CHUNK = 16;

/** SQLite's page cache for the journal's connection, in KiB. */
const PAGE_CACHE_KIB = 2048;

/** True for errors that mean the filesystem (or SQLite's view of it) has no room. */
export function isDiskFull(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'SQLITE_FULL' || code === 'SQLITE_IOERR_WRITE' || code === 'ENOSPC';
}

/**
 * The journal's SQLite file: schema, statements, rows, cursors, totals. It holds no policy:
 * when to commit is the commit queue's business, what to evict the space keeper's. It calls
 * nothing but SQLite.
 */
export class JournalStore {
  private handle: Database.Database | null = null;
  private stmts!: ReturnType<JournalStore['prepareStatements']>;
  /** Records and payload bytes in the batches table (all sinks, confirmed rows excluded). */
  readonly stored = { records: 0, bytes: 0 };
  /** Per sink, the cursor: persisted in `cursors`, or (on a full disk) waiting to be. */
  readonly cursors = new Map<string, number>();
  /** Cursors moved in memory whose row could not be written yet (the disk was full). */
  private readonly unsavedCursors = new Set<string>();
  /** Highest seq in the file when it was opened (rows or the deleted-through mark). */
  lastSeqOnOpen = 0;
  /** Where a sink new to this file starts, when a salvage could not tell (default: what every sink confirmed). */
  newSinkCursor: number | null = null;
  private pageSizeBytes = 4096;

  constructor(private readonly opts: { path: string; durability: 'power' | 'crash' }) {}

  get open(): boolean {
    return this.handle !== null;
  }

  get db(): Database.Database {
    if (!this.handle) throw new SluiceError('SLUICE_JOURNAL_CLOSED', 'journal is not open');
    return this.handle;
  }

  /**
   * Opens (or creates) the file. Throws SLUICE_JOURNAL_CORRUPT for a file that is ours but damaged
   * (`cause.foreign` is true when it is not ours at all).
   */
  openFile(): void {
    const { path } = this.opts;
    let db: Database.Database;
    try {
      db = new Database(path);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'SQLITE_CANTOPEN') throw new SluiceError('SLUICE_JOURNAL_OPEN', `cannot open journal ${path}: ${(err as Error).message}`, { cause: err });
      throw new SluiceError('SLUICE_JOURNAL_CORRUPT', `journal ${path} cannot be opened: ${(err as Error).message}`, { cause: err });
    }
    try {
      this.prepare(db);
    } catch (err) {
      db.close();
      if (err instanceof SluiceError) throw err;
      throw new SluiceError('SLUICE_JOURNAL_CORRUPT', `journal ${path} is not a readable sluice journal: ${(err as Error).message}`, { cause: err });
    }
    this.handle = db;
  }

  private prepare(db: Database.Database): void {
    // better-sqlite3 builds SQLite with a 16 MiB page cache per connection. The journal appends and
    // reads each row once, so a large cache holds nothing worth keeping, and the start-up
    // quick_check (every page of the file) filled it: ~15 MB of malloc'd memory the process kept
    // for good. 2 MiB still holds every interior b-tree page of a multi-GB file.
    db.pragma(`cache_size = -${PAGE_CACHE_KIB}`);
    const header = inspectHeader(db);
    if (header.kind === 'foreign') {
      throw new SluiceError('SLUICE_JOURNAL_CORRUPT', `${this.opts.path} is ${header.problem}`, { cause: { foreign: true } });
    }
    if (header.kind === 'damaged') {
      // Ours (it has sluice's tables), so refusing it would only be a crash loop: set it aside.
      throw new SluiceError('SLUICE_JOURNAL_CORRUPT', `journal ${this.opts.path} has ${header.problem}`, { cause: { ours: true } });
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
      }
      // Version 3 added clock_epochs (created below); rows journaled before it have no epoch and ship "unsynced".
      if (header.version < SCHEMA_VERSION) db.pragma(`user_version = ${SCHEMA_VERSION}`);
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
      CREATE TABLE IF NOT EXISTS salvage (path TEXT PRIMARY KEY, state TEXT NOT NULL) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS clock_epochs (id INTEGER PRIMARY KEY, first_seq INTEGER NOT NULL, boot_id TEXT NOT NULL, offset_ms REAL NOT NULL, synced INTEGER NOT NULL);
    `);
    this.pageSizeBytes = db.pragma('page_size', { simple: true }) as number;
    this.stmts = this.prepareStatements(db);
    this.handle = db;
    this.reloadState();
  }

  /** Totals, cursors and the seq high-water mark, read from the file. */
  reloadState(): void {
    const db = this.db;
    const totals = db.prepare('SELECT coalesce(sum(count), 0) AS records, coalesce(sum(bytes), 0) AS bytes FROM batches').get() as { records: number; bytes: number };
    this.stored.records = totals.records;
    this.stored.bytes = totals.bytes;
    // The counter survives the table draining: meta.next_seq is raised whenever rows are deleted.
    const metaNext = (this.stmts.nextSeq.get() as number | undefined) ?? 1;
    const maxLast = (db.prepare('SELECT max(last_seq) FROM batches').pluck().get() as number | null) ?? 0;
    this.lastSeqOnOpen = Math.max(metaNext - 1, maxLast);
    this.cursors.clear();
    for (const row of db.prepare('SELECT sink, seq FROM cursors').all() as { sink: string; seq: number }[]) this.cursors.set(row.sink, row.seq);
  }

  private prepareStatements(db: Database.Database) {
    return {
      insert: db.prepare('INSERT INTO batches (first_seq, last_seq, count, bytes, min_time, max_time, data, priority, evictable, crc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)'),
      insertIgnore: db.prepare('INSERT OR IGNORE INTO batches (first_seq, last_seq, count, bytes, min_time, max_time, data, priority, evictable, crc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)'),
      findStart: db.prepare('SELECT first_seq FROM batches WHERE first_seq <= ? ORDER BY first_seq DESC LIMIT 1').pluck(),
      readFrom: db.prepare('SELECT first_seq, last_seq, count, bytes, min_time, max_time, data, crc FROM batches WHERE first_seq >= ? ORDER BY first_seq'),
      setCursor: db.prepare('INSERT INTO cursors (sink, seq) VALUES (?, ?) ON CONFLICT (sink) DO UPDATE SET seq = excluded.seq'),
      deleteThrough: db.prepare('DELETE FROM batches WHERE last_seq <= ? RETURNING count, bytes'),
      setMeta: db.prepare('INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = max(v, excluded.v)'),
      oldest: db.prepare('SELECT min(min_time) FROM batches').pluck(),
      evictable: db.prepare(`SELECT first_seq, last_seq, count, bytes, data FROM batches WHERE evictable = 1 AND last_seq > ? AND first_seq > ? ORDER BY priority, first_seq LIMIT ${EVICT_CHUNK}`),
      aged: db.prepare(`SELECT first_seq, last_seq, count, bytes, data FROM batches WHERE priority < ? AND max_time < ? AND last_seq > ? AND first_seq > ? ORDER BY first_seq LIMIT ${EVICT_CHUNK}`),
      deleteRow: db.prepare('DELETE FROM batches WHERE first_seq = ?'),
      setSidecar: db.prepare('INSERT INTO sidecars (name, data) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET data = excluded.data'),
      getSidecar: db.prepare('SELECT data FROM sidecars WHERE name = ?').pluck(),
      nextSeq: db.prepare("SELECT v FROM meta WHERE k = 'next_seq'").pluck(),
      getMeta: db.prepare('SELECT v FROM meta WHERE k = ?').pluck(),
      rowEnd: db.prepare('SELECT last_seq FROM batches WHERE first_seq = ?').pluck(),
      upsertEvicted: db.prepare('INSERT INTO evicted (reason, entry) VALUES (?, ?) ON CONFLICT (reason) DO UPDATE SET entry = excluded.entry'),
      clearEvicted: db.prepare('DELETE FROM evicted'),
      allEvicted: db.prepare('SELECT reason, entry FROM evicted'),
      deleteCursor: db.prepare('DELETE FROM cursors WHERE sink = ?'),
      salvagePending: db.prepare("SELECT path FROM salvage WHERE state = 'pending'").pluck(),
      salvageDone: db.prepare("SELECT path FROM salvage WHERE state = 'done'").pluck(),
      epochs: db.prepare('SELECT id, first_seq, boot_id, offset_ms, synced FROM clock_epochs'),
      putEpoch: db.prepare('INSERT OR REPLACE INTO clock_epochs (id, first_seq, boot_id, offset_ms, synced) VALUES (?, ?, ?, ?, ?)'),
      deleteEpoch: db.prepare('DELETE FROM clock_epochs WHERE id = ?'),
      firstStored: db.prepare('SELECT min(first_seq) FROM batches').pluck(),
      // Prepared once: db.pragma() compiles a statement per call, and room is measured after every commit.
      pageCount: db.prepare('PRAGMA page_count').pluck(),
      freelistCount: db.prepare('PRAGMA freelist_count').pluck(),
      setSalvage: db.prepare('INSERT INTO salvage (path, state) VALUES (?, ?) ON CONFLICT (path) DO UPDATE SET state = excluded.state'),
    };
  }

  close(): void {
    this.handle?.close();
    this.handle = null;
  }

  get pageSize(): number {
    return this.pageSizeBytes;
  }

  pages(): PageUsage {
    const count = this.stmts.pageCount.get() as number;
    const free = this.stmts.freelistCount.get() as number;
    return { pageSize: this.pageSizeBytes, used: count - free, free };
  }

  /** Runs `fn` in one transaction. */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  /** Raises the seq counter's floor: seqs at or below `seq` are never handed out. */
  raiseNextSeq(next: number): void {
    this.stmts.setMeta.run('next_seq', next);
  }

  /** One row per run of records with the same class, so eviction can take whole rows. Call inside a transaction. */
  insertRuns(records: readonly NewRecord[], classes: readonly RecordClass[], firstSeq: number): { records: number; bytes: number } {
    let bytesTotal = 0;
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
    return { records: records.length, bytes: bytesTotal };
  }

  /** Counts rows a commit inserted, once the commit is durable. */
  addStored(inserted: { records: number; bytes: number }): void {
    this.stored.records += inserted.records;
    this.stored.bytes += inserted.bytes;
  }

  /** Copies a row from another journal as it is (salvage). Returns whether it was new. Inside a transaction. */
  copyRow(row: StoredRow & { priority: number; evictable: number }): boolean {
    const r = this.stmts.insertIgnore.run(row.first_seq, row.last_seq, row.count, row.bytes, row.min_time, row.max_time, row.data, row.priority, row.evictable, row.crc ?? crc32(row.data));
    return r.changes > 0;
  }

  /** Committed rows from `afterSeq` on; a damaged row is returned apart and removed. */
  read(afterSeq: number, maxRecords: number, maxBytes: number): { records: JournalRecord[]; corrupt: StoredRow[] } {
    const start = (this.stmts.findStart.get(afterSeq + 1) as number | undefined) ?? 0;
    const out: JournalRecord[] = [];
    let bytes = 0;
    const corrupt: StoredRow[] = [];
    // Rows hold up to commitMaxRecords each; fetch one at a time so no blob is read in vain.
    for (const row of this.stmts.readFrom.iterate(start) as IterableIterator<StoredRow>) {
      if (row.last_seq <= afterSeq) continue;
      const records = decodeRow(row);
      if (!records) {
        corrupt.push(row);
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
    for (const row of corrupt) this.deleteRow(row);
    return { records: out, corrupt };
  }

  deleteRow(row: { first_seq: number; count: number; bytes: number }): void {
    this.stmts.deleteRow.run(row.first_seq);
    this.stored.records -= row.count;
    this.stored.bytes -= row.bytes;
  }

  evictableRows(minCursor: number, inFlightFloor: number): EvictRow[] {
    return this.stmts.evictable.all(minCursor, inFlightFloor) as EvictRow[];
  }

  agedRows(belowPriority: number, cutoff: number, minCursor: number, inFlightFloor: number): EvictRow[] {
    return this.stmts.aged.all(belowPriority, cutoff, minCursor, inFlightFloor) as EvictRow[];
  }

  /** Every seq at or below this has been confirmed by all sinks and deleted. */
  deletedThrough(): number {
    return ((this.stmts.nextSeq.get() as number | undefined) ?? 1) - 1;
  }

  minCursor(): number {
    if (this.cursors.size) return Math.min(...this.cursors.values());
    return this.deletedThrough();
  }

  cursor(sink: string): number | undefined {
    return this.cursors.get(sink);
  }

  /**
   * Moves a cursor and deletes what every sink confirmed, in one transaction. The cursor moves in
   * memory even when the write fails (a full disk): the batch Kafka confirmed is not sent again;
   * `saveCursors` writes it later. Throws the write's error after moving it in memory.
   */
  ack(sink: string, seq: number): void {
    this.cursors.set(sink, seq);
    this.unsavedCursors.add(sink);
    this.saveCursors();
  }

  /** Writes cursors moved in memory only. Throws when the write fails (they stay unsaved). */
  saveCursors(): void {
    if (this.unsavedCursors.size === 0) return;
    const removed: { count: number; bytes: number }[] = [];
    this.transaction(() => {
      for (const sink of this.unsavedCursors) this.stmts.setCursor.run(sink, this.cursors.get(sink)!);
      removed.push(...this.deleteConfirmedRows());
    });
    this.unsavedCursors.clear();
    for (const r of removed) {
      this.stored.records -= r.count;
      this.stored.bytes -= r.bytes;
    }
  }

  get cursorsUnsaved(): boolean {
    return this.unsavedCursors.size > 0;
  }

  private deleteConfirmedRows(): { count: number; bytes: number }[] {
    if (this.cursors.size === 0) return [];
    const through = Math.min(...this.cursors.values());
    if (through <= 0) return [];
    const rows = this.stmts.deleteThrough.all(through) as { count: number; bytes: number }[];
    this.stmts.setMeta.run('next_seq', through + 1);
    return rows;
  }

  /** Makes sure the named sinks have cursors (a new one gets everything still journaled); forgets the others. Returns the forgotten names. */
  registerSinks(names: readonly string[]): string[] {
    const wanted = new Set(names);
    const deletedThrough = Math.min(this.deletedThrough(), this.newSinkCursor ?? Number.POSITIVE_INFINITY);
    const forgotten: string[] = [];
    const removed: { count: number; bytes: number }[] = [];
    this.transaction(() => {
      for (const [sink] of this.cursors) {
        if (!wanted.has(sink)) {
          this.stmts.deleteCursor.run(sink);
          this.cursors.delete(sink);
          this.unsavedCursors.delete(sink);
          forgotten.push(sink);
        }
      }
      for (const sink of wanted) {
        if (!this.cursors.has(sink)) {
          this.stmts.setCursor.run(sink, deletedThrough);
          this.cursors.set(sink, deletedThrough);
        }
      }
      removed.push(...this.deleteConfirmedRows());
    });
    for (const r of removed) {
      this.stored.records -= r.count;
      this.stored.bytes -= r.bytes;
    }
    return forgotten;
  }

  /** Sets a sink's cursor as written in another file (salvage); inside a transaction. */
  setCursorRow(sink: string, seq: number): void {
    this.stmts.setCursor.run(sink, seq);
    this.cursors.set(sink, seq);
  }

  oldestTime(): number | null {
    return (this.stmts.oldest.get() as number | null | undefined) ?? null;
  }

  /** Records of the row holding the slowest cursor that are already confirmed (they still count in `stored`). */
  confirmedInStraddlingRow(): number {
    const minCursor = this.minCursor();
    const straddle = this.stmts.findStart.get(minCursor) as number | undefined;
    if (straddle === undefined) return 0;
    const end = this.stmts.rowEnd.get(straddle) as number | undefined;
    return end !== undefined && end > minCursor ? minCursor - straddle + 1 : 0;
  }

  // --- eviction ledger rows (written with the evictions and with the gap records that report them) ---

  persistLedger(rows: Array<[string, string]>): void {
    for (const [reason, entry] of rows) this.stmts.upsertEvicted.run(reason, entry);
  }

  clearLedger(): void {
    this.stmts.clearEvicted.run();
  }

  ledgerRows(): { reason: string; entry: string }[] {
    return this.stmts.allEvicted.all() as { reason: string; entry: string }[];
  }

  // --- sidecars, salvage bookkeeping ---

  writeSidecar(name: string, data: Buffer): void {
    this.stmts.setSidecar.run(name, data);
  }

  readSidecar(name: string): Buffer | null {
    return (this.stmts.getSidecar.get(name) as Buffer | undefined) ?? null;
  }

  pendingSalvage(): string[] {
    return this.stmts.salvagePending.all() as string[];
  }

  /** `lastSeq`: the highest seq the set-aside file had committed, when known (kept for a salvage run again after a kill). */
  /** Salvages that committed: their set-aside files are to be gone. */
  doneSalvage(): string[] {
    return this.stmts.salvageDone.all() as string[];
  }

  setSalvageState(path: string, state: 'pending' | 'done' | 'kept', lastSeq: number | null = null): void {
    this.stmts.setSalvage.run(path, state);
    if (lastSeq !== null) this.stmts.setMeta.run(`salvage_last_seq ${path}`, lastSeq);
  }

  salvageLastSeq(path: string): number | null {
    return (this.stmts.getMeta.get(`salvage_last_seq ${path}`) as number | undefined) ?? null;
  }

  // --- clock epochs (written in the transaction of the commit whose records first use them) ---

  epochRows(): EpochRow[] {
    return this.stmts.epochs.all() as EpochRow[];
  }

  putEpoch(e: EpochRow): void {
    this.stmts.putEpoch.run(e.id, e.first_seq, e.boot_id, e.offset_ms, e.synced);
  }

  deleteEpoch(id: number): void {
    this.stmts.deleteEpoch.run(id);
  }

  /** The lowest seq still stored, or null when no row is. */
  firstStoredSeq(): number | null {
    return (this.stmts.firstStored.get() as number | null | undefined) ?? null;
  }

  /** Hands free pages back to the filesystem (auto_vacuum = INCREMENTAL). */
  releasePages(pages: number): void {
    this.db.pragma(`incremental_vacuum(${Math.max(0, Math.floor(pages))})`);
  }

  checkpoint(mode: 'PASSIVE' | 'TRUNCATE'): void {
    this.db.pragma(`wal_checkpoint(${mode})`);
  }
}

/** The row's records, or null when its bytes fail their checksum or do not decode. */
export function decodeRow(row: { first_seq: number; count: number; data: Buffer; crc: number | null }): JournalRecord[] | null {
  if (row.crc !== null && crc32(row.data) !== row.crc) return null;
  try {
    return decodeRecords(row.data, row.first_seq, row.count);
  } catch {
    return null;
  }
}
