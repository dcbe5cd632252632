import { crc32 } from 'node:zlib';
import Database from 'better-sqlite3';
import { inspectHeader } from './header.js';
import { decodeRecords } from './record-codec.js';

/** What an offline look at a journal file found. */
export interface CheckReport {
  ok: boolean;
  problems: string[];
  rows: number;
  records: number;
  badRows: number;
  firstSeq: number | null;
  lastSeq: number | null;
  cursors: Record<string, number>;
}

/**
 * Checks a journal file without changing it: SQLite's quick_check, that it is a sluice journal,
 * and every row's checksum and encoding. Meant for a stopped daemon or a set-aside file.
 */
export function checkJournalFile(path: string): CheckReport {
  const report: CheckReport = { ok: false, problems: [], rows: 0, records: 0, badRows: 0, firstSeq: null, lastSeq: null, cursors: {} };
  let db: Database.Database;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
  } catch (err) {
    report.problems.push(`cannot open: ${(err as Error).message}`);
    return report;
  }
  try {
    try {
      const check = db.pragma('quick_check', { simple: true }) as string;
      if (check !== 'ok') report.problems.push(`quick_check: ${check}`);
      const header = inspectHeader(db);
      if (header.kind === 'foreign') {
        report.problems.push(header.problem);
        return report;
      }
      // A damaged header is reported; the rows are still read, to tell what salvage can recover.
      if (header.kind === 'damaged') report.problems.push(`header damaged: ${header.problem} (sluice sets such a file aside at start)`);
    } catch (err) {
      report.problems.push(`unreadable: ${(err as Error).message}`);
      return report;
    }
    try {
      for (const r of db.prepare('SELECT sink, seq FROM cursors').all() as { sink: string; seq: number }[]) report.cursors[r.sink] = r.seq;
      const stmt = db.prepare('SELECT first_seq, last_seq, count, data, crc FROM batches ORDER BY first_seq');
      for (const row of stmt.iterate() as IterableIterator<{ first_seq: number; last_seq: number; count: number; data: Buffer; crc: number | null }>) {
        report.rows++;
        report.firstSeq ??= row.first_seq;
        report.lastSeq = row.last_seq;
        let good = row.crc === null || crc32(row.data) === row.crc;
        if (good) {
          try {
            report.records += decodeRecords(row.data, row.first_seq, row.count).length;
          } catch {
            good = false;
          }
        }
        if (!good) {
          report.badRows++;
          report.problems.push(`row ${row.first_seq}-${row.last_seq}: checksum or encoding damaged (${row.count} records)`);
        }
      }
    } catch (err) {
      report.problems.push(`reading rows failed after ${report.rows} rows: ${(err as Error).message}`);
    }
  } finally {
    db.close();
  }
  report.ok = report.problems.length === 0;
  return report;
}
