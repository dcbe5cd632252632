import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { brokersForFile } from '../helpers/brokers.js';
import { journalRecords, seqsOf } from '../helpers/btree-pages.js';
import { Daemon, writeConfig } from '../helpers/daemon.js';
import { gapPayloads } from '../helpers/gaps.js';
import { journalCounts } from '../helpers/journal-file.js';
import { consumeUntil, type KafkaMessage } from '../helpers/kcat.js';
import { freePort } from '../helpers/net.js';
import { Publisher } from '../helpers/publisher.js';
import { checkDelivery, expectedReadings, sinkDuplicates } from '../helpers/verify.js';
import { waitFor } from '../helpers/wait-for.js';

const { dir: base, mosquitto, kafka } = brokersForFile();
const DEAD = '127.0.0.1:1';

function config(dir: string, brokers: string[], httpPort?: number): string {
  return writeConfig({ dir, mqttUrl: mosquitto.url, brokers, clientId: 'wal-lost', httpPort, sinkExtra: 'gap_topic = "gaps-wal-lost"', routes: [{ match: 'dev/+device/#', topic: 'readings-wal-lost', key: '{device}' }] });
}

/** The highest seq in the database file alone (what is left if the WAL goes now), read from a copy. */
function seqsInFileAlone(db: string, scratch: string): number {
  rmSync(scratch, { recursive: true, force: true });
  mkdirSync(scratch, { recursive: true });
  copyFileSync(db, join(scratch, 'j.db'));
  try {
    return Math.max(0, ...journalRecords(join(scratch, 'j.db')).keys());
  } catch (err) {
    // Before the first checkpoint even the tables exist only in the WAL.
    if (/no such table/.test(String(err))) return 0;
    throw err;
  }
}

function procIo(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of readFileSync(`/proc/${pid}/io`, 'utf8').trim().split('\n')) {
    const [k, v] = line.split(': ');
    out[k!] = Number(v);
  }
  return out;
}

const readingOf = (payload: Buffer | string): string => {
  const r = JSON.parse(payload.toString()) as { device: string; n: number };
  return `${r.device}#${r.n}`;
};

