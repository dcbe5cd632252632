import assert from 'node:assert/strict';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, rmSync, statSync, truncateSync, unlinkSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { test } from 'node:test';
import { brokersForFile } from '../helpers/brokers.js';
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

function setAsideFile(name: string): string {
  const f = readdirSync(join(base, name)).find((x) => x.startsWith('journal.db.corrupt-') && !x.endsWith('-wal') && !x.endsWith('-shm'));
  assert.ok(f, `a set-aside file in ${readdirSync(join(base, name)).join(', ')}`);
  return join(base, name, f);
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

/** Salvages the set-aside file into the stopped daemon's journal; returns how many were recovered. */
async function salvage(name: string, file: string): Promise<number> {
  const r = await runCli(['journal', 'salvage', '-c', join(base, name, 'sluice.toml'), file]);
  assert.equal(r.code, 0, `salvage: ${r.stdout}${r.stderr}`);
  const m = /salvaged (\d+) records/.exec(r.stdout);
  assert.ok(m, r.stdout);
  console.log(`${name}: ${r.stdout.trim()}`);
  return Number(m[1]);
}

/** Readings from the first phase (n < 100000) that are in Kafka, distinct. */
function oldArrived(m: KafkaMessage[]): number {
  const s = new Set<string>();
  for (const x of m) {
    const r = JSON.parse(x.payload!) as { device: string; n: number };
    if (r.n < 100000) s.add(`${r.device}#${r.n}`);
  }
  return s.size;
}

async function setAsideCase(name: string, damage: (db: string) => void, salvageable: boolean): Promise<void> {
  const db = await unshippedJournal(name, 300);
  damage(db);
  const { daemon, gaps } = await startsAndAlarms(name, /journal_set_aside/);
  try {
    await daemon.waitForLog(/journal unusable: set aside/);
    const alarm = gapPayloads(gaps).find((g) => g.reason === 'journal_set_aside')!;
    assert.match(alarm.detail ?? '', /salvage/, 'the alarm says what was set aside and how to recover it');
  } finally {
    assert.equal(await daemon.stop(), 0);
  }
  const aside = setAsideFile(name);
  await checkSays(name, aside, 1, /DAMAGED/);
  await checkSays(name, undefined, 0, /: ok/);
  if (!salvageable) return;
  const recovered = await salvage(name, aside);
  assert.ok(recovered > 0, 'part of the damaged journal was readable');
  const d2 = Daemon.run(join(base, name, 'sluice.toml')).start();
  try {
    const m = await kafkaUntil(`readings-${name}`, (x) => oldArrived(x) >= recovered, 'salvaged records shipped');
    assert.equal(oldArrived(m), recovered, 'exactly the salvaged old readings arrived');
    assert.ok(m.some((x) => x.headers['sluice.salvaged_seq']), 'salvaged records carry their old seq');
  } finally {
    assert.equal(await d2.stop(), 0);
  }
}

test('(a) journal truncated to half: starts, sets it aside, alarms in Kafka, keeps ingesting; check says DAMAGED; salvage recovers the readable part', async () => {
  await setAsideCase('trunc', (db) => truncateSync(db, Math.floor(statSync(db).size / 2)), true);
});

test('(b) 64 KiB garbled in the middle: starts, reports the damage (set aside, or damaged rows as gap records), keeps ingesting', async () => {
  const name = 'garble';
  const db = await unshippedJournal(name, 300);
  const size = statSync(db).size;
  assert.ok(size > 256 * 1024, `journal big enough to garble its middle (${size})`);
  const fd = openSync(db, 'r+');
  writeSync(fd, randomBytes(64 * 1024), 0, 64 * 1024, Math.floor(size / 2) - 32 * 1024);
  closeSync(fd);
  const { daemon, gaps } = await startsAndAlarms(name, /journal_set_aside|journal_row_corrupt/);
  let setAside = false;
  try {
    setAside = daemon.lines.some((l) => /journal unusable: set aside/.test(l));
    console.log(`garble: ${setAside ? 'set aside' : 'damaged rows reported as gaps'}: ${JSON.stringify(gapPayloads(gaps).map((g) => [g.reason, g.count]))}`);
    if (!setAside) {
      // The undamaged rows ship; every seq of the old journal is delivered or named by a gap record.
      const lost = gapPayloads(gaps).filter((g) => g.reason === 'journal_row_corrupt').reduce((s, g) => s + g.count, 0);
      assert.ok(lost > 0);
      await kafkaUntil(`readings-${name}`, (m) => oldArrived(m) + lost >= 3000, 'every undamaged old reading shipped');
    }
  } finally {
    assert.equal(await daemon.stop(), 0);
  }
  if (setAside) {
    await checkSays(name, setAsideFile(name), 1, /DAMAGED/);
    const recovered = await salvage(name, setAsideFile(name));
    assert.ok(recovered > 0);
  }
  await checkSays(name, undefined, 0, /: ok/);
});

test('(e) header garbled (application_id and schema version): starts, sets it aside as damaged (not a foreign file: no crash loop), check says DAMAGED; salvage recovers all 3000', async () => {
  const name = 'header';
  await setAsideCase(name, (db) => {
    const fd = openSync(db, 'r+');
    try {
      writeSync(fd, randomBytes(4), 0, 4, 60); // user_version
      writeSync(fd, randomBytes(4), 0, 4, 68); // application_id
    } finally {
      closeSync(fd);
    }
  }, true);
  const out = await checkSays(name, setAsideFile(name), 1, /header damaged/);
  assert.match(out, /3000 readable records/, 'only the header was damaged: every row is readable');
});

test('(c) journal file replaced by a directory (unreadable): starts, sets it aside, alarms, keeps ingesting; check says DAMAGED', async () => {
  await setAsideCase('dir', (db) => {
    rmSync(db);
    mkdirSync(db);
  }, false);
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
