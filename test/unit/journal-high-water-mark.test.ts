import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import type { GapReport } from '../../src/journal/gaps.js';
import { HighWaterMark, readMark } from '../../src/journal/high-water-mark.js';
import type { NewRecord } from '../../src/journal/journal.js';
import { SqliteJournal } from '../../src/journal/sqlite-journal.js';
import { tempDir } from '../helpers/tmp.js';

const tmp = tempDir();
after(() => tmp.cleanup());

function journal(path: string, gaps: GapReport[] = [], durability: 'power' | 'crash' = 'crash'): SqliteJournal {
  return new SqliteJournal({ path, durability, commitDelayMs: 5, commitMaxRecords: 1000, logger: pino({ level: 'silent' }), clock: { now: () => 1700000000000 }, reportGap: (g) => gaps.push(g), maintenanceIntervalMs: 3_600_000 });
}

const rec = (i: number): NewRecord => ({ time: 1700000000000 + i, source: 'mqtt:local', topic: `dev/d${i % 3}/reading`, key: null, payload: Buffer.from(`{"i":${i}}`), headers: null });

/** Appends `n` records in commits of `per`; returns the last seq. */
function fill(j: SqliteJournal, n: number, per = 10): number {
  let last = 0;
  for (let i = 0; i < n; i++) {
    last = j.append(rec(i));
    if ((i + 1) % per === 0) j.flush();
  }
  j.flush();
  return last;
}

const lostAtStart = (gaps: GapReport[]): GapReport[] => gaps.filter((g) => g.reason === 'journal_lost_at_start');
const allSeqs = (j: SqliteJournal): number[] => j.read(0, 1e9, 1e12).map((r) => r.seq);

/** Copies what a kill -9 at this moment leaves on disk (the files of the open journal), with or without its WAL. */
function snapshot(path: string, to: string, withWal: boolean): void {
  copyFileSync(path, to);
  copyFileSync(`${path}-hwm`, `${to}-hwm`);
  if (withWal) copyFileSync(`${path}-wal`, `${to}-wal`);
}

test('WAL lost while sluice was down: one gap record names exactly the seqs the file lacks, and seqs continue above the mark', async () => {
  const path = join(tmp.path, 'lost.db');
  const j1 = journal(path);
  await j1.start();
  j1.registerSinks(['k']);
  assert.equal(fill(j1, 50), 50);
  // Seqs 1-50 into the database file; 51-120 stay in the WAL only, as between checkpoints.
  const other = new Database(path);
  const [cp] = other.pragma('wal_checkpoint(TRUNCATE)') as { busy: number }[];
  other.close();
  assert.equal(cp!.busy, 0, 'checkpoint done');
  assert.equal(fill(j1, 70), 120);
  assert.equal(readMark(`${path}-hwm`), 120, 'the mark follows every commit');
  const copy = join(tmp.path, 'lost-copy.db');
  snapshot(path, copy, false);
  await j1.stop();

  const gaps: GapReport[] = [];
  const j2 = journal(copy, gaps);
  await j2.start();
  j2.registerSinks(['k']);
  assert.deepEqual(allSeqs(j2), Array.from({ length: 50 }, (_, i) => i + 1), 'the file holds 1-50');
  const lost = lostAtStart(gaps);
  assert.equal(lost.length, 1, JSON.stringify(gaps));
  assert.deepEqual({ firstSeq: lost[0]!.firstSeq, lastSeq: lost[0]!.lastSeq, ranges: lost[0]!.ranges, count: lost[0]!.count }, { firstSeq: 51, lastSeq: 120, ranges: [[51, 120]], count: 70 });
  assert.equal(gaps.length, 1, 'nothing else reported');
  assert.equal(j2.append(rec(0)), 121, 'no seq of the lost range is handed out again');
  j2.flush();
  await j2.stop();

  // The loss is reported once: the next start finds mark and file agreeing.
  const again: GapReport[] = [];
  const j3 = journal(copy, again);
  await j3.start();
  assert.deepEqual(lostAtStart(again), []);
  assert.equal(j3.append(rec(1)), 122);
  await j3.stop();
});

test('WAL deleted after a kill while the journal had drained: the gap still names the seqs, and seqs never go back', async () => {
  // Everything confirmed and deleted, then more committed to the WAL only: meta.next_seq in the file is behind too.
  const path = join(tmp.path, 'drained.db');
  const j1 = journal(path);
  await j1.start();
  j1.registerSinks(['k']);
  fill(j1, 30);
  j1.ack('k', 30);
  const other = new Database(path);
  other.pragma('wal_checkpoint(TRUNCATE)');
  other.close();
  fill(j1, 5);
  const copy = join(tmp.path, 'drained-copy.db');
  snapshot(path, copy, false);
  await j1.stop();
  const gaps: GapReport[] = [];
  const j2 = journal(copy, gaps);
  await j2.start();
  assert.deepEqual(lostAtStart(gaps).map((g) => g.ranges), [[[31, 35]]]);
  assert.equal(j2.append(rec(0)), 36);
  await j2.stop();
});

