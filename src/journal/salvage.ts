import { crc32 } from 'node:zlib';
import Database from 'better-sqlite3';
import type { Journal, JournalRecord } from './journal.js';
import { decodeRecords } from './record-codec.js';

export interface SalvageReport {
  rowsRead: number;
  rowsLost: number;
  /** Records appended to the live journal (not yet confirmed by every sink in the damaged file). */
  recovered: number;
  /** Records the damaged file says every sink had already confirmed: not copied. */
  alreadyShipped: number;
  problems: string[];
}

type Row = { first_seq: number; last_seq: number; count: number; data: Buffer; crc: number | null };

/**
 * Copies what is still readable from a set-aside journal into the live one, row by row: a
 * damaged stretch of the b-tree is stepped over by probing further keys, a row whose checksum
 * fails is skipped and counted. Recovered records get new seqs; their old seq travels in the
 * `sluice.salvaged_seq` header.
 */
export async function salvageInto(damagedPath: string, live: Journal): Promise<SalvageReport> {
  const report: SalvageReport = { rowsRead: 0, rowsLost: 0, recovered: 0, alreadyShipped: 0, problems: [] };
  const db = new Database(damagedPath, { readonly: true, fileMustExist: true });
  // A truncated file has fewer pages than its header says; SQLite then refuses to read any of it
  // ("malformed"), unless writable_schema is on, which needs defensive mode off. The connection is
  // read-only, so neither can change the file; with them the pages that remain can be read.
  db.unsafeMode(true);
  db.pragma('writable_schema = ON');
  try {
    let confirmed = 0;
    try {
      confirmed = (db.prepare('SELECT min(seq) FROM cursors').pluck().get() as number | null) ?? 0;
    } catch (err) {
      report.problems.push(`cursors unreadable (${(err as Error).message}); copying every readable record`);
    }
    let maxKey = Number.MAX_SAFE_INTEGER;
    try {
      maxKey = (db.prepare('SELECT max(first_seq) FROM batches').pluck().get() as number | null) ?? 0;
    } catch {
      /* probe blindly */
    }
    const next = db.prepare('SELECT first_seq, last_seq, count, data, crc FROM batches WHERE first_seq > ? ORDER BY first_seq LIMIT 1');
    let after = 0;
    let probe = 1;
    while (after < maxKey) {
      let row: Row | undefined;
      try {
        row = next.get(after) as Row | undefined;
        probe = 1;
      } catch (err) {
        // A damaged page: step over it, further each time, until rows read again.
        if (probe === 1) report.problems.push(`damaged stretch after seq ${after}: ${(err as Error).message}`);
        after += probe;
        probe *= 2;
        if (probe > 2 ** 40) break;
        continue;
      }
      if (!row) break;
      after = row.first_seq;
      report.rowsRead++;
      let records: JournalRecord[] | null = null;
      if (row.crc === null || crc32(row.data) === row.crc) {
        try {
          records = decodeRecords(row.data, row.first_seq, row.count);
        } catch {
          records = null;
        }
      }
      if (!records) {
        report.rowsLost++;
        report.problems.push(`row ${row.first_seq}-${row.last_seq}: damaged, ${row.count} records lost`);
        continue;
      }
      for (const r of records) {
        if (r.seq <= confirmed) {
          report.alreadyShipped++;
          continue;
        }
        live.append({ time: r.time, source: r.source, topic: r.topic, key: r.key, payload: r.payload, headers: { ...(r.headers ?? {}), 'sluice.salvaged_seq': String(r.seq) } });
        report.recovered++;
      }
      live.flush();
    }
  } finally {
    db.close();
  }
  return report;
}
