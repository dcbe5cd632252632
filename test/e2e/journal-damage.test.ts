import assert from 'node:assert/strict';
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readdirSync, statSync, truncateSync, unlinkSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { test } from 'node:test';
import type { JournalRecord } from '../../src/journal/journal.js';
import { brokersForFile } from '../helpers/brokers.js';
import { batchesLayout, garblePages, journalRecords, seqsOf, type BatchesLayout, type RowPages } from '../helpers/btree-pages.js';
import { Daemon, runCli, writeConfig } from '../helpers/daemon.js';
import { gapPayloads } from '../helpers/gaps.js';
import { journalCounts } from '../helpers/journal-file.js';
import { consumeOrEmpty, type KafkaMessage } from '../helpers/kcat.js';
import { Publisher } from '../helpers/publisher.js';
import { checkDelivery, expectedReadings } from '../helpers/verify.js';
import { waitFor } from '../helpers/wait-for.js';

const { dir: base, mosquitto, kafka } = brokersForFile();
const DEAD = '127.0.0.1:1';

async function kafkaUntil(topic: string, done: (m: KafkaMessage[]) => boolean, what: string, timeoutMs = 90000): Promise<KafkaMessage[]> {
  return waitFor(
    async () => {
      const m = await consumeOrEmpty(kafka.bootstrap, topic);
      return done(m) ? m : null;
    },
    { timeoutMs, intervalMs: 1000, what },
  );
}

function config(name: string, brokers: string[]): string {
  return writeConfig({
    dir: join(base, name),
    mqttUrl: mosquitto.url,
    brokers,
    clientId: name,
    // Rows of about 100 records, whatever the machine's speed: a commit waits for 100 records (up to
    // a second) instead of going every 5 ms. A journal of 3000 then has enough rows, each with
    // overflow pages, for damage to hit some and spare others. (With the 5 ms default, a busy
    // machine once wrote rows so small that fewer than four had an overflow page.)
    journalExtra: 'commit_max_records = 100\ncommit_delay_ms = 1000',
    sinkExtra: `gap_topic = "gaps-${name}"`,
    routes: [{ match: 'dev/+device/#', topic: `readings-${name}`, key: '{device}' }],
  });
}

/** A journal holding `per` readings from each of 10 devices that no sink has shipped; the daemon is stopped. */
async function unshippedJournal(name: string, per: number): Promise<string> {
  const daemon = Daemon.run(config(name, [DEAD])).start();
  try {
    await daemon.waitForLog(/subscribed/);
    const pub = new Publisher(mosquitto.url);
    await pub.connect();
    assert.equal(await pub.publishMany(10, per, { prefix: 'dev' }), 10 * per);
    await pub.close();
    await waitFor(() => journalCounts(join(base, name, 'journal.db')).records === 10 * per, { what: 'all journaled' });
  } finally {
    assert.equal(await daemon.stop(), 0);
  }
  const db = join(base, name, 'journal.db');
  assert.ok(!existsSync(`${db}-wal`) || statSync(`${db}-wal`).size === 0, 'a clean stop leaves everything in the database file');
  return db;
}

/** Starts on the damaged journal with Kafka reachable; checks the alarm and that new readings flow. */
async function startsAndAlarms(name: string, reasons: RegExp): Promise<{ daemon: Daemon; gaps: KafkaMessage[] }> {
  const cfg = config(name, [kafka.bootstrap]);
  const daemon = Daemon.run(cfg).start();
  try {
    return await startedAndAlarmed(daemon, name, reasons);
  } catch (err) {
    await daemon.stop();
    throw err;
  }
}

async function startedAndAlarmed(daemon: Daemon, name: string, reasons: RegExp): Promise<{ daemon: Daemon; gaps: KafkaMessage[] }> {
  await daemon.waitForLog(/subscribed|"sessionPresent":true/, 30000);
  assert.ok(daemon.running, 'the daemon started on a damaged journal');
  const gaps = await kafkaUntil(`gaps-${name}`, (m) => gapPayloads(m).some((g) => reasons.test(g.reason)), `alarm gap record (${reasons}) in Kafka`);
  const pub = new Publisher(mosquitto.url);
  await pub.connect();
  assert.equal(await pub.publishMany(10, 20, { prefix: 'dev', start: 100000 }), 200);
  await pub.close();
  const fresh = expectedReadings(10, 20, 100000);
  await kafkaUntil(`readings-${name}`, (m) => checkDelivery(m, fresh).missing.length === 0, 'new readings arrive after the damage');
  return { daemon, gaps };
}

