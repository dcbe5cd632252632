import assert from 'node:assert/strict';
import { closeSync, copyFileSync, existsSync, openSync, readdirSync, statSync, truncateSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import type { GapReport } from '../../src/journal/gaps.js';
import type { NewRecord } from '../../src/journal/journal.js';
import { SqliteJournal } from '../../src/journal/sqlite-journal.js';
import type { JournalStore } from '../../src/journal/store.js';
import { batchesLayout, garblePages, seqsOf, type RowPages } from '../helpers/btree-pages.js';
import { tempDir } from '../helpers/tmp.js';

const tmp = tempDir();
after(() => tmp.cleanup());

function journal(path: string, gaps: GapReport[] = []): SqliteJournal {
  return new SqliteJournal({ path, durability: 'crash', commitDelayMs: 5, commitMaxRecords: 100, logger: pino({ level: 'silent' }), clock: { now: () => 1700000000000 }, reportGap: (g) => gaps.push(g), maintenanceIntervalMs: 3_600_000 });
}

const rec = (i: number): NewRecord => ({ time: 1700000000000 + i, source: 'mqtt:local', topic: `dev/d${i % 3}/reading`, key: `d${i % 3}`, payload: Buffer.from(`{"i":${i}}`), headers: null });

const storeOf = (j: SqliteJournal): JournalStore => (j as unknown as { store: JournalStore }).store;

/**
 * A journal of 3000 records in rows of 100, sink "k" at 500, stopped; its header then garbled so
 * the next start sets it aside (every row still readable).
 */
async function damagedJournal(name: string): Promise<string> {
  const path = join(tmp.path, `${name}.db`);
  const j = journal(path);
  await j.start();
  j.registerSinks(['k']);
  for (let i = 1; i <= 3000; i++) {
    j.append(rec(i));
    if (i % 100 === 0) j.flush();
  }
  j.ack('k', 500);
  await j.stop();
  const fd = openSync(path, 'r+');
  writeSync(fd, Buffer.from([0xde, 0xad, 0xbe, 0xef]), 0, 4, 68); // application_id
  closeSync(fd);
  return path;
}

const asideFiles = (name: string): string[] => readdirSync(tmp.path).filter((f) => f.startsWith(`${name}.db.corrupt-`));

function salvageRows(path: string): { path: string; state: string }[] {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare('SELECT path, state FROM salvage').all() as { path: string; state: string }[];
  } finally {
    db.close();
  }
}

/** Every seq the sink would still ship, in order. */
async function unshipped(path: string): Promise<number[]> {
  const j = journal(path);
  await j.start();
  j.registerSinks(['k']);
  try {
    return j.read(j.cursor('k'), 1e9, 1e12).map((r) => r.seq);
  } finally {
    await j.stop();
  }
}

const range = (a: number, b: number): number[] => Array.from({ length: b - a + 1 }, (_, i) => a + i);

test('kill -9 in the middle of the salvage: nothing of it is kept, it stays pending, and the next start salvages every row once', async () => {
  const path = await damagedJournal('midway');
  const gaps: GapReport[] = [];
  const j1 = journal(path, gaps);
  // The process dies after ten rows were copied, inside the salvage transaction.
  const store = storeOf(j1);
  const copyRow = store.copyRow.bind(store);
  let copied = 0;
  store.copyRow = (row) => {
    if (++copied > 10) throw new Error('simulated kill -9 mid-salvage');
    return copyRow(row);
  };
  await assert.rejects(j1.start(), /simulated kill/);
  store.close(); // what the kill leaves: the file as of its last commit

  const [aside] = asideFiles('midway');
  assert.ok(aside, 'the set-aside file is still there');
  assert.deepEqual(salvageRows(path), [{ path: join(tmp.path, aside), state: 'pending' }], 'the salvage is still to do');
  const check = new Database(path, { readonly: true });
  assert.equal(check.prepare('SELECT count(*) FROM batches').pluck().get(), 0, 'no copied row survived the kill');
  check.close();

  const again: GapReport[] = [];
  const j2 = journal(path, again);
  await j2.start();
  j2.registerSinks(['k']);
  assert.equal(j2.cursor('k'), 500, 'the sink keeps its old cursor');
  assert.deepEqual(j2.read(500, 1e9, 1e12).map((r) => r.seq), range(501, 3000), 'every unshipped record once, with its own seq, in order');
  assert.equal(j2.stats().backlogRecords, 2500);
  assert.ok(j2.append(rec(0)) > 3000);
  await j2.stop();
  assert.deepEqual(again.filter((g) => g.reason === 'journal_salvage_lost'), [], 'every row was readable: no loss reported');
  assert.deepEqual(asideFiles('midway'), [], 'the set-aside file is removed after the salvage committed');
  assert.deepEqual(salvageRows(path).map((r) => r.state), ['done']);
});

