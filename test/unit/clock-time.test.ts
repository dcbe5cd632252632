import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import type { GapReport } from '../../src/journal/gaps.js';
import { gapPayload, GAP_SOURCE, GAP_TOPIC } from '../../src/journal/gaps.js';
import type { JournalRecord, NewRecord } from '../../src/journal/journal.js';
import { SqliteJournal } from '../../src/journal/sqlite-journal.js';
import { Metrics } from '../../src/metrics.js';
import type { OutgoingBatch } from '../../src/sinks/kafka-client.js';
import { KafkaSink } from '../../src/sinks/kafka-sink.js';
import { metadataOf } from '../../src/sinks/record-metadata.js';
import { parseConfig } from '../../src/config/load.js';
import { ClockWatch } from '../../src/time/clock-watch.js';
import { createSyncReader, TIMESYNCD_FILE, type SyncState } from '../../src/time/sync-reader.js';
import type { TimeSources } from '../../src/time/time-sources.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait-for.js';

const tmp = tempDir();
if (process.env.KEEP_TMP) console.log("TMP", tmp.path);
after(() => { if (!process.env.KEEP_TMP) tmp.cleanup(); });
const silent = pino({ level: 'silent' });
let n = 0;

const TRUE_START = Date.UTC(2026, 11, 1, 12, 0, 0);
const STALE = Date.UTC(2026, 10, 20, 3, 0, 0); // what fake-hwclock restored: 11 days behind

/**
 * A machine's clocks, driven by hand: `truth` is real time; the wall clock is truth plus an error
 * (wrong until "NTP" fixes it); mono stops while suspended, boot time does not.
 */
class Machine {
  truth = TRUE_START;
  wallError = STALE - TRUE_START;
  mono = 12_000;
  boot = 12_000;
  bootId = 'boot-a';
  syncState: SyncState = 'unsynced';
  /** null: /proc/uptime unreadable. */
  bootTimeReadable = true;

  readonly sources: TimeSources = {
    wall: { now: () => this.truth + this.wallError },
    mono: () => this.mono,
    bootTime: () => (this.bootTimeReadable ? this.boot : null),
    bootId: () => this.bootId,
  };

  advance(ms: number): void {
    this.truth += ms;
    this.mono += ms;
    this.boot += ms;
  }

  suspend(ms: number): void {
    this.truth += ms;
    this.boot += ms;
  }

  /** A new boot: clocks since boot restart, the wall clock is wrong again. */
  reboot(id: string, wallError: number): void {
    this.bootId = id;
    this.truth += 60_000;
    this.mono = 9_000;
    this.boot = 9_000;
    this.wallError = wallError;
    this.syncState = 'unsynced';
  }

  /** NTP steps the clock and says so. */
  ntpSync(): void {
    this.wallError = 0;
    this.syncState = 'synced';
  }
}

function watch(m: Machine, metrics = new Metrics(), gaps: GapReport[] = [], alarmAfterMs = 3_600_000): ClockWatch {
  return new ClockWatch({ jumpThresholdMs: 20, unsyncedAlarmAfterMs: alarmAfterMs, intervalMs: 3_600_000 }, { sources: m.sources, syncReader: { read: async () => ({ state: m.syncState, via: 'test' }) }, metrics, logger: silent, reportGap: (g) => gaps.push(g) });
}

async function openJournal(m: Machine, path: string, clock: ClockWatch): Promise<SqliteJournal> {
  await clock.start();
  const j = new SqliteJournal({ path, durability: 'crash', commitDelayMs: 1, commitMaxRecords: 1000, logger: silent, clock: m.sources.wall, captureClock: clock });
  await j.start();
  j.registerSinks(['kafka']);
  return j;
}

/** Appends a reading captured now (by the machine's wall clock); returns the true capture time. */
function capture(m: Machine, j: SqliteJournal, i: number): number {
  const rec: NewRecord = { time: m.sources.wall.now(), source: 'mqtt:local', topic: `dev/d${i % 3}/r`, key: null, payload: Buffer.from(`{"i":${i}}`), headers: null };
  j.append(rec);
  return m.truth;
}

function readAll(j: SqliteJournal): JournalRecord[] {
  j.flush();
  return j.read(0, 1000, 1 << 20);
}

