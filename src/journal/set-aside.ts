import { existsSync, renameSync } from 'node:fs';
import Database from 'better-sqlite3';

/** What a damaged journal held, as far as it could still be read. */
export interface SetAsideReport {
  /** The new name of the database file. */
  path: string;
  /** Files moved (database, WAL, shared memory). */
  files: string[];
  /** Highest seq the damaged file had handed out, if readable: the new journal continues above it. */
  lastSeq: number | null;
  /** Records it still held that not every sink had confirmed, if readable. */
  unshippedRecords: number | null;
}

/**
 * Moves a journal that cannot be used out of the way (with its WAL and shared-memory files),
 * named with a timestamp, after reading whatever it still tells about its seqs. The file is kept
 * so `sluice journal salvage` can recover what is readable.
 */
export function setAside(path: string, now: Date): SetAsideReport {
  const probe = probe_(path);
  const stamp = now.toISOString().replace(/[:.]/g, '-');
  const target = `${path}.corrupt-${stamp}`;
  const files: string[] = [];
  for (const suffix of ['', '-wal', '-shm']) {
    if (!existsSync(path + suffix)) continue;
    renameSync(path + suffix, target + suffix);
    files.push(target + suffix);
  }
  return { path: target, files, ...probe };
}

/** Best effort: a damaged file may still answer these small queries. */
function probe_(path: string): { lastSeq: number | null; unshippedRecords: number | null } {
  let db: Database.Database | null = null;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
    const next = db.prepare("SELECT v FROM meta WHERE k = 'next_seq'").pluck().get() as number | undefined;
    const maxLast = db.prepare('SELECT max(last_seq) FROM batches').pluck().get() as number | null;
    const lastSeq = Math.max((next ?? 1) - 1, maxLast ?? 0);
    let unshipped: number | null = null;
    try {
      const minCursor = db.prepare('SELECT min(seq) FROM cursors').pluck().get() as number | null;
      // Rows hold contiguous seq runs; the one holding the slowest cursor counts only its part above it.
      const after = minCursor ?? 0;
      unshipped = db.prepare('SELECT coalesce(sum(last_seq - max(first_seq, ? + 1) + 1), 0) FROM batches WHERE last_seq > ?').pluck().get(after, after) as number;
    } catch {
      unshipped = null;
    }
    return { lastSeq, unshippedRecords: unshipped };
  } catch {
    return { lastSeq: null, unshippedRecords: null };
  } finally {
    try {
      db?.close();
    } catch {
      /* already unusable */
    }
  }
}
