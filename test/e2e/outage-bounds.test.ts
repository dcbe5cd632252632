import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { brokersForFile } from '../helpers/brokers.js';
import { Daemon, writeConfig } from '../helpers/daemon.js';
import { accountSeqs, evictedSeqs, gapPayloads } from '../helpers/gaps.js';
import { journalCounts } from '../helpers/journal-file.js';
import { consumeOrEmpty, type KafkaMessage, consumeUntil } from '../helpers/kcat.js';
import { Publisher } from '../helpers/publisher.js';
import { checkDelivery, expectedReadings } from '../helpers/verify.js';
import { waitFor } from '../helpers/wait-for.js';

const { dir: base, mosquitto, kafka } = brokersForFile({ kafkaAway: true });

const kafkaUntil = (topic: string, done: (m: KafkaMessage[]) => boolean, what: string, timeoutMs?: number): Promise<KafkaMessage[]> =>
  consumeUntil(() => kafka.bootstrap, topic, done, what, timeoutMs);

test('drop_oldest past max_bytes with Kafka down: the oldest go, gap records name exactly the evicted seqs, the rest arrive', async () => {
  await kafka.stop();
  const dir = join(base, 'drop');
  const config = writeConfig({
    dir,
    mqttUrl: mosquitto.url,
    brokers: [kafka.bootstrap],
    clientId: 'drop',
    journalExtra: 'max_bytes = 1048576',
    mqttExtra: 'overflow = "drop_oldest"',
    sinkExtra: 'gap_topic = "gaps-drop"',
    routes: [{ match: 'dev/+device/#', topic: 'readings-drop', key: '{device}' }],
  });
  const daemon = Daemon.run(config).start();
  try {
    await daemon.waitForLog(/subscribed/);
    const pub = new Publisher(mosquitto.url);
    await pub.connect();
    assert.equal(await pub.publishMany(20, 500), 10000, 'drop_oldest never holds the broker back');
    await pub.close();
    await daemon.waitForLog(/journal evicted records/, 30000);
    const journaled = await waitFor(() => (journalCounts(join(dir, 'journal.db')).records > 0 ? journalCounts(join(dir, 'journal.db')).records : null), { what: 'records journaled' });
    assert.ok(journaled < 10000, `the journal holds fewer than all (${journaled})`);

    await kafka.start();
    const gapsDone = (m: KafkaMessage[]): boolean => m.some((x) => (x.payload ?? '').includes('evicted_max_bytes'));
    const gaps = await kafkaUntil('gaps-drop', gapsDone, 'gap records in Kafka');
    const readings = await kafkaUntil('readings-drop', (m) => {
      const acc = accountSeqs(m, gaps);
      return acc.delivered + acc.evicted >= 10000;
    }, 'every reading delivered or accounted for');
    const finalGaps = await consumeOrEmpty(kafka.bootstrap, 'gaps-drop');
    const acc = accountSeqs(readings, finalGaps);
    assert.deepEqual(acc.unaccounted, [], 'every seq is delivered, evicted-with-a-gap-record, or a gap record');
    assert.deepEqual(acc.both, [], 'no seq is both delivered and reported lost');
    assert.equal(acc.delivered + acc.evicted, 10000, 'each published reading was journaled once: delivered or evicted');
    assert.ok(acc.evicted > 1000, `a real eviction happened (${acc.evicted})`);
    const gapRec = finalGaps.map((m) => JSON.parse(m.payload!)).find((g) => g.reason === 'evicted_max_bytes');
    assert.equal(gapRec.source, 'mqtt:local');
    assert.ok(gapRec.count > 0 && gapRec.bytes > 0 && gapRec.first_time && gapRec.last_time);
    // The oldest went: the newest readings all arrived (a batch that was on the wire when the
    // journal filled is protected from eviction, so "oldest" is not exact at the very start).
    const arrived = new Set(readings.map((m) => { const r = JSON.parse(m.payload!) as { device: string; n: number }; return `${r.device}#${r.n}`; }));
    for (let d = 0; d < 20; d++) for (let n = 400; n < 500; n++) assert.ok(arrived.has(`d${d}#${n}`), `newest reading d${d}#${n} arrived`);
  } finally {
    assert.equal(await daemon.stop(), 0);
  }
});