const newPath = (): string => join(tmp.path, `clock${n++}.db`);

test('stale clock at boot, then NTP syncs: earlier records of the boot come out corrected to the true time, later ones synced; rows are not rewritten', async () => {
  const m = new Machine();
  const path = newPath();
  const clock = watch(m);
  const j = await openJournal(m, path, clock);
  const truths: number[] = [];
  for (let i = 0; i < 5; i++) {
    truths.push(capture(m, j, i));
    m.advance(1234);
  }
  let before = readAll(j);
  assert.deepEqual(before.map((r) => r.timeQuality), Array(5).fill('unsynced'), 'before any sync the clock is only a guess');
  assert.equal(before[0]!.time, STALE, 'unsynced: the clock time as it was');
  const rawRows = new Database(path, { readonly: true }).prepare('SELECT first_seq, data FROM batches ORDER BY first_seq').all();

  m.advance(30_000);
  m.ntpSync();
  await clock.tick();
  truths.push(capture(m, j, 5));
  const after = readAll(j);
  assert.deepEqual(after.map((r) => r.timeQuality), ['corrected', 'corrected', 'corrected', 'corrected', 'corrected', 'synced']);
  assert.deepEqual(after.map((r) => r.time), truths, 'corrected = monotonic capture + (wall - monotonic at the sync): the true capture time');
  assert.equal(after[0]!.clockTime, STALE, 'what the clock said is kept');
  assert.equal(after[5]!.clockTime, undefined);
  const rowsNow = new Database(path, { readonly: true }).prepare('SELECT first_seq, data FROM batches ORDER BY first_seq').all();
  assert.deepEqual(rowsNow.slice(0, rawRows.length), rawRows, 'the journal rows are as written: the correction is applied when read');
  await j.stop();

  // A restart in the same boot keeps the correction (the epochs are in the file).
  const clock2 = watch(m);
  const j2 = await openJournal(m, path, clock2);
  before = readAll(j2);
  assert.deepEqual(before.map((r) => r.time), truths);
  await j2.stop();
});

test('a backwards jump before the sync: records on both sides are corrected to the true time', async () => {
  const m = new Machine();
  m.wallError = 5 * 3_600_000; // 5 h ahead
  const clock = watch(m);
  const j = await openJournal(m, newPath(), clock);
  const truths = [capture(m, j, 0)];
  m.advance(1000);
  truths.push(capture(m, j, 1));
  m.advance(1000);
  m.wallError = -2 * 86_400_000; // someone set it to two days ago: a jump of -5 h -2 d
  await clock.tick();
  assert.equal(clock.state().jumps, 1);
  assert.equal(clock.state().last_jump_ms, -(5 * 3_600_000 + 2 * 86_400_000));
  truths.push(capture(m, j, 2));
  m.advance(1000);
  truths.push(capture(m, j, 3));
  m.advance(10_000);
  m.ntpSync();
  await clock.tick();
  const out = readAll(j);
  assert.deepEqual(out.map((r) => r.timeQuality), Array(4).fill('corrected'));
  assert.deepEqual(out.map((r) => r.time), truths);
  await j.stop();
});

test('a jump between two ticks is caught at the next append, not at the tick', async () => {
  const m = new Machine();
  const clock = watch(m);
  const j = await openJournal(m, newPath(), clock);
  const truths = [capture(m, j, 0)];
  m.advance(500);
  m.wallError += 90_000; // forward step, no tick yet
  truths.push(capture(m, j, 1));
  m.advance(500);
  m.ntpSync();
  await clock.tick();
  const out = readAll(j);
  assert.deepEqual(out.map((r) => r.time), truths);
  await j.stop();
});

test('two boots before any sync: the earlier boot stays unsynced (its clock time), only the syncing boot is corrected', async () => {
  const m = new Machine();
  const path = newPath();
  const clock = watch(m);
  const j = await openJournal(m, path, clock);
  capture(m, j, 0);
  m.advance(1000);
  capture(m, j, 1);
  j.flush();
  const bootA = j.read(0, 10, 1 << 20).map((r) => r.time);
  await j.stop();
  await clock.stop();

  m.reboot('boot-b', STALE - TRUE_START + 3_600_000);
  const clockB = watch(m);
  const jB = await openJournal(m, path, clockB);
  const truthsB = [capture(m, jB, 2)];
  m.advance(2000);
  truthsB.push(capture(m, jB, 3));
  m.advance(2000);
  m.ntpSync();
  await clockB.tick();
  const out = readAll(jB);
  assert.deepEqual(out.map((r) => r.timeQuality), ['unsynced', 'unsynced', 'corrected', 'corrected']);
  assert.deepEqual(out.slice(0, 2).map((r) => r.time), bootA, 'an earlier boot never synced: kept as the clock said, marked');
  assert.deepEqual(out.slice(2).map((r) => r.time), truthsB);
  await jB.stop();
});