async function checkSays(name: string, file: string | undefined, code: number, word: RegExp): Promise<string> {
  const r = await runCli(['journal', 'check', '-c', join(base, name, 'sluice.toml'), ...(file ? [file] : [])]);
  assert.equal(r.code, code, `journal check exit code: ${r.stdout}${r.stderr}`);
  assert.match(r.stdout, word);
  return r.stdout;
}

/** `sluice journal salvage` of a set-aside file into the stopped daemon's journal; returns how many were recovered. */
async function salvage(name: string, file: string): Promise<number> {
  const r = await runCli(['journal', 'salvage', '-c', join(base, name, 'sluice.toml'), file]);
  assert.equal(r.code, 0, `salvage: ${r.stdout}${r.stderr}`);
  const m = /salvaged (\d+) records/.exec(r.stdout);
  assert.ok(m, r.stdout);
  console.log(`${name}: ${r.stdout.trim()}`);
  return Number(m[1]);
}

/** What the journal held before the damage (read from a copy): each seq's record, and where its row lies. */
function witness(name: string, db: string): { records: Map<number, JournalRecord>; layout: BatchesLayout } {
  const copy = join(base, `${name}-witness.db`);
  copyFileSync(db, copy);
  return { records: journalRecords(copy), layout: batchesLayout(db) };
}

const isOld = (m: KafkaMessage): boolean => (JSON.parse(m.payload!) as { n: number }).n < 100000;
const seqOf = (m: KafkaMessage): number => Number(m.headers['sluice.seq']);
const sameReading = (m: KafkaMessage, r: JournalRecord): boolean => m.payload === r.payload.toString() && m.key === (JSON.parse(m.payload!) as { device: string }).device;

/**
 * The accounting after damage, from what kcat read: every seq of `intact` rows arrived once, as the
 * reading it was journaled as; every other seq of the old journal is named by the gap records of
 * `reasons`, once; nothing else is named.
 */
function accountForDamage(records: Map<number, JournalRecord>, intact: RowPages[], readings: KafkaMessage[], gaps: KafkaMessage[], reasons: RegExp): { arrived: number; named: number } {
  const old = readings.filter(isOld);
  const arrived = old.map(seqOf).sort((a, b) => a - b);
  assert.equal(new Set(arrived).size, arrived.length, 'no old record arrived twice');
  const expected = intact.flatMap((r) => seqsOf([[r.firstSeq, r.lastSeq]]));
  assert.deepEqual(arrived, expected, 'exactly the records of intact rows arrived');
  for (const m of old) assert.ok(sameReading(m, records.get(seqOf(m))!), `seq ${seqOf(m)} arrived as the reading journaled under it`);
  const named = gapPayloads(gaps).filter((g) => reasons.test(g.reason)).flatMap((g) => seqsOf(g.ranges));
  assert.equal(new Set(named).size, named.length, 'no seq named twice');
  const rest = [...records.keys()].filter((s) => !new Set(expected).has(s)).sort((a, b) => a - b);
  assert.deepEqual([...named].sort((a, b) => a - b), rest, 'every other seq of the old journal is named by a gap record, and only those');
  return { arrived: arrived.length, named: named.length };
}

/** Waits until the fresh readings (published once the daemon was up) and `oldCount` old ones are in Kafka; returns the readings topic. */
function readingsWith(name: string, oldCount: number): Promise<KafkaMessage[]> {
  const fresh = expectedReadings(10, 20, 100000);
  let seen = '';
  return kafkaUntil(
    `readings-${name}`,
    (m) => {
      seen = `${m.filter(isOld).length} of ${oldCount} old, ${checkDelivery(m, fresh).missing.length} new missing`;
      return checkDelivery(m, fresh).missing.length === 0 && m.filter(isOld).length >= oldCount;
    },
    'the salvaged and the new readings arrive',
  ).catch((err: Error) => {
    throw new Error(`${err.message}; last read: ${seen}`);
  });
}

