import { closeSync, openSync, writeSync } from 'node:fs';
import Database from 'better-sqlite3';
import type { JournalRecord } from '../../src/journal/journal.js';
import { decodeRow } from '../../src/journal/store.js';

/** A row of the batches table and every page reading it needs: interior pages above it, its leaf, its overflow chain. */
export interface RowPages {
  firstSeq: number;
  lastSeq: number;
  leaf: number;
  overflow: number[];
  pages: number[];
}

export interface BatchesLayout {
  pageSize: number;
  rows: RowPages[];
  interior: { page: number; path: string }[];
  leaves: number[];
}

/**
 * Where each row of a (sound, closed) journal's batches table lies, from SQLite's dbstat table:
 * the oracle for "which rows does garbling these pages leave intact", independent of sluice's reader.
 */
export function batchesLayout(path: string): BatchesLayout {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const pageSize = db.pragma('page_size', { simple: true }) as number;
    const pages = db.prepare("SELECT path, pageno, pagetype, ncell FROM dbstat WHERE name = 'batches' ORDER BY path").all() as { path: string; pageno: number; pagetype: string; ncell: number }[];
    const keys = db.prepare('SELECT first_seq, last_seq FROM batches ORDER BY first_seq').all() as { first_seq: number; last_seq: number }[];
    const interior = pages.filter((p) => p.pagetype === 'internal').map((p) => ({ page: p.pageno, path: p.path }));
    const rows: RowPages[] = [];
    const firstCell = new Map<string, number>();
    const leaves: number[] = [];
    // dbstat paths are fixed-width hex, so their order is the tree's: cells of the leaves in path order are the rows in key order.
    for (const leaf of pages.filter((p) => p.pagetype === 'leaf')) {
      firstCell.set(leaf.path, rows.length);
      leaves.push(leaf.pageno);
      const above = interior.filter((i) => leaf.path.startsWith(i.path) && leaf.path !== i.path).map((i) => i.page);
      for (let c = 0; c < leaf.ncell; c++) {
        const k = keys[rows.length]!;
        rows.push({ firstSeq: k.first_seq, lastSeq: k.last_seq, leaf: leaf.pageno, overflow: [], pages: [...above, leaf.pageno] });
      }
    }
    if (rows.length !== keys.length) throw new Error(`dbstat shows ${rows.length} cells, the table has ${keys.length} rows`);
    for (const p of pages.filter((x) => x.pagetype === 'overflow')) {
      // "/003/005+000002": the third overflow page of cell 5 of leaf "/003/".
      const m = /^(.*\/)([0-9a-f]+)\+[0-9a-f]+$/.exec(p.path)!;
      const row = rows[firstCell.get(m[1]!)! + parseInt(m[2]!, 16)]!;
      row.overflow.push(p.pageno);
      row.pages.push(p.pageno);
    }
    return { pageSize, rows, interior, leaves };
  } finally {
    db.close();
  }
}

/**
 * Overwrites pages with a fixed pattern (an invalid page type, so SQLite reports them malformed
 * rather than reading random cells). `keepHead`: bytes left as they are at the start of each page
 * (4 keeps an overflow page's next-page pointer: only row data is hit, the B-tree stays sound).
 */
export function garblePages(path: string, pages: number[], pageSize: number, keepHead = 0): void {
  const fd = openSync(path, 'r+');
  try {
    const junk = Buffer.alloc(pageSize - keepHead, 0x5a);
    for (const p of pages) writeSync(fd, junk, 0, junk.length, (p - 1) * pageSize + keepHead);
  } finally {
    closeSync(fd);
  }
}

/** Every record of a sound journal file (or a copy of one with its WAL: it is opened writable), by seq. */
export function journalRecords(path: string): Map<number, JournalRecord> {
  const db = new Database(path, { fileMustExist: true });
  try {
    const out = new Map<number, JournalRecord>();
    for (const row of db.prepare('SELECT first_seq, last_seq, count, bytes, min_time, max_time, data, crc FROM batches ORDER BY first_seq').iterate() as IterableIterator<{ first_seq: number; count: number; data: Buffer; crc: number | null }>) {
      const records = decodeRow(row);
      if (!records) throw new Error(`row ${row.first_seq} of ${path} does not decode`);
      for (const r of records) out.set(r.seq, r);
    }
    return out;
  } finally {
    db.close();
  }
}

/** Seqs of the inclusive ranges, in order. */
export function seqsOf(ranges: ReadonlyArray<readonly [number, number]>): number[] {
  const out: number[] = [];
  for (const [a, b] of ranges) for (let s = a; s <= b; s++) out.push(s);
  return out;
}