test('a kill -9 with the WAL kept loses nothing and reports nothing', async () => {
  const path = join(tmp.path, 'kept.db');
  const j1 = journal(path);
  await j1.start();
  j1.registerSinks(['k']);
  fill(j1, 80);
  const copy = join(tmp.path, 'kept-copy.db');
  snapshot(path, copy, true);
  await j1.stop();
  const gaps: GapReport[] = [];
  const j2 = journal(copy, gaps);
  await j2.start();
  j2.registerSinks(['k']);
  assert.equal(allSeqs(j2).length, 80);
  assert.deepEqual(gaps, []);
  assert.equal(j2.append(rec(0)), 81);
  await j2.stop();
});

test('a clean restart reports no loss; a journal without a mark (older sluice) reports none either', async () => {
  const path = join(tmp.path, 'clean.db');
  const gaps: GapReport[] = [];
  for (let run = 0; run < 3; run++) {
    const j = journal(path, gaps);
    await j.start();
    j.registerSinks(['k']);
    assert.equal(fill(j, 25), 25 * (run + 1));
    await j.stop();
    assert.equal(readMark(`${path}-hwm`), 25 * (run + 1));
  }
  unlinkSync(`${path}-hwm`);
  const j = journal(path, gaps);
  await j.start();
  assert.equal(j.append(rec(0)), 76);
  await j.stop();
  assert.deepEqual(gaps, []);
  assert.ok(existsSync(`${path}-hwm`), 'the mark is written again');
});

test('the mark file is one fixed-size line, overwritten in place', () => {
  const path = join(tmp.path, 'mark-only-hwm');
  const m = new HighWaterMark(path);
  m.write(7);
  m.write(123456789);
  m.write(5); // never goes back
  m.close();
  const text = readFileSync(path, 'latin1');
  assert.equal(text, `sluice-hwm 1 ${'123456789'.padStart(20, '0')}\n`);
  assert.equal(readMark(path), 123456789);
});

/** Bytes this process wrote: `wchar` by system calls, `write_bytes` pages it dirtied for the storage layer. */
function io(): { wchar: number; writeBytes: number } {
  const text = readFileSync('/proc/self/io', 'utf8');
  const get = (k: string): number => Number(new RegExp(`^${k}: (\\d+)$`, 'm').exec(text)![1]);
  return { wchar: get('wchar'), writeBytes: get('write_bytes') };
}

async function measure(withMark: boolean, commits: number): Promise<{ wchar: number; writeBytes: number }> {
  const path = join(tmp.path, `cost-${withMark}.db`);
  const j = journal(path, [], 'power');
  await j.start();
  j.registerSinks(['k']);
  // The mark's own part, switched off to compare (the journal otherwise the same).
  if (!withMark) (j as unknown as { mark: { write: (s: number) => void } }).mark.write = () => {};
  const before = io();
  for (let i = 0; i < commits; i++) {
    j.append(rec(i));
    j.flush();
  }
  const after = io();
  await j.stop();
  return { wchar: after.wchar - before.wchar, writeBytes: after.writeBytes - before.writeBytes };
}

test('cost of the mark: one 34-byte write per commit into the page cache, against the commit\'s own KiBs', async () => {
  const commits = 400;
  const without = await measure(false, commits);
  const withMark = await measure(true, commits);
  const perCommit = (withMark.wchar - without.wchar) / commits;
  console.log(
    `mark cost, ${commits} commits of 1 record, durability "power": journal alone ${without.wchar} B by write calls (${(without.wchar / commits).toFixed(0)} B/commit), ` +
      `${without.writeBytes} B of dirtied pages; with the mark ${withMark.wchar} B (+${perCommit.toFixed(1)} B/commit), ${withMark.writeBytes} B of dirtied pages ` +
      `(difference ${withMark.writeBytes - without.writeBytes} B, noise: the mark's one page stays dirty in the page cache and the kernel writes it back once per writeback interval, however many commits)`,
  );
  // The mark's line is 34 bytes; the commit's own writes are pages (a WAL frame is 4 KiB + 24).
  assert.ok(perCommit >= 34 && perCommit < 34 + 64, `mark adds ${perCommit} B per commit`);
  assert.ok(without.wchar / commits > 4096, 'a commit writes at least a page of its own');
});