test('a salvage run twice on the same set-aside file (put back, marked pending again) adds no record twice', async () => {
  const path = await damagedJournal('twice');
  const j1 = journal(path);
  const store = storeOf(j1);
  // Keep a copy of the set-aside file as it was when the salvage read it.
  const copyRow = store.copyRow.bind(store);
  let kept: string | null = null;
  store.copyRow = (row) => {
    if (kept === null) {
      const [aside] = asideFiles('twice');
      kept = join(tmp.path, aside!);
      copyFileSync(kept, `${kept}.keep`);
    }
    return copyRow(row);
  };
  await j1.start();
  j1.registerSinks(['k']);
  // Ship a little after the salvage: the live journal moves on.
  j1.ack('k', 700);
  for (let i = 0; i < 50; i++) j1.append(rec(i));
  await j1.stop();
  assert.ok(kept);
  assert.ok(!existsSync(kept), 'removed after the first salvage');

  copyFileSync(`${kept}.keep`, kept);
  const db = new Database(path);
  db.prepare("UPDATE salvage SET state = 'pending'").run();
  db.close();
  const gaps: GapReport[] = [];
  const j2 = journal(path, gaps);
  await j2.start();
  j2.registerSinks(['k']);
  const seqs = j2.read(j2.cursor('k'), 1e9, 1e12).map((r) => r.seq);
  assert.equal(j2.cursor('k'), 700, 'the live cursor is kept, not the old file\'s');
  assert.deepEqual(seqs.slice(0, 2300), range(701, 3000));
  assert.equal(seqs.length, 2350, 'the 50 new records once, none of the old twice');
  assert.equal(new Set(seqs).size, seqs.length);
  assert.equal(j2.stats().backlogRecords, 2350);
  await j2.stop();
  assert.deepEqual(gaps.filter((g) => g.reason === 'journal_salvage_lost'), []);
  assert.ok(!existsSync(kept), 'removed again');
  assert.deepEqual(await unshipped(path), seqs, 'and it stays so across a restart');

  // A kill -9 after the salvage committed but before the file was removed: state done, file back.
  copyFileSync(`${kept}.keep`, kept);
  assert.deepEqual(await unshipped(path), seqs, 'not salvaged again');
  assert.ok(!existsSync(kept), 'the leftover file of a committed salvage is removed at the next start');
});

test('a truncated journal: every seq is salvaged or named lost exactly, up to its last commit (its mark), and seqs continue right above', async () => {
  for (const withMark of [true, false]) {
    const name = `trunc-${withMark}`;
    const path = join(tmp.path, `${name}.db`);
    const j = journal(path);
    await j.start();
    j.registerSinks(['k']);
    for (let i = 1; i <= 3000; i++) {
      j.append({ ...rec(i), payload: Buffer.alloc(200, i % 251) });
      if (i % 100 === 0) j.flush();
    }
    await j.stop();
    truncateSync(path, Math.floor(statSync(path).size / 2));
    if (!withMark) unlinkSync(`${path}-hwm`);
    const gaps: GapReport[] = [];
    const j2 = journal(path, gaps);
    await j2.start();
    j2.registerSinks(['k']);
    const back = j2.read(0, 1e9, 1e12).map((r) => r.seq);
    const lost = gaps.filter((g) => g.reason === 'journal_salvage_lost');
    const named = lost.flatMap((g) => g.ranges!.flatMap(([a, b]) => range(a, b)));
    assert.ok(back.length > 0 && back.length < 3000, `part of it was readable (${back.length})`);
    assert.equal(new Set([...back, ...named]).size, back.length + named.length, 'no seq both salvaged and named lost');
    if (withMark) {
      assert.equal(lost.length, 1, 'one gap record');
      assert.deepEqual([...back, ...named].sort((a, b) => a - b), range(1, 3000), 'every seq of the old journal is salvaged or named, none beyond');
      assert.equal(lost[0]!.count, named.length);
      assert.equal(j2.append(rec(0)), 3001, 'seqs continue above the mark, not above the clock');
    } else {
      // Without the mark nothing tells how far the old journal went: nothing beyond it is claimed.
      assert.ok(named.every((s) => s <= 3000), `named only seqs that existed: ${JSON.stringify(lost.map((g) => g.ranges))}`);
      assert.ok(j2.append(rec(0)) > 3000);
    }
    await j2.stop();
  }
});

