import assert from 'node:assert/strict';
import { mkdirSync, closeSync, openSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, test } from 'node:test';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { journalCommand } from '../../src/cli/journal-commands.js';
import type { CliIo } from '../../src/cli/io.js';
import { checkJournalFile } from '../../src/journal/check.js';
import type { GapReport } from '../../src/journal/gaps.js';
import type { NewRecord } from '../../src/journal/journal.js';
import { SqliteJournal } from '../../src/journal/sqlite-journal.js';
import { JournalStore } from '../../src/journal/store.js';
import { SluiceError } from '../../src/errors.js';
import { tempDir } from '../helpers/tmp.js';

const tmp = tempDir();
after(() => tmp.cleanup());
let n = 0;

function journal(opts: Partial<{ path: string; commitDelayMs: number; commitMaxRecords: number; durability: 'power' | 'crash' }> = {}): SqliteJournal {
  return new SqliteJournal({
    path: opts.path ?? join(tmp.path, `j${n++}.db`),
    durability: opts.durability ?? 'crash',
    commitDelayMs: opts.commitDelayMs ?? 5,
    commitMaxRecords: opts.commitMaxRecords ?? 1000,
    logger: pino({ level: 'silent' }),
    clock: { now: () => 1700000000000 },
  });
}

const rec = (i: number, extra: Partial<NewRecord> = {}): NewRecord => ({
  time: 1700000000000 + i,
  source: 'mqtt:local',
  topic: `dev/d${i % 3}/reading`,
  key: null,
  payload: Buffer.from(`{"i":${i}}`),
  headers: null,
  ...extra,
});

const committed = (j: SqliteJournal, seq: number): Promise<void> =>
  new Promise((resolve) => {
    if (j.committedSeq >= seq) return resolve();
    const off = j.onCommit((s) => {
      if (s >= seq) {
        off();
        resolve();
      }
    });
  });

test('records round-trip with every field; seqs are assigned in order', async () => {
  const j = journal();
  await j.start();
  const a = j.append(rec(1, { key: 'k1', headers: { h: 'v' }, payload: Buffer.from([0, 255, 10, 13]) }));
  const b = j.append(rec(2, { topic: 'ünïcødé/topic' }));
  assert.deepEqual([a, b], [1, 2]);
  assert.deepEqual(j.read(0, 10, 1 << 20), [], 'nothing is readable before the commit');
  await committed(j, 2);
  const [r1, r2] = j.read(0, 10, 1 << 20);
  assert.deepEqual(r1, { seq: 1, time: 1700000000001, source: 'mqtt:local', topic: 'dev/d1/reading', key: 'k1', payload: Buffer.from([0, 255, 10, 13]), headers: { h: 'v' } });
  assert.equal(r2!.topic, 'ünïcødé/topic');
  assert.equal(r2!.key, null);
  await j.stop();
});

test('appends are group-committed: many records, one commit, bounded by the delay', async () => {
  const j = journal({ commitDelayMs: 20 });
  await j.start();
  let commits = 0;
  j.onCommit(() => commits++);
  for (let i = 0; i < 500; i++) j.append(rec(i));
  assert.equal(j.committedSeq, 0);
  await committed(j, 500);
  assert.equal(commits, 1);
  await j.stop();
});

test('a full group commits at once without waiting for the delay', async () => {
  const j = journal({ commitDelayMs: 1000, commitMaxRecords: 100 });
  await j.start();
  const t0 = Date.now();
  for (let i = 0; i < 100; i++) j.append(rec(i));
  await committed(j, 100);
  assert.ok(Date.now() - t0 < 900, 'committed on size, not on the 1 s delay');
  await j.stop();
});

test('4 MiB of waiting payload commits at once, whatever commit_max_records and the delay say (bounds a burst of large payloads)', async () => {
  const j = journal({ commitDelayMs: 600000, commitMaxRecords: 1000 });
  await j.start();
  const mib = Buffer.alloc(1024 * 1024, 1);
  for (let i = 0; i < 3; i++) j.append(rec(i, { payload: mib }));
  await new Promise(setImmediate);
  assert.equal(j.committedSeq, 0, 'under 4 MiB: waits for the delay');
  j.append(rec(3, { payload: mib }));
  // The commit is scheduled with setImmediate at the append; this one runs after it.
  await new Promise(setImmediate);
  assert.equal(j.committedSeq, 4);
  await j.stop();
});