function setAsideLeft(name: string): string[] {
  return readdirSync(join(base, name)).filter((x) => x.startsWith('journal.db.corrupt-'));
}

/** Starts on a damaged journal with Kafka up; checks the set-aside alarm, the salvage, the accounting, and that ingest goes on. */
async function salvagedAtStart(name: string, w: ReturnType<typeof witness>, intact: RowPages[]): Promise<{ arrived: number; named: number; gaps: KafkaMessage[] }> {
  const { daemon, gaps } = await startsAndAlarms(name, /journal_set_aside/);
  try {
    await daemon.waitForLog(/journal unusable: set aside/);
    await daemon.waitForLog(/salvaged the set-aside journal into the new one/);
    const alarm = gapPayloads(gaps).find((g) => g.reason === 'journal_set_aside')!;
    assert.match(alarm.detail ?? '', /salvaged into the new journal/, 'the alarm says what was set aside and that it is salvaged');
    const expectLoss = intact.length < w.layout.rows.length;
    const allGaps = expectLoss ? await kafkaUntil(`gaps-${name}`, (m) => gapPayloads(m).some((g) => g.reason === 'journal_salvage_lost'), 'journal_salvage_lost in Kafka') : gaps;
    const intactRecords = intact.reduce((s, r) => s + r.lastSeq - r.firstSeq + 1, 0);
    const readings = await readingsWith(name, intactRecords);
    const lostRecords = gapPayloads(allGaps).filter((g) => g.reason === 'journal_salvage_lost');
    assert.equal(lostRecords.length, expectLoss ? 1 : 0, 'one gap record names what salvage could not read');
    const r = accountForDamage(w.records, intact, readings, allGaps, /^journal_salvage_lost$/);
    assert.deepEqual(setAsideLeft(name), [], 'the set-aside file is gone once the salvage committed');
    return { ...r, gaps: allGaps };
  } finally {
    assert.equal(await daemon.stop(), 0);
  }
}

test('(a) journal truncated to half: set aside and salvaged at start: every intact row ships once, every other seq is named; `sluice journal salvage` of a copy set aside by hand recovers the same', async () => {
  const name = 'trunc';
  const db = await unshippedJournal(name, 300);
  const w = witness(name, db);
  const { pageSize } = w.layout;
  const cut = Math.floor(statSync(db).size / 2 / pageSize) * pageSize;
  truncateSync(db, cut);
  const intact = w.layout.rows.filter((r) => r.pages.every((p) => p * pageSize <= cut));
  assert.ok(intact.length > 0 && intact.length < w.layout.rows.length, `the cut leaves part of the rows (${intact.length} of ${w.layout.rows.length})`);
  // A copy of the damaged file, set aside by hand, for the salvage command.
  const byHandDir = join(base, 'by-hand');
  mkdirSync(byHandDir, { recursive: true });
  const byHand = join(byHandDir, 'old-journal.db');
  copyFileSync(db, byHand);

  const r = await salvagedAtStart(name, w, intact);
  console.log(`trunc: ${r.arrived} records of intact rows shipped, ${r.named} named in journal_salvage_lost`);
  await checkSays(name, undefined, 0, /: ok/);

  // The command, on the copy: into another gateway's journal (its daemon stopped); records get new seqs, the old one in a header.
  const cli = 'cli';
  config(cli, [kafka.bootstrap]);
  await checkSays(cli, byHand, 1, /DAMAGED/);
  const recovered = await salvage(cli, byHand);
  assert.equal(recovered, r.arrived, 'the command recovers the same records as the salvage at start');
  const d2 = Daemon.run(join(base, cli, 'sluice.toml')).start();
  try {
    const m = await kafkaUntil(`readings-${cli}`, (x) => x.length >= recovered, 'salvaged records shipped');
    assert.equal(m.length, recovered, 'each once');
    const old = m.map((x) => Number(x.headers['sluice.salvaged_seq'])).sort((a, b) => a - b);
    assert.deepEqual(old, intact.flatMap((row) => seqsOf([[row.firstSeq, row.lastSeq]])), 'exactly the intact rows, each record with its old seq in sluice.salvaged_seq');
    for (const x of m) assert.ok(sameReading(x, w.records.get(Number(x.headers['sluice.salvaged_seq']))!));
  } finally {
    assert.equal(await d2.stop(), 0);
  }
});

