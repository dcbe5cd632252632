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

  /** The clock epochs the damaged file holds (schema 3 on), oldest first; none when unreadable. */
  epochs(): { first_seq: number; boot_id: string; offset_ms: number; synced: number }[] {
    try {
      return this.db.prepare('SELECT first_seq, boot_id, offset_ms, synced FROM clock_epochs ORDER BY id').all() as { first_seq: number; boot_id: string; offset_ms: number; synced: number }[];
    } catch {
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
    let next: Database.Statement;
    try {
      next = this.db.prepare('SELECT first_seq, last_seq, count, bytes, min_time, max_time, data, crc, priority, evictable FROM batches WHERE first_seq > ? ORDER BY first_seq LIMIT 1');
    } catch {
      try {
        // Schema version 1: no class columns, no checksum.
        next = this.db.prepare('SELECT first_seq, last_seq, count, bytes, min_time, max_time, data, NULL AS crc, 0 AS priority, 0 AS evictable FROM batches WHERE first_seq > ? ORDER BY first_seq LIMIT 1');
      } catch (err) {
        this.problems.push(`no rows readable: ${(err as Error).message}`);
        return;
      }
    }
    let after = 0;
    let probe = 1;
    while (after < maxKey) {
      let row: DamagedRow | undefined;
      try {
        row = next.get(after) as DamagedRow | undefined;
        probe = 1;
      } catch (err) {
        // A damaged page: step over it, further each time, until rows read again.
        if (probe === 1) this.problems.push(`damaged stretch after seq ${after}: ${(err as Error).message}`);
        after += probe;
        probe *= 2;
        if (probe > 2 ** 40) break;
        continue;
      }
      if (!row) break;
      after = row.first_seq;
      yield row;
    }
  }

  close(): void {
    this.db.close();
  }
}