test('suspend: monotonic time stops, boot time does not; capture times before the suspend are still corrected exactly', async () => {
  const m = new Machine();
  const clock = watch(m);
  const j = await openJournal(m, newPath(), clock);
  const truths = [capture(m, j, 0)];
  m.advance(1000);
  m.suspend(3_600_000);
  await clock.tick();
  assert.equal(clock.state().suspended_ms, 3_600_000);
  assert.equal(clock.state().jumps, 0, 'a suspend is not a clock jump');
  truths.push(capture(m, j, 1));
  m.advance(1000);
  m.ntpSync();
  await clock.tick();
  const out = readAll(j);
  assert.deepEqual(out.map((r) => r.time), truths);

  // Where boot time cannot be read, a suspend looks like a forward jump and what came before it is off by its length: the reason for CLOCK_BOOTTIME.
  const m2 = new Machine();
  m2.bootTimeReadable = false;
  const clock2 = watch(m2);
  const j2 = await openJournal(m2, newPath(), clock2);
  const t0 = capture(m2, j2, 0);
  m2.advance(1000);
  m2.suspend(60_000);
  capture(m2, j2, 1);
  m2.ntpSync();
  await clock2.tick();
  assert.equal(readAll(j2)[0]!.time - t0, 60_000);
  await j.stop();
  await j2.stop();
});

test('a suspend noticed first by an append (before the tick) is measured there, not taken for a jump', async () => {
  const m = new Machine();
  const clock = watch(m);
  const j = await openJournal(m, newPath(), clock);
  const truths = [capture(m, j, 0)];
  m.suspend(120_000);
  truths.push(capture(m, j, 1));
  m.advance(10);
  m.ntpSync();
  await clock.tick();
  assert.deepEqual(readAll(j).map((r) => r.time), truths);
  await j.stop();
});

test('NTP steps the clock again after the first sync: earlier unsynced records take the latest synced offset; synced records keep their time', async () => {
  const m = new Machine();
  const clock = watch(m);
  const j = await openJournal(m, newPath(), clock);
  const t0 = capture(m, j, 0);
  m.advance(100);
  m.wallError = 400; // first sync still 400 ms off
  m.syncState = 'synced';
  await clock.tick();
  m.advance(100);
  const clockSaid = m.sources.wall.now();
  capture(m, j, 1);
  m.advance(100);
  m.wallError = 0; // the next poll steps it right
  await clock.tick();
  const out = readAll(j);
  assert.deepEqual(out.map((r) => r.timeQuality), ['corrected', 'synced']);
  assert.equal(out[0]!.time, t0);
  assert.equal(out[1]!.time, clockSaid);
  await j.stop();
});

test('records journaled by an older sluice (schema 2, no clock table) stay readable and ship "unsynced"; the file becomes schema 3', async () => {
  const path = newPath();
  const db = new Database(path);
  db.pragma('auto_vacuum = INCREMENTAL');
  db.pragma(`application_id = ${0x534c4345}`);
  db.pragma('user_version = 2');
  db.exec(`
    CREATE TABLE meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL) WITHOUT ROWID;
    CREATE TABLE cursors (sink TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;
    CREATE TABLE batches (first_seq INTEGER PRIMARY KEY, last_seq INTEGER NOT NULL, count INTEGER NOT NULL, bytes INTEGER NOT NULL, min_time REAL NOT NULL, max_time REAL NOT NULL, data BLOB NOT NULL, priority INTEGER NOT NULL DEFAULT 0, evictable INTEGER NOT NULL DEFAULT 0, crc INTEGER);`);
  const { encodeRecords } = await import('../../src/journal/record-codec.js');
  const data = encodeRecords([{ time: 1700000000000, source: 'mqtt:local', topic: 'dev/a/r', key: null, payload: Buffer.from('old'), headers: null }]);
  db.prepare('INSERT INTO batches (first_seq, last_seq, count, bytes, min_time, max_time, data) VALUES (1, 1, 1, 3, 1700000000000, 1700000000000, ?)').run(data);
  db.close();
  const m = new Machine();
  m.syncState = 'synced';
  const clock = watch(m);
  const j = await openJournal(m, path, clock);
  capture(m, j, 1);
  const out = readAll(j);
  assert.deepEqual(out.map((r) => [r.payload.toString(), r.timeQuality]), [['old', 'unsynced'], ['{"i":1}', 'synced']]);
  await j.stop();
  const check = new Database(path, { readonly: true });
  assert.equal(check.pragma('user_version', { simple: true }), 3);
  assert.equal((check.prepare('SELECT count(*) FROM clock_epochs').pluck().get() as number), 1, 'one epoch for this boot, not one per record');
  check.close();
});

