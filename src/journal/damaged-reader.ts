import Database from 'better-sqlite3';

/** A row as read from a damaged journal; class columns default when the file predates them. */
export type DamagedRow = { first_seq: number; last_seq: number; count: number; bytes: number; min_time: number; max_time: number; data: Buffer; crc: number | null; priority: number; evictable: number };

/**
 * Reads what is still readable of a damaged journal, row by row in seq order: a damaged stretch
 * of the b-tree is stepped over by probing further keys (each such stretch is named in `problems`).
 * The connection is read-only: the file is never changed.
 */
export class DamagedJournalReader {
  private readonly db: Database.Database;
  readonly problems: string[] = [];

  constructor(path: string) {
    this.db = new Database(path, { readonly: true, fileMustExist: true });
    // A truncated file has fewer pages than its header says; SQLite then refuses to read any of it
    // ("malformed"), unless writable_schema is on, which needs defensive mode off. The connection is
    // read-only, so neither can change the file; with them the pages that remain can be read.
    this.db.unsafeMode(true);
    this.db.pragma('writable_schema = ON');
  }

  /** The cursors the damaged file holds, or null when unreadable. */
  cursors(): Map<string, number> | null {
    try {
      return new Map((this.db.prepare('SELECT sink, seq FROM cursors').all() as { sink: string; seq: number }[]).map((r) => [r.sink, r.seq]));
    } catch (err) {
      this.problems.push(`cursors unreadable (${(err as Error).message})`);
      return null;
    }
  }

  /** The highest seq the file handed out (counter or rows), or null when unreadable. */
  lastSeq(): number | null {
    try {
      const next = this.db.prepare("SELECT v FROM meta WHERE k = 'next_seq'").pluck().get() as number | undefined;
      const maxLast = this.db.prepare('SELECT max(last_seq) FROM batches').pluck().get() as number | null;
      return Math.max((next ?? 1) - 1, maxLast ?? 0);
    } catch {
      return null;
    }
  }

  /** Every seq at or below this was confirmed by all sinks and deleted (the counter the journal raises on deletes), or null. */
  deletedThrough(): number | null {
    try {
      return ((this.db.prepare("SELECT v FROM meta WHERE k = 'next_seq'").pluck().get() as number | undefined) ?? 1) - 1;
    } catch {
      return null;
    }
  }

  /** The clock epochs the damaged file holds (schema 3 on), oldest first; none when unreadable. */
  epochs(): { first_seq: number; boot_id: string; offset_ms: number; synced: number }[] {
    try {
      return this.db.prepare('SELECT first_seq, boot_id, offset_ms, synced FROM clock_epochs ORDER BY id').all() as { first_seq: number; boot_id: string; offset_ms: number; synced: number }[];
    } catch {
      return [];
    }
  }

  /** Every readable row of a table other components keep in the file (none when absent or unreadable). */
  tableRows(table: string): Record<string, unknown>[] {
    try {
      return this.db.prepare(`SELECT * FROM "${table.replaceAll('"', '""')}"`).all() as Record<string, unknown>[];
    } catch (err) {
      if (!/no such table/.test((err as Error).message)) this.problems.push(`${table} unreadable (${(err as Error).message})`);
      return [];
    }
  }

  /** The slowest cursor, or null when unreadable. */
  minCursor(): number | null {
    const c = this.cursors();
    if (c === null) return null;
    return c.size ? Math.min(...c.values()) : null;
  }

  *rows(): Generator<DamagedRow> {
    let maxKey = Number.MAX_SAFE_INTEGER;
    try {
      maxKey = (this.db.prepare('SELECT max(first_seq) FROM batches').pluck().get() as number | null) ?? 0;
    } catch {
      /* probe blindly */
    }
    // Keys alone first: finding the next row reads only leaf and interior pages, so a row whose own
    // data is damaged is lost alone and does not look like a damaged stretch of the tree.
    let nextKey: Database.Statement;
    let rowAt: Database.Statement;
    try {
      nextKey = this.db.prepare('SELECT first_seq FROM batches WHERE first_seq >= ? ORDER BY first_seq LIMIT 1').pluck();
    } catch (err) {
      this.problems.push(`no rows readable: ${(err as Error).message}`);
      return;
    }
    try {
      rowAt = this.db.prepare('SELECT first_seq, last_seq, count, bytes, min_time, max_time, data, crc, priority, evictable FROM batches WHERE first_seq = ?');
    } catch {
      try {
        // Schema version 1: no class columns, no checksum.
        rowAt = this.db.prepare('SELECT first_seq, last_seq, count, bytes, min_time, max_time, data, NULL AS crc, 0 AS priority, 0 AS evictable FROM batches WHERE first_seq = ?');
      } catch (err) {
        this.problems.push(`no rows readable: ${(err as Error).message}`);
        return;
      }
    }
    let from = 1;
    while (from <= maxKey) {
      let key: number | undefined;
      try {
        key = nextKey.get(from) as number | undefined;
      } catch (err) {
        this.problems.push(`damaged stretch from seq ${from}: ${(err as Error).message}`);
        const resume = stepOver(nextKey, from);
        if (resume === null) break;
        from = resume;
        continue;
      }
      if (key === undefined) break;
      from = key + 1;
      let row: DamagedRow | undefined;
      try {
        row = rowAt.get(key) as DamagedRow | undefined;
      } catch (err) {
        this.problems.push(`row ${key} unreadable: ${(err as Error).message}`);
        continue;
      }
      if (row) yield row;
    }
  }

  close(): void {
    this.db.close();
  }
}

/**
 * The first key at or after `bad` (whose seek hits a damaged page) from which a seek reads again,
 * or null. Leaps further each time to get past the damage fast, then searches back between the
 * last failing key and the first reading one: a leap alone would land inside the next intact page
 * and step over its first rows.
 */
function stepOver(next: Database.Statement, bad: number): number | null {
  const reads = (key: number): boolean => {
    try {
      next.get(key);
      return true;
    } catch {
      return false;
    }
  };
  let lo = bad;
  let hi = -1;
  for (let leap = 1; leap <= 2 ** 40; leap *= 2) {
    if (reads(bad + leap)) {
      hi = bad + leap;
      break;
    }
    lo = bad + leap;
  }
  if (hi < 0) return null;
  while (hi - lo > 1) {
    const mid: number = lo + Math.floor((hi - lo) / 2);
    if (reads(mid)) hi = mid;
    else lo = mid;
  }
  return hi;
}