test('seq is never reused: not after the journal drains, not after a restart', async () => {
  const path = join(tmp.path, 'reuse.db');
  const j = journal({ path });
  await j.start();
  j.registerSinks(['k']);
  for (let i = 0; i < 10; i++) j.append(rec(i));
  j.flush();
  j.ack('k', 10);
  assert.equal(j.stats().backlogRecords, 0);
  assert.deepEqual(j.read(0, 100, 1 << 20), []);
  await j.stop();
  const again = journal({ path });
  await again.start();
  again.registerSinks(['k']);
  assert.equal(again.append(rec(11)), 11);
  await again.stop();
});

test('each sink has its own cursor; rows go only when every sink confirmed them', async () => {
  const j = journal();
  await j.start();
  j.registerSinks(['a', 'b']);
  for (let i = 0; i < 30; i++) j.append(rec(i));
  j.flush();
  j.ack('a', 30);
  assert.equal(j.read(j.cursor('a'), 100, 1 << 20).length, 0);
  assert.equal(j.read(j.cursor('b'), 100, 1 << 20).length, 30, 'b still sees everything');
  j.ack('b', 15);
  assert.equal(j.stats().backlogRecords, 15);
  assert.deepEqual(j.read(j.cursor('b'), 100, 1 << 20).map((r) => r.seq)[0], 16);
  j.ack('b', 30);
  assert.equal(j.stats().backlogRecords, 0);
  assert.equal(j.stats().oldestTime, null, 'all rows deleted');
  await j.stop();
});

test('a new sink gets what is still journaled; a removed sink stops holding rows back', async () => {
  const j = journal();
  await j.start();
  j.registerSinks(['a', 'old']);
  for (let i = 0; i < 5; i++) j.append(rec(i));
  j.flush();
  j.registerSinks(['a', 'new']);
  assert.equal(j.read(j.cursor('new'), 100, 1 << 20).length, 5);
  j.ack('a', 5);
  j.ack('new', 5);
  assert.equal(j.stats().oldestTime, null, '"old" no longer holds rows');
  assert.throws(() => j.cursor('old'));
  await j.stop();
});

test('reads honour record and byte limits, but always return at least one record', async () => {
  const j = journal({ commitMaxRecords: 7 });
  await j.start();
  for (let i = 0; i < 50; i++) j.append(rec(i, { payload: Buffer.alloc(100) }));
  j.flush();
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(j.read(0, 20, 1 << 20).length, 20);
  assert.equal(j.read(0, 100, 350).length, 3);
  assert.equal(j.read(0, 100, 10).length, 1);
  assert.deepEqual(j.read(45, 100, 1 << 20).map((r) => r.seq), [46, 47, 48, 49, 50]);
  await j.stop();
});

test('freed space is reused: fill and drain twice, the file does not grow the second time', async () => {
  const path = join(tmp.path, 'reuse-space.db');
  const j = journal({ path });
  await j.start();
  j.registerSinks(['k']);
  const cycle = (): void => {
    for (let i = 0; i < 20000; i++) j.append(rec(i, { payload: Buffer.alloc(200, i % 251) }));
    j.flush();
    j.ack('k', j.committedSeq);
  };
  cycle();
  const first = statSync(path).size;
  cycle();
  cycle();
  const third = statSync(path).size;
  assert.ok(third <= first * 1.1, `file grew from ${first} to ${third}`);
  await j.stop();
});

test('a database that is not a sluice journal is refused, not reused', async () => {
  const path = join(tmp.path, 'stranger.db');
  const db = new Database(path);
  db.exec('CREATE TABLE customers (id INTEGER)');
  db.close();
  const j = journal({ path });
  await assert.rejects(j.start(), (err: SluiceError) => err.code === 'SLUICE_JOURNAL_NOT_OURS' && /^journal\.path: .*not a sluice journal.*refusing to touch it$/.test(err.message));
});

