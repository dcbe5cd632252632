import Database from 'better-sqlite3';

/** Reads a journal file beside the running daemon (WAL allows a concurrent reader). */
export function journalCounts(path: string): { rows: number; records: number } {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const r = db.prepare('SELECT count(*) AS rows, coalesce(sum(count), 0) AS records FROM batches').get() as { rows: number; records: number };
    return r;
  } finally {
    db.close();
  }
}