test('no byte more per record: a row written with clock tracking is byte for byte the row written without', async () => {
  const rows = async (tracked: boolean): Promise<unknown[]> => {
    const path = newPath();
    const m = new Machine();
    const opts = { path, durability: 'crash' as const, commitDelayMs: 1, commitMaxRecords: 1000, logger: silent, clock: m.sources.wall };
    const clock = watch(m);
    await clock.start();
    const j = new SqliteJournal(tracked ? { ...opts, captureClock: clock } : opts);
    await j.start();
    for (let i = 0; i < 50; i++) {
      capture(m, j, i);
      m.advance(7);
    }
    j.flush();
    await j.stop();
    const db = new Database(path, { readonly: true });
    const out = db.prepare('SELECT * FROM batches').all();
    db.close();
    return out;
  };
  assert.deepEqual(await rows(true), await rows(false));
});

test('an epoch is written when the clock syncs even if nothing is appended, so a crash before the next record loses no correction', async () => {
  const m = new Machine();
  const path = newPath();
  const clock = watch(m);
  const j = await openJournal(m, path, clock);
  const t0 = capture(m, j, 0);
  j.flush();
  m.advance(5000);
  m.ntpSync();
  await clock.tick();
  const db = new Database(path, { readonly: true });
  assert.deepEqual(db.prepare('SELECT synced FROM clock_epochs ORDER BY id').pluck().all(), [0, 1]);
  db.close();
  // kill -9 here: nothing else was written. The next run still corrects record 1.
  const j2 = await openJournal(m, path, watch(m));
  assert.equal(readAll(j2)[0]!.time, t0);
  await j2.stop();
  await j.stop();
});

test('unsynced longer than time.unsynced_alarm_after_s: an alarm gap record (count 0), state and metric; it ends at the sync', async () => {
  const m = new Machine();
  const metrics = new Metrics();
  const gaps: GapReport[] = [];
  const clock = watch(m, metrics, gaps, 60_000);
  await clock.start();
  m.advance(30_000);
  await clock.tick();
  assert.equal(clock.state().alarm, false);
  m.advance(31_000);
  await clock.tick();
  await clock.tick();
  assert.equal(clock.state().alarm, true);
  assert.equal(clock.state().unsynced_for_s, 61);
  assert.equal(metrics.get('sluice_clock_alarm'), 1);
  assert.equal(metrics.get('sluice_clock_synced'), 0);
  assert.deepEqual(gaps.map((g) => [g.reason, g.source, g.count]), [['clock_unsynced', 'sluice:clock', 0]], 'raised once');
  m.ntpSync();
  await clock.tick();
  assert.equal(clock.state().alarm, false);
  assert.equal(clock.state().state, 'synced');
  assert.equal(metrics.get('sluice_clock_alarm'), 0);
  assert.equal(metrics.get('sluice_clock_synced'), 1);
  await clock.stop();
});