test('a file that is not a journal (no SQLite header, no mark of sluice) is refused and left exactly as it was', async () => {
  for (const [name, content] of [
    ['garbage.db', Buffer.alloc(8192, 0x5a)],
    ['hosts', Buffer.from('127.0.0.1 localhost\n::1 localhost\n')],
  ] as const) {
    const path = join(tmp.path, name);
    writeFileSync(path, content);
    await assert.rejects(journal({ path }).start(), (err: SluiceError) => err.code === 'SLUICE_JOURNAL_NOT_OURS' && err.message === `journal.path: ${path} is not a sluice journal (no SQLite header); refusing to touch it`);
    assert.deepEqual(readFileSync(path), content, 'untouched');
    assert.deepEqual(readdirSync(tmp.path).filter((f) => f.startsWith(`${name}.`) || f.startsWith(`${name}-`)), [], 'nothing set aside or created beside it');
  }
  const dir = join(tmp.path, 'a-directory');
  mkdirSync(dir);
  await assert.rejects(journal({ path: dir }).start(), (err: SluiceError) => err.code === 'SLUICE_JOURNAL_NOT_OURS' && /is a directory/.test(err.message));
  await assert.rejects(journal({ path: '/dev/null' }).start(), (err: SluiceError) => err.code === 'SLUICE_JOURNAL_NOT_OURS' && /not a regular file/.test(err.message));
});

test('a journal of ours overwritten with garbage (its mark file beside it) is set aside, never a crash loop and never a silent fresh start', async () => {
  const path = join(tmp.path, 'garbage-ours.db');
  const j1 = journal({ path });
  await j1.start();
  j1.append(rec(1));
  await j1.stop();
  const garbage = Buffer.alloc(8192, 0x5a);
  writeFileSync(path, garbage);
  const gaps: GapReport[] = [];
  const j = new SqliteJournal({ path, durability: 'crash', commitDelayMs: 5, commitMaxRecords: 100, logger: pino({ level: 'silent' }), clock: { now: () => 1700000000000 }, reportGap: (g) => gaps.push(g) });
  await j.start();
  assert.equal(gaps[0]!.reason, 'journal_set_aside');
  assert.match(gaps[0]!.detail!, /corrupt-/);
  const seq = j.append(rec(1));
  assert.ok(seq > 1, 'seqs continue above the mark when the old file told nothing');
  await j.stop();
});

test('a truncated journal is set aside and the new one continues above its seqs', async () => {
  const path = join(tmp.path, 'trunc.db');
  const j1 = journal({ path });
  await j1.start();
  j1.registerSinks(['k']);
  for (let i = 0; i < 3000; i++) j1.append(rec(i, { payload: Buffer.alloc(200, i % 251) }));
  await j1.stop();
  const size = statSync(path).size;
  truncateSync(path, Math.floor(size / 2));
  const gaps: GapReport[] = [];
  const j2 = new SqliteJournal({ path, durability: 'crash', commitDelayMs: 5, commitMaxRecords: 100, logger: pino({ level: 'silent' }), clock: { now: () => 1700000000000 }, reportGap: (g) => gaps.push(g) });
  await j2.start();
  assert.equal(gaps[0]?.reason, 'journal_set_aside');
  assert.ok(j2.append(rec(1)) > 3000, 'no seq is reused after a set-aside');
  await j2.stop();
});

/** Overwrites 4 bytes of the database header, as a bad sector or a stray write would. */
function garbleHeader(path: string, offset: number): void {
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, Buffer.from([0xde, 0xad, 0xbe, 0xef]), 0, 4, offset);
  } finally {
    closeSync(fd);
  }
}

