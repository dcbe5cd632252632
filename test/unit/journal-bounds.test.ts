import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { SluiceError } from '../../src/errors.js';
import type { GapReport } from '../../src/journal/gaps.js';
import type { NewRecord } from '../../src/journal/journal.js';
import type { Classify } from '../../src/journal/retention.js';
import { SqliteJournal, type SqliteJournalOptions } from '../../src/journal/sqlite-journal.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait-for.js';

const tmp = tempDir();
after(() => tmp.cleanup());
let n = 0;

function journal(opts: Partial<SqliteJournalOptions> & { gaps: GapReport[] }): SqliteJournal {
  const { gaps, ...rest } = opts;
  return new SqliteJournal({
    path: join(tmp.path, `b${n++}.db`),
    durability: 'crash',
    commitDelayMs: 1,
    commitMaxRecords: 100,
    logger: pino({ level: 'silent' }),
    clock: { now: () => 1700000000000 },
    reportGap: (g) => gaps.push(g),
    maintenanceIntervalMs: 60_000,
    ...rest,
  });
}

const rec = (i: number, extra: Partial<NewRecord> = {}): NewRecord => ({
  time: 1700000000000 + i,
  source: 'mqtt:a',
  topic: 'dev/x',
  key: null,
  payload: Buffer.alloc(500, i % 251),
  headers: null,
  ...extra,
});

const dropOldest: Classify = (source) => ({ priority: 0, evictable: !source.startsWith('sluice:') });

/** Every seq the gap reports name. */
function gapSeqs(gaps: GapReport[]): Set<number> {
  const out = new Set<number>();
  for (const g of gaps) for (const [a, b] of g.ranges ?? [[g.firstSeq!, g.lastSeq!]]) for (let s = a; s <= b; s++) out.add(s);
  return out;
}

function keptSeqs(j: SqliteJournal): Set<number> {
  return new Set(j.read(0, 1e9, 1e12).map((r) => r.seq));
}

test('drop_oldest: past max_bytes the oldest go; gap reports name exactly the evicted seqs', async () => {
  const gaps: GapReport[] = [];
  const j = journal({ gaps, maxBytes: 256 * 1024, classify: dropOldest });
  await j.start();
  j.registerSinks(['k']);
  const total = 3000; // ~1.5 MB of payload into a 256 KiB journal
  for (let i = 0; i < total; i++) {
    j.append(rec(i));
    if (i % 100 === 99) j.flush();
  }
  j.flush();
  assert.ok(j.stats().usedBytes <= 256 * 1024 + 64 * 1024, `journal stays near its bound: ${j.stats().usedBytes}`);
  const kept = keptSeqs(j);
  await j.stop(); // reports what the ledger holds
  const lost = gapSeqs(gaps.filter((g) => g.reason === 'evicted_max_bytes'));
  assert.ok(lost.size > 0, 'something was evicted');
  for (let s = 1; s <= total; s++) assert.ok(kept.has(s) !== lost.has(s), `seq ${s}: kept=${kept.has(s)} lost=${lost.has(s)} (exactly one)`);
  assert.ok(Math.max(...lost) < Math.min(...kept), 'the oldest went first');
  const counted = gaps.filter((g) => g.reason === 'evicted_max_bytes').reduce((s, g) => s + g.count, 0);
  assert.equal(counted, lost.size);
});

test('drop_oldest: the lowest priority is evicted first, whatever its age', async () => {
  const gaps: GapReport[] = [];
  const classify: Classify = (_s, topic) => ({ priority: topic === 'important' ? 10 : 0, evictable: true });
  const j = journal({ gaps, maxBytes: 256 * 1024, classify });
  await j.start();
  j.registerSinks(['k']);
  for (let i = 0; i < 200; i++) j.append(rec(i, { topic: 'important' }));
  j.flush();
  for (let i = 200; i < 2000; i++) {
    j.append(rec(i, { topic: 'chatter' }));
    if (i % 100 === 99) j.flush();
  }
  j.flush();
  const kept = j.read(0, 1e9, 1e12);
  assert.equal(kept.filter((r) => r.topic === 'important').length, 200, 'older but higher priority records all kept');
  assert.ok(kept.filter((r) => r.topic === 'chatter').length < 1800, 'chatter was evicted');
  await j.stop();
});

