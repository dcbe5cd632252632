import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { brokersForFile } from '../helpers/brokers.js';
import { Daemon, writeConfig } from '../helpers/daemon.js';
import { accountSeqs, gapPayloads } from '../helpers/gaps.js';
import { createTopic } from '../helpers/kafka.js';
import { consumeOrEmpty, type KafkaMessage, consumeUntil } from '../helpers/kcat.js';
import { Publisher, StreamPublisher } from '../helpers/publisher.js';
import { checkDelivery, expectedReadings, sinkDuplicates } from '../helpers/verify.js';
import { waitFor } from '../helpers/wait-for.js';

// newest_first needs one partition, so its offsets are the order in which sluice shipped.
const { dir: base, mosquitto, kafka } = brokersForFile({ kafkaAway: true, whileUp: (k) => createTopic(k.bootstrap, 'readings-newest', 1) });

const kafkaUntil = (topic: string, done: (m: KafkaMessage[]) => boolean, what: string, timeoutMs?: number): Promise<KafkaMessage[]> =>
  consumeUntil(() => kafka.bootstrap, topic, done, what, timeoutMs);

/** Distinct readings (device#n) in Kafka. */
function distinctReadings(m: KafkaMessage[]): number {
  return new Set(m.map((x) => { const r = JSON.parse(x.payload!) as { device: string; n: number }; return `${r.device}#${r.n}`; })).size;
}

test('soak: three cycles of Kafka down, ingest past max_bytes (drop_oldest), kill -9, restart, Kafka up, drain: every seq delivered or named by a gap record', async () => {
  const dir = join(base, 'soak');
  const config = writeConfig({
    dir,
    mqttUrl: mosquitto.url,
    brokers: [kafka.bootstrap],
    clientId: 'soak',
    journalExtra: 'max_bytes = 524288',
    mqttExtra: 'overflow = "drop_oldest"',
    sinkExtra: 'gap_topic = "gaps-soak"',
    routes: [{ match: 'dev/+device/#', topic: 'readings-soak', key: '{device}' }],
  });
  const devices = 10;
  const per = 300;
  let daemon = Daemon.run(config).start();
  const all = new Map<string, number[]>();
  let published = 0;
  try {
    for (let cycle = 0; cycle < 3; cycle++) {
      await kafka.stop();
      await daemon.waitForLog(/subscribed|"sessionPresent":true/);
      const pub = new Publisher(mosquitto.url);
      await pub.connect();
      assert.equal(await pub.publishMany(devices, per, { start: cycle * per }), devices * per);
      await pub.close();
      published += devices * per;
      expectedReadings(devices, per, cycle * per, all);
      await waitFor(() => daemon.countLogs(/journal evicted records/) > 0, { timeoutMs: 60000, what: `an eviction in cycle ${cycle}` });
      await daemon.kill9();
      daemon = Daemon.run(config).start();
      await daemon.waitForLog(/journal open/);
      await kafka.start();
      // Drained: every published reading is in Kafka or was evicted (named by a gap record).
      await waitFor(
        async () => {
          const readings = await consumeOrEmpty(kafka.bootstrap, 'readings-soak');
          const gaps = await consumeOrEmpty(kafka.bootstrap, 'gaps-soak');
          return distinctReadings(readings) + accountSeqs(readings, gaps).evicted >= published ? true : null;
        },
        { timeoutMs: 120000, intervalMs: 1000, what: `cycle ${cycle} drained` },
      );
    }
    const readings = await consumeOrEmpty(kafka.bootstrap, 'readings-soak');
    const gaps = await consumeOrEmpty(kafka.bootstrap, 'gaps-soak');
    const acc = accountSeqs(readings, gaps);
    const lostReadings = checkDelivery(readings, all).missing.length;
    console.log(`soak: published ${published}, seqs ${acc.maxSeq}, delivered seqs ${acc.delivered}, evicted ${acc.evicted}, gap records ${gaps.length}, readings not in Kafka ${lostReadings}, duplicates ${checkDelivery(readings, all).duplicates}`);
    assert.deepEqual(acc.unaccounted, [], 'every seq is delivered, evicted-with-a-gap-record, or a gap record');
    assert.deepEqual(acc.both, [], 'no seq is both delivered and reported lost');
    assert.ok(acc.evicted > 0, 'eviction happened');
    // Each reading is journaled once (MQTT redeliveries are recognised), so the readings missing in
    // Kafka are exactly the evicted seqs: a silent loss cannot hide behind a double journaling.
    assert.equal(checkDelivery(readings, all).duplicates - sinkDuplicates(readings), 0, 'no reading journaled under two seqs');
    assert.equal(lostReadings, acc.evicted, `the readings not in Kafka are exactly the evicted seqs (${lostReadings} missing, ${acc.evicted} evicted)`);
    assert.ok(gapPayloads(gaps).every((g) => g.reason.startsWith('evicted_') || g.count === 0), `only evictions lose records: ${JSON.stringify([...new Set(gapPayloads(gaps).map((g) => g.reason))])}`);
  } finally {
    assert.equal(await daemon.stop(), 0);
  }
});