test('route priority and overflow past max_bytes with Kafka down: the low-priority route is evicted though newest, a backpressure route never', async () => {
  await kafka.stop();
  const dir = join(base, 'prio');
  const config = writeConfig({
    dir,
    mqttUrl: mosquitto.url,
    brokers: [kafka.bootstrap],
    clientId: 'prio',
    subscribe: 'prio/#',
    journalExtra: 'max_bytes = 1048576',
    mqttExtra: 'overflow = "drop_oldest"',
    sinkExtra: 'gap_topic = "gaps-prio"',
    routes: [
      { match: 'prio/crit/+device/#', topic: 'crit-prio', key: '{device}', overflow: 'backpressure' },
      { match: 'prio/hi/+device/#', topic: 'hi-prio', key: '{device}', priority: 10 },
      { match: 'prio/lo/+device/#', topic: 'lo-prio', key: '{device}', priority: -10 },
    ],
  });
  const daemon = Daemon.run(config).start();
  try {
    await daemon.waitForLog(/subscribed/);
    const pub = new Publisher(mosquitto.url);
    await pub.connect();
    // Oldest first: critical (source drop_oldest, route backpressure), then high, then the low-priority bulk.
    assert.equal(await pub.publishMany(5, 100, { prefix: 'prio/crit' }), 500);
    assert.equal(await pub.publishMany(5, 200, { prefix: 'prio/hi' }), 1000);
    assert.equal(await pub.publishMany(20, 500, { prefix: 'prio/lo' }), 10000);
    await pub.close();
    await daemon.waitForLog(/journal evicted records/, 30000);

    await kafka.start();
    const crit = await kafkaUntil('crit-prio', (m) => checkDelivery(m, expectedReadings(5, 100)).missing.length === 0, 'all 500 critical readings');
    const hi = await kafkaUntil('hi-prio', (m) => checkDelivery(m, expectedReadings(5, 200)).missing.length === 0, 'all 1000 high-priority readings');
    const gapsDone = (m: KafkaMessage[]): boolean => m.some((x) => (x.payload ?? '').includes('evicted_max_bytes'));
    const gaps = await kafkaUntil('gaps-prio', gapsDone, 'gap records in Kafka');
    const lo = await kafkaUntil('lo-prio', (m) => {
      const acc = accountSeqs([...crit, ...hi, ...m], gaps);
      return acc.delivered + acc.evicted >= 11500;
    }, 'every low-priority reading delivered or accounted for');
    const finalGaps = await consumeOrEmpty(kafka.bootstrap, 'gaps-prio');
    const acc = accountSeqs([...crit, ...hi, ...lo], finalGaps);
    assert.deepEqual(acc.unaccounted, [], 'every seq is delivered, evicted-with-a-gap-record, or a gap record');
    assert.deepEqual(acc.both, [], 'no seq is both delivered and reported lost');
    assert.equal(acc.delivered + acc.evicted, 11500, 'each published reading was journaled once: delivered or evicted');
    assert.ok(acc.evicted > 1000, `a real eviction happened (${acc.evicted})`);
    console.log(`priority: ${acc.evicted} low-priority readings evicted, ${acc.delivered} delivered (500 critical, 1000 high among them)`);
    const kept = new Set([...crit, ...hi].map((m) => Number(m.headers['sluice.seq'])));
    const evicted = evictedSeqs(gapPayloads(finalGaps));
    assert.deepEqual([...evicted].filter((s) => kept.has(s)), [], 'no critical or high-priority seq is named in a gap record');
    const loSeqs = lo.map((m) => Number(m.headers['sluice.seq']));
    assert.ok(Math.min(...evicted) > Math.max(...kept), 'the evicted seqs are all newer than every critical and high-priority one: priority beat age');
    assert.ok(loSeqs.length > 0, 'the newest low-priority readings still arrived');
  } finally {
    assert.equal(await daemon.stop(), 0);
  }
});