test('backpressure: at the bound appends throw SLUICE_JOURNAL_FULL; room comes back when a sink confirms', async () => {
  const gaps: GapReport[] = [];
  const j = journal({ gaps, maxBytes: 128 * 1024 });
  await j.start();
  j.registerSinks(['k']);
  let taken = 0;
  let full: unknown = null;
  for (let i = 0; i < 5000 && !full; i++) {
    try {
      j.append(rec(i));
      taken++;
      if (i % 50 === 49) j.flush();
    } catch (err) {
      full = err;
    }
  }
  assert.ok(full instanceof SluiceError && full.code === 'SLUICE_JOURNAL_FULL' && full.retriable, `full error: ${String(full)}`);
  assert.equal(j.accepting, false);
  assert.equal(j.stats().full, 'max_bytes');
  j.flush();
  assert.equal(keptSeqs(j).size, taken, 'nothing taken was evicted under backpressure');
  j.ack('k', j.committedSeq);
  assert.equal(j.accepting, true, 'a confirmed drain gives room back');
  j.append(rec(1));
  assert.ok(gaps.some((g) => g.reason === 'journal_full_max_bytes' && g.count === 0), 'an alarm (not a loss) was raised');
  await j.stop();
});

test('min_free_bytes: low disk space stops appends; space the journal owns counts as free', async () => {
  const gaps: GapReport[] = [];
  let fsFree = 10 * 1024 * 1024;
  const j = journal({ gaps, minFreeBytes: 5 * 1024 * 1024, freeBytes: () => fsFree });
  await j.start();
  j.registerSinks(['k']);
  j.append(rec(1));
  j.flush();
  assert.equal(j.accepting, true);
  fsFree = 1024 * 1024;
  j.append(rec(2));
  j.flush();
  assert.equal(j.accepting, false);
  assert.equal(j.stats().full, 'min_free_bytes');
  assert.throws(() => j.append(rec(3)), (e: SluiceError) => e.code === 'SLUICE_JOURNAL_FULL');
  fsFree = 20 * 1024 * 1024;
  j.ack('k', 0); // any journal activity re-checks; the maintenance tick does it too
  j.maintain();
  assert.equal(j.accepting, true, 'recovers by itself when space returns');
  await j.stop();
});

test('max_age: records older than the bound are evicted whatever the policy; gap records are kept', async () => {
  const gaps: GapReport[] = [];
  let now = 1700000000000;
  const j = journal({ gaps, maxAgeS: 60, clock: { now: () => now }, maintenanceIntervalMs: 60_000 });
  await j.start();
  j.registerSinks(['k']);
  for (let i = 0; i < 10; i++) j.append(rec(i, { time: now - 120_000 }));
  j.flush();
  for (let i = 0; i < 10; i++) j.append(rec(i, { time: now }));
  j.append({ ...rec(99, { time: now - 120_000 }), source: 'sluice:gaps', topic: 'sluice/gaps' });
  j.flush();
  for (let t = 0; t < 5; t++) j.maintain();
  const kept = j.read(0, 1e9, 1e12);
  assert.equal(kept.length, 11, 'the 10 fresh records and the old gap record stay');
  const aged = gaps.filter((g) => g.reason === 'evicted_max_age');
  assert.equal(aged.length, 1);
  assert.deepEqual(aged[0]!.ranges, [[1, 10]]);
  now += 1;
  await j.stop();
});