test('WAL deleted after a kill -9 with Kafka away: one gap record names exactly the acknowledged readings lost, none twice; readings after the restart flow', async () => {
  const dir = join(base, 'wal-lost');
  const db = join(dir, 'journal.db');
  const port = await freePort();
  const pub = new Publisher(mosquitto.url);
  await pub.connect();
  // A first run stops cleanly with 5,000 journaled: they are in the database file.
  const d0 = Daemon.run(config(dir, [DEAD])).start();
  try {
    await d0.waitForLog(/subscribed/);
    assert.equal(await pub.publishMany(10, 500), 5000);
    await waitFor(() => journalCounts(db).records === 5000, { what: '5,000 journaled' });
  } finally {
    assert.equal(await d0.stop(), 0);
  }
  const daemon = Daemon.run(config(dir, [DEAD], port)).start();
  let published = 500;
  try {
    await daemon.waitForLog(/subscribed|"sessionPresent":true/);
    assert.equal(await pub.publishMany(10, 500, { start: 500 }), 5000);
    published = 1000;
    await waitFor(() => journalCounts(db).records === 10 * published, { what: 'all 10,000 journaled' });
    // The test needs records that only the WAL holds; between two checkpoints there always are, unless one just ran.
    while (seqsInFileAlone(db, join(base, 'scratch')) >= 10 * published) {
      assert.equal(await pub.publishMany(10, 10, { start: published }), 100);
      published += 10;
      await waitFor(() => journalCounts(db).records === 10 * published, { what: 'the extra readings journaled' });
    }
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const commits = Number(/^sluice_journal_commits_total (\d+)/m.exec(metrics)![1]);
    const io = procIo(daemon.pid!);
    console.log(
      `daemon, ${10 * published} readings in ${commits} commits: wrote ${io.write_bytes} B to the storage layer (write_bytes), ${io.wchar} B by write calls; ` +
        `the mark's part is ${34 * commits} B by write calls (34 B per commit, ${((3400 * commits) / io.wchar!).toFixed(3)} % of them) and one page in the page cache`,
    );
    await daemon.kill9();
  } finally {
    await pub.close();
    await daemon.stop();
  }

  // What the kill left, read from a copy with its WAL: which reading has which seq.
  const witness = join(base, 'witness');
  mkdirSync(witness, { recursive: true });
  copyFileSync(db, join(witness, 'j.db'));
  copyFileSync(`${db}-wal`, join(witness, 'j.db-wal'));
  const all = journalRecords(join(witness, 'j.db'));
  assert.equal(all.size, 10 * published, 'every acknowledged reading was journaled before the kill');
  const inFile = seqsInFileAlone(db, join(base, 'scratch'));
  const lostSeqs = [...all.keys()].filter((s) => s > inFile).sort((a, b) => a - b);
  assert.ok(lostSeqs.length > 0 && inFile > 0, `part in the file, part in the WAL only (file holds up to ${inFile})`);

  unlinkSync(`${db}-wal`);
  if (existsSync(`${db}-shm`)) unlinkSync(`${db}-shm`);
  const d2 = Daemon.run(config(dir, [kafka.bootstrap])).start();
  try {
    await d2.waitForLog(/subscribed|"sessionPresent":true/);
    await d2.waitForLog(/journal lost committed records while sluice was down/);
    const gapMsgs = await consumeUntil(() => kafka.bootstrap, 'gaps-wal-lost', (m) => gapPayloads(m).some((g) => g.reason === 'journal_lost_at_start'), 'journal_lost_at_start in Kafka', 90000);
    const lostGaps = gapPayloads(gapMsgs).filter((g) => g.reason === 'journal_lost_at_start');
    assert.equal(lostGaps.length, 1, 'one gap record');
    const named = seqsOf(lostGaps[0]!.ranges);
    assert.deepEqual(named, lostSeqs, 'the gap names exactly the seqs only the deleted WAL held');
    assert.equal(lostGaps[0]!.count, lostSeqs.length);

    const fresh = expectedReadings(10, 20, 100000);
    const p2 = new Publisher(mosquitto.url);
    await p2.connect();
    assert.equal(await p2.publishMany(10, 20, { start: 100000 }), 200);
    await p2.close();
    const acked = expectedReadings(10, published);
    const lostReadings = new Set(lostSeqs.map((s) => readingOf(all.get(s)!.payload)));
    const msgs = await consumeUntil(
      () => kafka.bootstrap,
      'readings-wal-lost',
      (m) => checkDelivery(m, fresh).missing.length === 0 && checkDelivery(m, acked).missing.length <= lostReadings.size,
      'the file\'s readings and the new ones in Kafka',
      90000,
    );
    const old = msgs.filter((m) => JSON.parse(m.payload!).n < 100000);
    const missing = checkDelivery(old, acked).missing;
    assert.deepEqual(new Set(missing), lostReadings, 'the acknowledged readings missing from Kafka are exactly those of the seqs the gap names');
    assert.equal(missing.length, lostSeqs.length);
    assert.equal(sinkDuplicates(msgs), 0, 'no record twice');
    assert.equal(checkDelivery(msgs, acked).duplicates, 0, 'no reading twice');
    const seqOf = (m: KafkaMessage): number => Number(m.headers['sluice.seq']);
    for (const m of old) assert.equal(readingOf(m.payload!), readingOf(all.get(seqOf(m))!.payload), `seq ${seqOf(m)} is the reading it was journaled as`);
    const lastLost = lostSeqs[lostSeqs.length - 1]!;
    const newSeqs = msgs.filter((m) => JSON.parse(m.payload!).n >= 100000).map(seqOf);
    assert.ok(Math.min(...newSeqs) > lastLost, `seqs after the restart (from ${Math.min(...newSeqs)}) continue above the lost ones (to ${lastLost})`);
    assert.ok(gapMsgs.every((m) => seqOf(m) > lastLost), 'the gap record has a seq of its own above them');
    console.log(`wal-lost: file held seqs 1-${inFile}; the deleted WAL held ${lostSeqs[0]}-${lastLost} (${lostSeqs.length} readings): named by the gap record; ${old.length} old readings shipped`);
  } finally {
    assert.equal(await d2.stop(), 0);
  }
});