test('B-tree pages garbled (a leaf, an overflow page, row data): every intact row is salvaged, also the first ones after the damage; every other seq is named once', async () => {
  const path = join(tmp.path, 'btree.db');
  const j = journal(path);
  await j.start();
  j.registerSinks(['k']);
  for (let i = 1; i <= 10000; i++) {
    j.append({ ...rec(i), payload: Buffer.alloc(200, i % 251) });
    if (i % 150 === 0) j.flush();
  }
  await j.stop();
  const layout = batchesLayout(path);
  assert.ok(layout.leaves.length >= 8, `enough leaves to hit the middle (${layout.leaves.length})`);
  const leafRows = (leaf: number): RowPages[] => layout.rows.filter((r) => r.leaf === leaf);
  const hitLeaf = layout.leaves[3]!;
  const hitChain = leafRows(layout.leaves[5]!)[2]!.overflow[1]!;
  const hitData = leafRows(layout.leaves[7]!)[4]!.overflow[2]!;
  // A broken chain close after the damaged leaf, an intact row between: a damaged row is not a damaged stretch of the tree.
  const hitNear = leafRows(layout.leaves[4]!)[1]!.overflow[1]!;
  garblePages(path, [hitLeaf, hitChain, hitNear], layout.pageSize);
  garblePages(path, [hitData], layout.pageSize, 4);
  const hit = new Set([hitLeaf, hitChain, hitData, hitNear]);
  const intact = layout.rows.filter((r) => !r.pages.some((p) => hit.has(p)));
  assert.equal(layout.rows.length - intact.length, leafRows(hitLeaf).length + 3);

  const gaps: GapReport[] = [];
  const j2 = journal(path, gaps);
  await j2.start();
  j2.registerSinks(['k']);
  assert.equal(gaps[0]?.reason, 'journal_set_aside', 'quick_check failed: set aside');
  const back = j2.read(0, 1e9, 1e12).map((r) => r.seq);
  const lost = gaps.filter((g) => g.reason === 'journal_salvage_lost');
  assert.equal(lost.length, 1, 'one gap record for what salvage could not read');
  const named = seqsOf(lost[0]!.ranges!);
  assert.deepEqual(back, intact.flatMap((r) => range(r.firstSeq, r.lastSeq)), 'exactly the intact rows came back, in order');
  assert.deepEqual([...back, ...named].sort((a, b) => a - b), range(1, 10000), 'every other seq is named lost, none twice, none that never existed');
  assert.equal(lost[0]!.count, named.length);
  assert.ok(j2.append(rec(0)) > 10000);
  await j2.stop();
  assert.deepEqual(asideFiles('btree'), []);
});

test('the root page of the rows garbled (not one row readable): every seq is named lost, and the set-aside file is kept for a person', async () => {
  const path = join(tmp.path, 'root.db');
  const j = journal(path);
  await j.start();
  j.registerSinks(['k']);
  for (let i = 1; i <= 3000; i++) {
    j.append({ ...rec(i), payload: Buffer.alloc(200, i % 251) });
    if (i % 150 === 0) j.flush();
  }
  await j.stop();
  const layout = batchesLayout(path);
  const root = layout.interior.find((p) => p.path === '/')!;
  garblePages(path, [root.page], layout.pageSize);
  const gaps: GapReport[] = [];
  const j2 = journal(path, gaps);
  await j2.start();
  const lost = gaps.filter((g) => g.reason === 'journal_salvage_lost');
  assert.deepEqual(lost.map((g) => g.ranges), [[[1, 3000]]]);
  assert.equal(j2.append(rec(0)), 3001);
  await j2.stop();
  assert.equal(asideFiles('root').filter((f) => !f.endsWith('-wal') && !f.endsWith('-shm')).length, 1, 'kept');
});