test('backpressure past max_bytes with Kafka down: sluice stops taking, the broker holds the surplus, nothing is lost', async () => {
  await kafka.stop();
  const dir = join(base, 'bp');
  const config = writeConfig({
    dir,
    mqttUrl: mosquitto.url,
    brokers: [kafka.bootstrap],
    clientId: 'bp',
    journalExtra: 'max_bytes = 1048576',
    routes: [{ match: 'dev/+device/#', topic: 'readings-bp', key: '{device}' }],
  });
  const daemon = Daemon.run(config).start();
  try {
    await daemon.waitForLog(/subscribed/);
    const pub = new Publisher(mosquitto.url);
    await pub.connect();
    assert.equal(await pub.publishMany(20, 500), 10000);
    await pub.close();
    await daemon.waitForLog(/journal full/, 30000);
    await daemon.waitForLog(/disconnecting from the MQTT broker/, 30000);
    const held = journalCounts(join(dir, 'journal.db')).records;
    assert.ok(held < 10000, `the journal stopped below everything (${held}); the broker holds the rest`);

    await kafka.start();
    const messages = await kafkaUntil('readings-bp', (m) => checkDelivery(m, expectedReadings(20, 500)).missing.length === 0, 'all 10,000 in Kafka');
    const r = checkDelivery(messages, expectedReadings(20, 500));
    assert.deepEqual(r.missing, []);
    assert.deepEqual(r.outOfOrder, []);
    assert.equal(r.duplicates, 0, 'acks for what was journaled went out before the pause');
    await daemon.waitForLog(/journal has room again/);
    assert.ok(!daemon.lines.some((l) => /records lost/.test(l)), 'no loss was reported');
  } finally {
    assert.equal(await daemon.stop(), 0);
  }
});

test('max_bytes_per_second caps a drain: measured over the drain, within 10% of the cap', async () => {
  await kafka.stop();
  const dir = join(base, 'rate');
  const cap = 100_000;
  const config = writeConfig({
    dir,
    mqttUrl: mosquitto.url,
    brokers: [kafka.bootstrap],
    clientId: 'rate',
    sinkExtra: `max_bytes_per_second = ${cap}\nbatch_max_bytes = 16384\nprogress_interval_s = 2`,
    routes: [{ match: 'dev/+device/#', topic: 'readings-rate', key: '{device}' }],
  });
  const daemon = Daemon.run(config).start();
  try {
    await daemon.waitForLog(/subscribed/);
    const pub = new Publisher(mosquitto.url);
    await pub.connect();
    assert.equal(await pub.publishMany(10, 450), 4500);
    await pub.close();
    await waitFor(() => journalCounts(join(dir, 'journal.db')).records === 4500, { what: "backlog journaled" });
    await kafka.start();
    const messages = await kafkaUntil('readings-rate', (m) => m.length >= 4500, "4500 in Kafka");
    const drained = await daemon.waitForLog(/backlog drained/, 60000);
    const reachable = daemon.lines.find((l) => /Kafka reachable again/.test(l));
    assert.ok(reachable, 'the drain began');
    const t0 = Date.parse((JSON.parse(reachable!) as { time: string }).time);
    const t1 = Date.parse((JSON.parse(drained) as { time: string }).time);
    let bytes = 0;
    for (const m of messages) {
      bytes += Buffer.byteLength(m.payload ?? '') + Buffer.byteLength(m.key ?? '');
      for (const [k, v] of Object.entries(m.wireHeaders)) bytes += Buffer.byteLength(k) + Buffer.byteLength(v);
    }
    const rate = bytes / ((t1 - t0) / 1000);
    console.log(`drain rate ${Math.round(rate)} B/s with cap ${cap} B/s over ${t1 - t0} ms`);
    assert.ok(bytes > 8 * cap, `enough bytes to measure (${bytes})`);
    assert.ok(Math.abs(rate - cap) <= cap * 0.1, `drain rate ${Math.round(rate)} B/s vs cap ${cap} B/s`);
    assert.ok(daemon.lines.some((l) => /draining backlog/.test(l) && /etaS/.test(l)), 'progress lines with ETA while draining');
  } finally {
    assert.equal(await daemon.stop(), 0);
  }
});