test('(b) B-tree pages garbled in a 10,000-record journal (quick_check fails): salvaged at start; every intact row ships once, every other record is named; set-aside file gone; ingest goes on', async () => {
  const name = 'garble';
  const db = await unshippedJournal(name, 1000);
  const w = witness(name, db);
  const { layout } = w;
  assert.ok(layout.leaves.length >= 4, `enough leaves to hit the middle (${layout.leaves.length})`);
  const rowsOf = (leaf: number): RowPages[] => layout.rows.filter((r) => r.leaf === leaf);
  console.log(`garble: ${layout.rows.length} rows in ${layout.leaves.length} leaves: ${layout.leaves.map((l) => rowsOf(l).map((r) => `${r.lastSeq - r.firstSeq + 1}/${r.overflow.length}`).join(' ')).join(' | ')}`);
  const leaf = layout.leaves[Math.floor(layout.leaves.length / 2)]!;
  // A leaf in the middle (its rows become unreachable), an overflow page of a later row (its chain
  // broken), and the data of a third row (its checksum fails). The first row after the leaf stays
  // intact: salvage must not step over it.
  const later = layout.rows.filter((r) => r.firstSeq > rowsOf(leaf)[0]!.firstSeq && r.leaf !== leaf && r.overflow.length >= 2);
  assert.ok(rowsOf(leaf).length > 0 && later.length >= 4, 'rows with overflow pages after the leaf');
  const chainRow = later[1]!;
  const dataRow = later[3]!;
  garblePages(db, [leaf, chainRow.overflow[1]!], layout.pageSize);
  garblePages(db, [dataRow.overflow[0]!], layout.pageSize, 4);
  const hit = new Set([leaf, chainRow.overflow[1]!, dataRow.overflow[0]!]);
  const intact = layout.rows.filter((r) => !r.pages.some((p) => hit.has(p)));
  assert.equal(layout.rows.length - intact.length, rowsOf(leaf).length + 2);
  await checkSays(name, undefined, 1, /quick_check/);

  const r = await salvagedAtStart(name, w, intact);
  console.log(`garble: pages ${[...hit].join(', ')} of ${layout.rows.length} rows in ${layout.leaves.length} leaves; ${r.arrived} records of intact rows shipped, ${r.named} named in journal_salvage_lost`);
  assert.ok(r.named > 0);
  await checkSays(name, undefined, 0, /: ok/);
});

test('(f) only row data garbled (quick_check passes): not set aside; the damaged rows are named exactly in journal_row_corrupt gap records, the rest ships once', async () => {
  const name = 'rowdata';
  const db = await unshippedJournal(name, 300);
  const w = witness(name, db);
  const withChains = w.layout.rows.filter((r) => r.overflow.length >= 1);
  console.log(`rowdata: ${w.layout.rows.length} rows (records/overflow pages): ${w.layout.rows.map((r) => `${r.lastSeq - r.firstSeq + 1}/${r.overflow.length}`).join(' ')}`);
  assert.ok(withChains.length >= 4, `rows with overflow pages: ${withChains.length}`);
  const hitRows = [withChains[1]!, withChains[withChains.length - 2]!];
  garblePages(db, hitRows.map((r) => r.overflow[0]!), w.layout.pageSize, 4);
  await checkSays(name, undefined, 1, /checksum/);
  const intact = w.layout.rows.filter((r) => !hitRows.includes(r));
  const { daemon, gaps } = await startsAndAlarms(name, /journal_row_corrupt/);
  try {
    assert.ok(!daemon.lines.some((l) => /journal unusable: set aside/.test(l)), 'a sound B-tree is not set aside');
    const intactRecords = intact.reduce((s, r) => s + r.lastSeq - r.firstSeq + 1, 0);
    const readings = await readingsWith(name, intactRecords);
    const all = await kafkaUntil(`gaps-${name}`, (m) => gapPayloads(m).filter((g) => g.reason === 'journal_row_corrupt').length >= 2, 'both damaged rows reported');
    assert.ok(gapPayloads(gaps).every((g) => g.reason !== 'journal_set_aside'));
    const rowGaps = gapPayloads(all).filter((g) => g.reason === 'journal_row_corrupt');
    assert.deepEqual(rowGaps.map((g) => seqsOf(g.ranges).length), hitRows.map((r) => r.lastSeq - r.firstSeq + 1), 'one gap record per damaged row, with its count');
    accountForDamage(w.records, intact, readings, all, /^journal_row_corrupt$/);
  } finally {
    assert.equal(await daemon.stop(), 0);
  }
});