test('drain_order newest_first: readings published after Kafka returns overtake the backlog; nothing is lost', async () => {
  // readings-newest has one partition (created before the file's tests).
  await kafka.stop();
  const dir = join(base, 'newest');
  const config = writeConfig({
    dir,
    mqttUrl: mosquitto.url,
    brokers: [kafka.bootstrap],
    clientId: 'newest',
    // The cap stretches the drain over seconds so fresh readings arrive while it runs.
    sinkExtra: 'drain_order = "newest_first"\nmax_bytes_per_second = 150000\nbatch_max_bytes = 16384\ngap_topic = "gaps-newest"',
    routes: [{ match: 'dev/+device/#', topic: 'readings-newest', key: '{device}' }],
  });
  const daemon = Daemon.run(config).start();
  const stream = new StreamPublisher(mosquitto.url, 5, 50);
  try {
    await daemon.waitForLog(/subscribed/);
    const pub = new Publisher(mosquitto.url);
    await pub.connect();
    const BACKLOG = 1_000_000;
    assert.equal(await pub.publishMany(10, 500, { start: BACKLOG }), 5000);
    await pub.close();
    await daemon.waitForLog(/cannot ship to Kafka/, 60000);
    await kafka.start();
    await daemon.waitForLog(/newest_first: sending new records before the backlog|Kafka reachable again/, 60000);
    await stream.start();
    const backlog = expectedReadings(10, 500, BACKLOG);
    await kafkaUntil('readings-newest', (m) => checkDelivery(m, backlog).missing.length === 0, 'the backlog drained');
    const fresh = await stream.stop();
    const messages = await kafkaUntil('readings-newest', (m) => checkDelivery(m, fresh).missing.length === 0, 'every fresh reading in Kafka');
    assert.deepEqual(checkDelivery(messages, backlog).missing, [], 'the whole backlog arrived');
    assert.deepEqual(checkDelivery(messages, fresh).missing, [], 'every fresh reading arrived');
    const n = (m: KafkaMessage): number => (JSON.parse(m.payload!) as { n: number }).n;
    const lastBacklog = Math.max(...messages.filter((m) => n(m) >= BACKLOG).map((m) => m.offset));
    const freshBeforeBacklogEnd = messages.filter((m) => n(m) < BACKLOG && m.offset < lastBacklog).length;
    console.log(`newest_first: ${freshBeforeBacklogEnd} of ${stream.ackedCount} fresh readings shipped before the backlog's last (offset ${lastBacklog})`);
    assert.ok(freshBeforeBacklogEnd > 0, 'fresh readings reached Kafka before the backlog finished');
    assert.ok(!daemon.lines.some((l) => /records lost/.test(l)));
  } finally {
    await stream.stop().catch(() => undefined);
    assert.equal(await daemon.stop(), 0);
  }
});