// Bytes 60-63 hold user_version (the schema version), 68-71 application_id ("SLCE").
for (const { field, offset } of [
  { field: 'user_version', offset: 60 },
  { field: 'application_id', offset: 68 },
]) {
  test(`a journal with a garbled ${field} is ours, damaged: set aside with an alarm, seqs continue, check reports it`, async () => {
    const path = join(tmp.path, `header-${field}.db`);
    const j1 = journal({ path });
    await j1.start();
    j1.registerSinks(['k']);
    for (let i = 0; i < 50; i++) j1.append(rec(i));
    j1.flush();
    j1.ack('k', 20); // 30 records not yet shipped
    await j1.stop();
    garbleHeader(path, offset);

    const report = checkJournalFile(path);
    assert.equal(report.ok, false);
    assert.ok(report.problems.some((p) => /header damaged/.test(p) && p.includes(field === 'application_id' ? 'application_id 0xdeadbeef' : `schema version ${0xdeadbeef | 0}`)), report.problems.join('; '));
    assert.equal(report.records, 50, 'check still reads the rows a salvage could recover');

    const gaps: GapReport[] = [];
    for (let restart = 0; restart < 2; restart++) {
      // Twice: the first start sets the file aside, the second finds the new journal: never a crash loop.
      const j2 = new SqliteJournal({ path, durability: 'crash', commitDelayMs: 5, commitMaxRecords: 100, logger: pino({ level: 'silent' }), clock: { now: () => 1700000000000 }, reportGap: (g) => gaps.push(g) });
      await j2.start();
      j2.registerSinks(['k']);
      const seq = j2.append(rec(100 + restart));
      assert.ok(seq > 50, `seq ${seq} continues above the damaged journal's 50`);
      await j2.stop();
    }
    assert.equal(gaps.length, 1, 'one alarm, for the one set-aside, and no loss: salvage recovered every row');
    assert.equal(gaps[0]!.reason, 'journal_set_aside');
    assert.match(gaps[0]!.detail!, /damaged header/);
    assert.match(gaps[0]!.detail!, /30 records were not yet shipped/);
    const aside = readdirSync(tmp.path).filter((f) => f.startsWith(`header-${field}.db.corrupt-`));
    assert.deepEqual(aside, [], 'the set-aside file is removed once its salvage committed');
    const j3 = journal({ path });
    await j3.start();
    j3.registerSinks(['k']);
    const back = j3.read(j3.cursor('k'), 1e9, 1e12).map((r) => r.seq);
    assert.deepEqual(back.slice(0, 30), Array.from({ length: 30 }, (_, i) => 21 + i), 'the 30 unshipped records came back with their own seqs, after the sink\'s old cursor');
    assert.equal(j3.cursor('k'), 20, 'the sink keeps its old cursor: what it shipped is not sent again');
    await j3.stop();
    assert.equal(checkJournalFile(path).ok, true, 'the new journal is sound');
  });
}

test('`sluice journal check` reports a damaged header and exits non-zero', async () => {
  const path = join(tmp.path, 'cli-header.db');
  const j = journal({ path });
  await j.start();
  j.append(rec(1));
  await j.stop();
  garbleHeader(path, 68);
  const configPath = join(tmp.path, 'cli-header.toml');
  writeFileSync(configPath, `[journal]\npath = ${JSON.stringify(path)}\n`);
  let out = '';
  let code: number | null = null;
  const io: CliIo = {
    stdout: new Writable({ write: (c, _e, cb) => ((out += String(c)), cb()) }),
    stderr: new Writable({ write: (c, _e, cb) => ((out += String(c)), cb()) }),
    env: {},
    exit: (c) => void (code = c),
    onSignal: () => () => {},
  };
  await journalCommand('check', [], configPath, io);
  assert.notEqual(code, 0, out);
  assert.match(out, /DAMAGED/);
  assert.match(out, /problem: header damaged: .*application_id 0xdeadbeef/);
});

test('a foreign database with a stray header is still refused, every time', async () => {
  const path = join(tmp.path, 'stranger2.db');
  const db = new Database(path);
  // Even tables named like sluice's: without sluice's batches columns it is someone else's file.
  db.exec('CREATE TABLE meta (k TEXT); CREATE TABLE cursors (id INTEGER); CREATE TABLE batches (id INTEGER, body TEXT)');
  db.close();
  for (let i = 0; i < 2; i++) {
    await assert.rejects(journal({ path }).start(), (err: SluiceError) => err.code === 'SLUICE_JOURNAL_NOT_OURS' && /not a sluice journal/.test(err.message));
  }
  assert.deepEqual(readdirSync(tmp.path).filter((f) => f.startsWith('stranger2.db.')), [], 'nothing set aside');
  assert.match(checkJournalFile(path).problems.join(';'), /not a sluice journal/);
});

test("the journal's SQLite page cache is 2 MiB, not better-sqlite3's 16 MiB (start-up's quick_check reads every page, and the process kept what it filled)", () => {
  const store = new JournalStore({ path: join(tmp.path, 'cache.db'), durability: 'crash' });
  store.openFile();
  try {
    assert.equal(new Database(':memory:').pragma('cache_size', { simple: true }), -16000, "better-sqlite3's own default (if it changes, revisit the journal's)");
    assert.equal(store.db.pragma('cache_size', { simple: true }), -2048);
  } finally {
    store.close();
  }
});
