import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { SluiceError } from '../errors.js';
import type { Clock } from '../util/clock.js';
import type { Journal, JournalRecord, JournalStats, NewRecord } from './journal.js';
import { decodeRecords, encodeRecords } from './record-codec.js';

/** Settings of the SQLite journal; see `journal` in the config schema. */
export interface SqliteJournalOptions {
  path: string;
  durability: 'power' | 'crash';
  /** Longest a record waits for its group commit, ms. */
  commitDelayMs: number;
  /** Commit at once when this many records wait. */
  commitMaxRecords: number;
  logger: Logger;
  clock: Clock;
}

/** Marks the file as a sluice journal ("SLCE"), so a stranger's database is refused, not reused. */
const APPLICATION_ID = 0x534c4345;
const SCHEMA_VERSION = 1;
/** After this many failed commits in a row, the pending records stay queued and we keep trying on a timer. */
const RETRY_COMMIT_MS = 1000;

type Row = { first_seq: number; count: number; data: Buffer };

export class SqliteJournal implements Journal {
  readonly name = 'journal';
  private db: Database.Database | null = null;
  private pending: NewRecord[] = [];
  private nextSeq = 1;
  private committed = 0;
  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  private readonly listeners = new Set<(seq: number) => void>();
  private readonly cursors = new Map<string, number>();
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
  };

  constructor(private readonly opts: SqliteJournalOptions) {}

  async start(): Promise<void> {
    if (this.db) return;
    const { path, logger } = this.opts;
    mkdirSync(dirname(path), { recursive: true });
    let db: Database.Database;
    try {
      db = new Database(path);
    } catch (err) {
      throw new SluiceError('SLUICE_JOURNAL_OPEN', `cannot open journal ${path}: ${(err as Error).message}`, { cause: err });
    }
    try {
      this.prepare(db);
    } catch (err) {
      db.close();
      if (err instanceof SluiceError) throw err;
      throw new SluiceError('SLUICE_JOURNAL_CORRUPT', `journal ${path} is not a readable sluice journal: ${(err as Error).message}`, { cause: err });
    }
    this.db = db;
    const stats = this.stats();
    logger.info({ path, durability: this.opts.durability, backlog: stats.backlogRecords, nextSeq: this.nextSeq }, 'journal open');
  }

  private prepare(db: Database.Database): void {
    const appId = db.pragma('application_id', { simple: true }) as number;
    const tables = db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get() as { n: number };
    if (tables.n > 0 && appId !== APPLICATION_ID) {
      throw new SluiceError('SLUICE_JOURNAL_CORRUPT', `${this.opts.path} is a SQLite database but not a sluice journal; refusing to use it`);
    }
    if (tables.n === 0) {
      // auto_vacuum only takes effect before the first table exists.
      db.pragma('auto_vacuum = INCREMENTAL');
      db.pragma(`application_id = ${APPLICATION_ID}`);
      db.pragma(`user_version = ${SCHEMA_VERSION}`);
    } else {
      const check = db.pragma('quick_check', { simple: true }) as string;
      if (check !== 'ok') throw new SluiceError('SLUICE_JOURNAL_CORRUPT', `journal ${this.opts.path} failed SQLite's quick_check: ${check}`);
      const version = db.pragma('user_version', { simple: true }) as number;
      if (version !== SCHEMA_VERSION) throw new SluiceError('SLUICE_JOURNAL_CORRUPT', `journal ${this.opts.path} has schema version ${version}; this sluice knows ${SCHEMA_VERSION}`);
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
        data BLOB NOT NULL
      );
    `);
    this.stmts = {
      insert: db.prepare('INSERT INTO batches (first_seq, last_seq, count, bytes, min_time, max_time, data) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      findStart: db.prepare('SELECT first_seq FROM batches WHERE first_seq <= ? ORDER BY first_seq DESC LIMIT 1').pluck(),
      readFrom: db.prepare('SELECT first_seq, count, data FROM batches WHERE first_seq >= ? ORDER BY first_seq'),
      setCursor: db.prepare('INSERT INTO cursors (sink, seq) VALUES (?, ?) ON CONFLICT (sink) DO UPDATE SET seq = excluded.seq'),
      deleteThrough: db.prepare('DELETE FROM batches WHERE last_seq <= ?'),
      setMeta: db.prepare('INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = max(v, excluded.v)'),
      oldest: db.prepare('SELECT min_time FROM batches ORDER BY first_seq LIMIT 1').pluck(),
    };
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
    try {
      this.flush();
    } catch (err) {
      this.opts.logger.error({ err, pending: this.pending.length }, 'journal: final commit failed; unacknowledged records will be redelivered by their sources');
    }
    this.db.close();
    this.db = null;
    this.opts.logger.info('journal closed');
  }

  append(record: NewRecord): number {
    if (!this.db) throw new SluiceError('SLUICE_JOURNAL_CLOSED', 'journal is not open');
    this.pending.push(record);
    const seq = this.nextSeq++;
    if (this.pending.length >= this.opts.commitMaxRecords) {
      // Commit outside the caller's stack: listeners acknowledge upstream and must not re-enter the source.
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
      if (this.failing) this.opts.logger.info('journal: commits succeed again');
      this.failing = false;
    } catch (err) {
      if (!this.failing) this.opts.logger.error({ err }, 'journal: commit failed; holding acknowledgements and retrying');
      this.failing = true;
      this.timer ??= setTimeout(() => {
        this.timer = null;
        this.commitSafely();
      }, RETRY_COMMIT_MS);
    }
  }

  flush(): void {
    const db = this.requireDb();
    if (this.pending.length === 0) return;
    this.clearTimers();
    const records = this.pending;
    const firstSeq = this.nextSeq - records.length;
    const lastSeq = this.nextSeq - 1;
    let minTime = Infinity;
    let maxTime = -Infinity;
    let bytes = 0;
    for (const r of records) {
      if (r.time < minTime) minTime = r.time;
      if (r.time > maxTime) maxTime = r.time;
      bytes += r.payload.length;
    }
    const data = encodeRecords(records);
    try {
      this.stmts.insert.run(firstSeq, lastSeq, records.length, bytes, minTime, maxTime, data);
    } catch (err) {
      throw new SluiceError('SLUICE_JOURNAL_WRITE', `journal commit failed: ${(err as Error).message}`, { retriable: true, cause: err });
    }
    this.pending = [];
    this.committed = lastSeq;
    this.commitCount++;
    for (const l of this.listeners) {
      try {
        l(lastSeq);
      } catch (err) {
        this.opts.logger.error({ err }, 'journal: commit listener failed');
      }
    }
  }

  registerSinks(names: readonly string[]): void {
    const db = this.requireDb();
    const wanted = new Set(names);
    const deletedThrough = (db.prepare("SELECT v FROM meta WHERE k = 'next_seq'").pluck().get() as number | undefined ?? 1) - 1;
    db.transaction(() => {
      for (const [sink] of this.cursors) {
        if (!wanted.has(sink)) {
          db.prepare('DELETE FROM cursors WHERE sink = ?').run(sink);
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
    // Rows hold up to commitMaxRecords each; fetch one at a time so no blob is read in vain.
    for (const row of this.stmts.readFrom.iterate(start) as IterableIterator<Row>) {
      if (row.first_seq + row.count - 1 <= afterSeq) continue;
      for (const rec of decodeRecords(row.data, row.first_seq, row.count)) {
        if (rec.seq <= afterSeq) continue;
        if (out.length >= maxRecords || (out.length > 0 && bytes + rec.payload.length > maxBytes)) return out;
        out.push(rec);
        bytes += rec.payload.length;
      }
    }
    return out;
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
  }

  private deleteConfirmed(): void {
    if (this.cursors.size === 0) return;
    const through = Math.min(...this.cursors.values());
    if (through <= 0) return;
    this.stmts.deleteThrough.run(through);
    this.stmts.setMeta.run('next_seq', through + 1);
  }

  stats(): JournalStats {
    const db = this.requireDb();
    const minCursor = this.cursors.size ? Math.min(...this.cursors.values()) : ((db.prepare("SELECT v FROM meta WHERE k = 'next_seq'").pluck().get() as number | undefined) ?? 1) - 1;
    const pageSize = db.pragma('page_size', { simple: true }) as number;
    const pages = db.pragma('page_count', { simple: true }) as number;
    const free = db.pragma('freelist_count', { simple: true }) as number;
    return {
      backlogRecords: Math.max(0, this.nextSeq - 1 - minCursor),
      oldestTime: (this.stmts.oldest.get() as number | undefined) ?? null,
      committedSeq: this.committed,
      usedBytes: (pages - free) * pageSize,
      commits: this.commitCount,
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