/** Makes every commit fail the way a non-disk-full error would (here a constraint), until `heal()`. */
function injectCommitFailure(j: SqliteJournal): { heal(): void } {
  const db = (j as unknown as { store: { db: Database.Database } }).store.db;
  db.exec("CREATE TEMP TRIGGER inject_commit_failure BEFORE INSERT ON main.batches BEGIN SELECT RAISE(ABORT, 'injected commit failure'); END");
  return { heal: () => db.exec('DROP TRIGGER temp.inject_commit_failure') };
}

test('commits failing (not disk full): pending records are bounded, appends throw SLUICE_JOURNAL_FULL, and it takes records again once commits succeed', async () => {
  const gaps: GapReport[] = [];
  const j = journal({ gaps, commitMaxRecords: 10 });
  await j.start();
  j.registerSinks(['k']);
  const fault = injectCommitFailure(j);
  for (let i = 0; i < 5; i++) j.append(rec(i));
  assert.throws(() => j.flush(), (e: SluiceError) => e.code === 'SLUICE_JOURNAL_WRITE' && /injected commit failure/.test(e.message));
  let taken = 5;
  let full: unknown = null;
  for (let i = 5; i < 100_000 && !full; i++) {
    try {
      j.append(rec(i));
      taken++;
    } catch (err) {
      full = err;
    }
  }
  assert.ok(full instanceof SluiceError && full.code === 'SLUICE_JOURNAL_FULL' && full.retriable && /commit_failing/.test(full.message), `full error: ${String(full)}`);
  assert.equal(taken, 4 * 10, 'at most four group commits of records wait in memory');
  assert.equal(j.accepting, false, 'MQTT sources see the journal as full and pause');
  assert.equal(j.stats().full, 'commit_failing');
  assert.throws(() => j.append(rec(0)), (e: SluiceError) => e.code === 'SLUICE_JOURNAL_FULL', 'still refused');
  assert.ok(gaps.some((g) => g.reason === 'journal_full_commit_failing' && g.count === 0), 'an alarm (not a loss) was raised');
  // Gap records of what sources drop meanwhile still get in, within their own (twice as large) bound.
  j.append(rec(1, { source: 'sluice:gaps', topic: 'sluice/gaps' }));
  for (let i = 0; i < 1000; i++) {
    try {
      j.append(rec(1, { source: 'sluice:gaps', topic: 'sluice/gaps' }));
    } catch {
      break;
    }
  }
  const waiting = j.stats().backlogRecords;
  assert.equal(waiting, 2 * 4 * 10, 'gap records are bounded too');
  fault.heal();
  // The retry timer commits by itself; no flush from the test.
  await waitFor(() => j.accepting, { what: 'the journal taking records again', timeoutMs: 10_000 });
  assert.equal(j.stats().full, null);
  assert.equal(j.committedSeq, j.lastAssignedSeq, 'everything taken was committed');
  assert.equal(j.read(0, 1e9, 1e12).length, waiting, 'nothing taken was lost');
  j.append(rec(7));
  j.flush();
  await j.stop();
});

test('commits failing: the payload-bytes bound holds too (32 MiB), whatever the record count', async () => {
  const gaps: GapReport[] = [];
  const j = journal({ gaps, commitMaxRecords: 100_000 });
  await j.start();
  const fault = injectCommitFailure(j);
  const big = (i: number) => rec(i, { payload: Buffer.alloc(1024 * 1024, i % 251) });
  j.append(big(0));
  assert.throws(() => j.flush(), (e: SluiceError) => e.code === 'SLUICE_JOURNAL_WRITE');
  let taken = 1;
  for (let i = 1; i < 1000; i++) {
    try {
      j.append(big(i));
      taken++;
    } catch (err) {
      assert.ok(err instanceof SluiceError && err.code === 'SLUICE_JOURNAL_FULL');
      break;
    }
  }
  assert.equal(taken, 32, '32 records of 1 MiB, then full');
  fault.heal();
  j.flush();
  assert.equal(j.accepting, true);
  await j.stop();
});