test('sync state: the timesyncd file when present, else timedatectl (paced), else unknown; assume_synced for boards with a real clock', async () => {
  let file = false;
  let answer: string | Error = 'no';
  let runs = 0;
  let mono = 0;
  const deps = {
    exists: (p: string) => p === TIMESYNCD_FILE && file,
    timedatectl: async () => {
      runs++;
      if (answer instanceof Error) throw answer;
      return `${answer}\n`;
    },
    mono: () => mono,
  };
  const auto = createSyncReader('auto', 30_000, deps);
  assert.deepEqual(await auto.read(), { state: 'unsynced', via: 'timedatectl' });
  answer = 'yes';
  mono += 1000;
  assert.equal((await auto.read()).state, 'unsynced', 'timedatectl is not run again within poll_s');
  assert.equal(runs, 1);
  mono += 30_000;
  assert.deepEqual(await auto.read(), { state: 'synced', via: 'timedatectl' });
  file = true;
  assert.deepEqual(await auto.read(), { state: 'synced', via: 'systemd-timesyncd' });
  assert.equal(runs, 2, 'the file costs no process');
  file = false;
  answer = new Error('System has not been booted with systemd as init system');
  mono += 30_000;
  assert.equal((await auto.read()).state, 'unknown');
  assert.equal((await createSyncReader('timesyncd', 1, deps).read()).state, 'unsynced');
  assert.equal((await createSyncReader('assume_synced', 1, deps).read()).state, 'synced');
});

test('the Kafka record: timestamp and the metadata header\'s time are the corrected time, its time_quality says so, its clock_time keeps the clock\'s; gap payload times are corrected too', async () => {
  const m = new Machine();
  const config = parseConfig(`
[journal]
path = "${newPath()}"
[[sink]]
brokers = ["127.0.0.1:1"]
linger_ms = 0
[[sink.route]]
match = "dev/+d/#"
topic = "t"
value_format = "envelope"
[[sink.route]]
match = "sluice/health"
topic = "h"
`);
  const clock = watch(m);
  await clock.start();
  const journal = new SqliteJournal({ ...config.journal, logger: silent, clock: m.sources.wall, captureClock: clock });
  await journal.start();
  journal.registerSinks(['kafka']);
  const t0 = capture(m, journal, 0);
  m.advance(10);
  const gap: GapReport = { reason: 'journal_full', source: 'serial:x', firstTime: m.sources.wall.now() - 5, lastTime: m.sources.wall.now(), count: 2, bytes: 10 };
  journal.append({ time: m.sources.wall.now(), source: GAP_SOURCE, topic: GAP_TOPIC, key: 'gw', payload: Buffer.from(JSON.stringify(gapPayload(gap, 'gw'))), headers: null });
  const gapTruth = m.truth;
  journal.append({ time: m.sources.wall.now(), source: 'sluice:health', topic: 'sluice/health', key: 'gw', payload: Buffer.from(JSON.stringify({ type: 'health', time: new Date(m.sources.wall.now()).toISOString(), clock_state: 'unsynced' })), headers: null });
  m.advance(1000);
  m.ntpSync();
  await clock.tick();
  const t2 = capture(m, journal, 2);
  journal.flush();
  const batches: OutgoingBatch[] = [];
  const sink = new KafkaSink(config.sink[0]!, { journal, logger: silent, metrics: new Metrics(), clock: m.sources.wall, gatewayId: 'gw', createClient: () => ({ connect: async () => undefined, send: async (b) => void batches.push(b), disconnect: async () => undefined }) });
  await sink.start();
  await waitFor(() => (journal.cursor('kafka') >= 4 ? true : null), { what: 'all shipped' });
  await sink.stop();
  const msgs = batches.flatMap((b) => b.topicMessages.flatMap((t) => t.messages.map((msg) => ({ topic: t.topic, ...msg }))));
  const readings = msgs.filter((x) => x.topic === 't');
  assert.deepEqual(readings.map((x) => [x.timestamp, metadataOf(x.headers)!.time, metadataOf(x.headers)!.timeQuality]), [
    [String(t0), String(t0), 'corrected'],
    [String(t2), String(t2), 'synced'],
  ]);
  assert.equal(metadataOf(readings[0]!.headers)!.clockTime, String(STALE), 'what the clock said');
  assert.equal(metadataOf(readings[1]!.headers)!.clockTime, undefined);
  const env = JSON.parse(readings[0]!.value.toString()) as { time: string; time_quality: string };
  assert.deepEqual([env.time, env.time_quality], [new Date(t0).toISOString(), 'corrected']);
  const health = msgs.find((x) => x.topic === 'h')!;
  assert.deepEqual(JSON.parse(health.value.toString()), { type: 'health', time: new Date(gapTruth).toISOString(), clock_state: 'unsynced', time_quality: 'corrected' }, 'a health record\'s time is corrected too');
  const gapMsg = msgs.find((x) => x.topic !== 't' && x.topic !== 'h')!;
  assert.equal(metadataOf(gapMsg.headers)!.timeQuality, 'corrected');
  assert.equal(gapMsg.timestamp, String(gapTruth));
  const body = JSON.parse(gapMsg.value.toString()) as { first_time: string; last_time: string; time_quality: string };
  assert.deepEqual([body.first_time, body.last_time, body.time_quality], [new Date(gapTruth - 5).toISOString(), new Date(gapTruth).toISOString(), 'corrected']);
  await journal.stop();
  await clock.stop();
});

