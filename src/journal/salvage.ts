import { DamagedJournalReader } from './damaged-reader.js';
import type { Journal } from './journal.js';
import { decodeRow } from './store.js';

export interface SalvageReport {
  rowsRead: number;
  rowsLost: number;
  /** Records appended to the live journal (not yet confirmed by every sink in the damaged file). */
  recovered: number;
  /** Records the damaged file says every sink had already confirmed: not copied. */
  alreadyShipped: number;
  problems: string[];
}

/**
 * `sluice journal salvage`: copies what is still readable from a set-aside journal into the live
 * one, row by row; a row whose checksum fails is skipped and counted. Recovered records get new
 * seqs; their old seq travels in the `sluice.salvaged_seq` header. (A journal set aside at start
 * is salvaged by the journal itself, keeping its seqs: see auto-salvage.ts.)
 */
export async function salvageInto(damagedPath: string, live: Journal): Promise<SalvageReport> {
  const report: SalvageReport = { rowsRead: 0, rowsLost: 0, recovered: 0, alreadyShipped: 0, problems: [] };
  const reader = new DamagedJournalReader(damagedPath);
  try {
    const confirmed = reader.minCursor() ?? 0;
    for (const row of reader.rows()) {
      report.rowsRead++;
      const records = decodeRow(row);
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
    report.problems.unshift(...reader.problems.filter((p) => !report.problems.includes(p)));
    reader.close();
  }
  return report;
}
