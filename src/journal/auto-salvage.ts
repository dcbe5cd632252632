import { existsSync, unlinkSync } from 'node:fs';
import { CARRIED_TABLES, DOWNLINK_TABLES } from './component-tables.js';
import { DamagedJournalReader } from './damaged-reader.js';
import { decodeRow, type JournalStore } from './store.js';

/** What salvaging a set-aside journal into the live one did. */
export interface AutoSalvageResult {
  /** Rows and records copied, with their own seqs. */
  rows: number;
  records: number;
  /** Seq ranges (inclusive) that were not yet shipped by every sink and could not be read. */
  lost: Array<[number, number]>;
  lostCount: number;
  /** Whether the damaged file's cursors were readable (else every readable record is copied). */
  cursorsKnown: boolean;
  problems: string[];
  /** Rows of components' own tables copied (CARRIED_TABLES). */
  carried?: number;
  /** Set-aside files removed after the salvage committed. */
  removed: string[];
}

/**
 * Copies every intact row of a set-aside journal above its old cursors into the live journal,
 * keeping each record's seq (the live journal continues above them, so none collides, order per
 * key holds, and each sink's old cursor says what it already shipped: salvage sends nothing
 * twice). One transaction, which also marks the salvage done: a kill -9 during it leaves it
 * pending and it runs again. The set-aside files go only after that commit.
 */
export function salvageSetAside(store: JournalStore, asidePath: string, lastSeq: number | null): AutoSalvageResult {
  const result: AutoSalvageResult = { rows: 0, records: 0, lost: [], lostCount: 0, cursorsKnown: false, problems: [], removed: [] };
  if (!existsSync(asidePath)) {
    result.problems.push(`${asidePath} is gone; nothing to salvage`);
    store.transaction(() => store.setSalvageState(asidePath, 'done'));
    return result;
  }
  let reader: DamagedJournalReader;
  try {
    reader = new DamagedJournalReader(asidePath);
  } catch (err) {
    // Nothing of it reads as a database: nothing to copy. The file is kept for a person to look at.
    result.problems.push(`${asidePath} cannot be read at all (${(err as Error).message}); kept as it is`);
    store.transaction(() => store.setSalvageState(asidePath, 'kept'));
    return result;
  }
  const recovered: Array<[number, number]> = [];
  let floor = 0;
  try {
    const cursors = reader.cursors();
    result.cursorsKnown = cursors !== null;
    // No cursor left (no sink configured then): rows at or below the deleted-through mark were shipped.
    floor = cursors && cursors.size ? Math.min(...cursors.values()) : (reader.deletedThrough() ?? 0);
    // Known from the set-aside probe or the mark; else the file may still say it.
    lastSeq ??= reader.lastSeq();
    store.transaction(() => {
      for (const row of reader.rows()) {
        if (row.last_seq <= floor) continue;
        if (!decodeRow(row)) {
          result.problems.push(`row ${row.first_seq}-${row.last_seq}: checksum or encoding damaged, ${row.count} records lost`);
          continue;
        }
        if (store.copyRow(row)) {
          result.rows++;
          result.records += row.last_seq - Math.max(row.first_seq, floor + 1) + 1;
        }
        recovered.push([row.first_seq, row.last_seq]);
      }
      for (const [sink, seq] of cursors ?? []) if (store.cursor(sink) === undefined) store.setCursorRow(sink, seq);
      // The copied rows keep their clock epochs, so their times are still corrected (or marked) as before.
      // An epoch beginning past the last copied row would date the live journal's own records: left out.
      const lastCopied = recovered.reduce((m, [, b]) => Math.max(m, b), 0);
      const nextId = store.epochRows().reduce((m, e) => Math.max(m, e.id), 0) + 1;
      reader.epochs().filter((e) => e.first_seq <= lastCopied).forEach((e, i) => store.putEpoch({ ...e, id: nextId + i }));
      // Components' own tables (the downlink's commands, their outcomes and packet ids in flight)
      // come along as readable: a command id known before is still known, none is delivered twice.
      store.db.exec(DOWNLINK_TABLES);
      for (const table of CARRIED_TABLES) {
        for (const row of reader.tableRows(table)) {
          const cols = Object.keys(row);
          try {
            store.db.prepare(`INSERT OR IGNORE INTO ${table} (${cols.map((c) => `"${c.replaceAll('"', '""')}"`).join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`).run(...cols.map((c) => row[c]));
            result.carried = (result.carried ?? 0) + 1;
          } catch (err) {
            // A row that does not fit the live table is left behind, named, and never stops the salvage.
            if (result.problems.length < 50) result.problems.push(`${table}: a row not carried over (${(err as Error).message})`);
          }
        }
      }
      // 'kept': not one row read, the file stays for a person; 'done': the file goes (again at the next start if a kill comes first).
      store.setSalvageState(asidePath, recovered.length ? 'done' : 'kept');
    });
    if (!result.cursorsKnown && recovered.length) store.newSinkCursor = recovered[0]![0] - 1;
  } finally {
    result.problems.unshift(...reader.problems);
    reader.close();
  }
  store.reloadState();
  // What lay above the old cursors and was not read back is lost: name it exactly.
  let next = floor + 1;
  for (const [a, b] of recovered.sort((x, y) => x[0] - y[0])) {
    if (a > next) result.lost.push([next, a - 1]);
    next = Math.max(next, b + 1);
  }
  // Past the last readable row, only the old file's last seq (or its mark) tells what existed.
  if (lastSeq === null) result.problems.push(`the damaged journal's last seq is unknown (no mark file): records after seq ${next - 1} may be lost unnamed`);
  else if (lastSeq >= next) result.lost.push([next, lastSeq]);
  if (!result.cursorsKnown) result.lost = result.lost.filter(([a]) => a > 1 || recovered.length === 0);
  result.lostCount = result.lost.reduce((s, [a, b]) => s + b - a + 1, 0);
  if (recovered.length === 0 && result.lostCount > 0) {
    // Not one row read back: keep the file for a person to look at.
    result.problems.push(`no intact row could be read; ${asidePath} is kept`);
    return result;
  }
  for (const suffix of ['', '-wal', '-shm']) {
    const f = asidePath + suffix;
    if (!existsSync(f)) continue;
    unlinkSync(f);
    result.removed.push(f);
  }
  return result;
}