test('a journal set aside and salvaged at start keeps its clock epochs: its records are still corrected', async () => {
  const { closeSync, openSync, writeSync } = await import('node:fs');
  const m = new Machine();
  const path = newPath();
  const j = await openJournal(m, path, watch(m));
  const truths = [capture(m, j, 0)];
  m.advance(1000);
  truths.push(capture(m, j, 1));
  j.flush();
  await j.stop();
  const fd = openSync(path, 'r+');
  writeSync(fd, Buffer.from([0xde, 0xad, 0xbe, 0xef]), 0, 4, 60); // user_version garbled: ours, damaged
  closeSync(fd);
  m.advance(1000);
  m.ntpSync();
  const j2 = await openJournal(m, path, watch(m));
  truths.push(capture(m, j2, 2));
  const out = readAll(j2);
  assert.deepEqual(out.map((r) => r.timeQuality), ['corrected', 'corrected', 'synced']);
  assert.deepEqual(out.map((r) => r.time), truths);
  await j2.stop();
});

test('epochs whose records are all gone are forgotten, the last 64 kept; the table stays small however often the clock jumps', async () => {
  const m = new Machine();
  const path = newPath();
  const j = await openJournal(m, path, watch(m));
  for (let i = 0; i < 100; i++) {
    m.wallError += 1000;
    capture(m, j, i);
    j.flush();
  }
  j.ack('kafka', 100);
  m.wallError += 1000;
  const truth = capture(m, j, 100);
  m.ntpSync();
  const out = readAll(j);
  const db = new Database(path, { readonly: true });
  const kept = db.prepare('SELECT count(*) FROM clock_epochs').pluck().get() as number;
  db.close();
  assert.ok(kept <= 66 && kept >= 64, `kept ${kept} epochs of 101`);
  assert.equal(out.length, 1);
  await j.stop();
  const j2 = await openJournal(m, path, watch(m));
  assert.equal(readAll(j2)[0]!.time, truth, 'the record left is still corrected');
  await j2.stop();
});

test('sluice status prints the clock: state, how it is known, jumps, the alarm', async () => {
  const { formatStatus } = await import('../../src/cli/status.js');
  const base = { gateway: 'gw', version: 'x', pid: 1, started_at: '2026-01-01T00:00:00.000Z', uptime_s: 10, state: 'ready' as const, reasons: [], log_level: 'info', config: { path: null, reloads: 0, last_reload: null }, journal: { path: 'j', durability: 'power', open: true, backlog_records: 0, used_bytes: 0, oldest_time: null, oldest_age_s: null, committed_seq: 0, last_seq: 0, commits: 0, fsyncs: 0, bytes_written: 0 }, sources: [], sinks: [], stalls: [], gaps: {}, dropped: {} };
  const clock = { state: 'unsynced' as const, via: 'timedatectl', boot_id: 'b', synced_since: null, unsynced_for_s: 4000, jumps: 1, last_jump_ms: -3_600_000, suspended_ms: 0, alarm: true };
  assert.match(formatStatus({ ...base, clock }), /^clock {4}UNSYNCED for 1h 6m \(timedatectl\); 1 jumps, last -3600000 ms {2}ALARM: capture times are guesses$/m);
  assert.match(formatStatus({ ...base, clock: { ...clock, state: 'synced', via: 'systemd-timesyncd', unsynced_for_s: 0, jumps: 0, alarm: false } }), /^clock {4}synced \(systemd-timesyncd\)$/m);
});