test('(e) header garbled (application_id and schema version): set aside as ours (not foreign: no crash loop) and salvaged whole: all 3000 ship once, no loss named', async () => {
  const name = 'header';
  const db = await unshippedJournal(name, 300);
  const w = witness(name, db);
  const fd = openSync(db, 'r+');
  try {
    writeSync(fd, randomBytes(4), 0, 4, 60); // user_version
    writeSync(fd, randomBytes(4), 0, 4, 68); // application_id
  } finally {
    closeSync(fd);
  }
  await checkSays(name, undefined, 1, /header damaged/);
  const r = await salvagedAtStart(name, w, w.layout.rows);
  assert.deepEqual([r.arrived, r.named], [3000, 0]);
  await checkSays(name, undefined, 0, /: ok/);
});

test('(c) journal.path is a directory: refused untouched (not set aside), the daemon exits 6 saying why', async () => {
  const name = 'dir';
  const db = join(base, name, 'journal.db');
  config(name, [kafka.bootstrap]);
  mkdirSync(db, { recursive: true });
  const daemon = Daemon.run(join(base, name, 'sluice.toml')).start();
  await daemon.wait();
  assert.equal(daemon.exitCode, 6);
  assert.ok(daemon.lines.some((l) => /is a directory, not a sluice journal; refusing to touch it/.test(l)), daemon.lines.join('\n'));
  assert.ok(statSync(db).isDirectory());
  assert.deepEqual(readdirSync(join(base, name)).sort(), ['journal.db', 'sluice.toml'], 'nothing set aside or created beside it');
});

test('(d) WAL deleted while running: logged, checkpointed, reopened; kill -9 and restart lose nothing', async () => {
  const name = 'wal';
  const db = join(base, name, 'journal.db');
  const daemon = Daemon.run(config(name, [DEAD])).start();
  const pub = new Publisher(mosquitto.url);
  try {
    await daemon.waitForLog(/subscribed/);
    await pub.connect();
    assert.equal(await pub.publishMany(10, 100), 1000);
    await waitFor(() => journalCounts(db).records === 1000, { what: 'first half journaled' });
    assert.ok(existsSync(`${db}-wal`) && statSync(`${db}-wal`).size > 0, 'the records sit in the WAL');
    unlinkSync(`${db}-wal`);
    await daemon.waitForLog(/WAL file was deleted while running/, 20000);
    assert.equal(await pub.publishMany(10, 100, { start: 100 }), 1000);
    await waitFor(() => journalCounts(db).records >= 2000, { what: 'second half journaled (the WAL alarm is a record too)' });
    await daemon.kill9();
  } finally {
    await pub.close();
    await daemon.stop();
  }
  const d2 = Daemon.run(config(name, [kafka.bootstrap])).start();
  try {
    const all = expectedReadings(10, 200);
    const m = await kafkaUntil(`readings-${name}`, (x) => checkDelivery(x, all).missing.length === 0, 'all 2000 in Kafka');
    assert.deepEqual(checkDelivery(m, all).missing, []);
    const gaps = await kafkaUntil(`gaps-${name}`, (x) => gapPayloads(x).some((g) => g.reason === 'journal_wal_deleted'), 'WAL alarm in Kafka');
    assert.ok(gapPayloads(gaps).every((g) => g.count === 0), 'the alarm reports no loss');
  } finally {
    assert.equal(await d2.stop(), 0);
  }
});
