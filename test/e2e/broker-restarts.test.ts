import assert from 'node:assert/strict';
import { test } from 'node:test';
import { join } from 'node:path';
import { Daemon, writeConfig } from '../helpers/daemon.js';
import { journalCounts } from '../helpers/journal-file.js';
import { consumeOrEmpty } from '../helpers/kcat.js';
import { Publisher, StreamPublisher } from '../helpers/publisher.js';
import { brokersForFile } from '../helpers/brokers.js';
import { checkDelivery, expectedReadings } from '../helpers/verify.js';
import { delay, waitFor } from '../helpers/wait-for.js';

const { dir: base, mosquitto, kafka } = brokersForFile();

test('Mosquitto restarted mid-stream (with persistence): no acknowledged message is lost', async () => {
  const dir = join(base, 'gw-mqtt');
  const topic = 'readings-mqtt-restart';
  const config = writeConfig({ dir, mqttUrl: mosquitto.url, brokers: [kafka.bootstrap], clientId: 'sluice-mqtt-restart', routes: [{ match: 'dev/+device/#', topic, key: '{device}' }] });
  const daemon = Daemon.run(config).start();
  try {
    await daemon.waitForLog(/subscribed/);
    const stream = new StreamPublisher(mosquitto.url, 20, 2000);
    await stream.start();
    await delay(1500);
    // Restart the broker under the running stream and sluice's live subscription.
    await mosquitto.restart();
    await daemon.waitForLog(/lost connection to MQTT broker/);
    await waitFor(() => daemon.countLogs(/connected to MQTT broker/) >= 2, { what: 'sluice to reconnect' });
    await delay(1500);
    const acked = await stream.stop();
    const pub = new Publisher(mosquitto.url);
    await pub.connect();
    await pub.publishMany(20, 50, { start: 100000 });
    await pub.close();
    expectedReadings(20, 50, 100000, acked);
    const expectedCount = [...acked.values()].reduce((s, l) => s + l.length, 0);
    const messages = await waitFor(
      async () => {
        const m = await consumeOrEmpty(kafka.bootstrap, topic);
        return checkDelivery(m, acked).missing.length === 0 ? m : null;
      },
      { timeoutMs: 60000, intervalMs: 1000, what: 'every acknowledged message in Kafka' },
    );
    const r = checkDelivery(messages, acked);
    console.log(`mosquitto restart: ${expectedCount} acknowledged, ${r.distinct} distinct in Kafka, ${r.duplicates} duplicates`);
    assert.deepEqual(r.missing, []);
    assert.deepEqual(r.outOfOrder, []);
  } finally {
    assert.equal(await daemon.stop(), 0);
  }
});

test('Kafka restarted mid-drain: the backlog arrives whole', async () => {
  const dir = join(base, 'gw-kafka');
  const topic = 'readings-kafka-restart';
  // Tiny batches so the drain takes long enough (seconds) to be interrupted.
  const config = writeConfig({ dir, mqttUrl: mosquitto.url, brokers: [kafka.bootstrap], clientId: 'sluice-kafka-restart', sinkExtra: 'batch_max_records = 10', routes: [{ match: 'dev/+device/#', topic, key: '{device}' }] });
  await kafka.stop();
  const daemon = Daemon.run(config).start();
  try {
    await daemon.waitForLog(/subscribed/);
    const pub = new Publisher(mosquitto.url);
    await pub.connect();
    await pub.publishMany(50, 400);
    await pub.close();
    const expected = expectedReadings(50, 400);
    await waitFor(() => journalCounts(join(dir, 'journal.db')).records === 20000, { what: 'backlog journaled' });
    await kafka.start();
    // The first confirmed batch is logged; the restart begins while most of the backlog is still journaled.
    await daemon.waitForLog(/Kafka reachable again/, 60000, 10);
    const partial = journalCounts(join(dir, 'journal.db')).records;
    assert.ok(partial > 0, 'the restart should begin mid-drain, with records left');
    await kafka.stop();
    await kafka.start();
    const messages = await waitFor(
      async () => {
        const m = await consumeOrEmpty(kafka.bootstrap, topic);
        return checkDelivery(m, expected).missing.length === 0 ? m : null;
      },
      { timeoutMs: 90000, intervalMs: 1000, what: 'the whole backlog in Kafka' },
    );
    const r = checkDelivery(messages, expected);
    console.log(`kafka restart mid-drain: 20000 published, ${r.distinct} distinct in Kafka, ${r.duplicates} duplicates`);
    assert.deepEqual(r.missing, []);
    assert.deepEqual(r.outOfOrder, []);
    await waitFor(() => journalCounts(join(dir, 'journal.db')).rows === 0, { what: 'journal drained' });
  } finally {
    assert.equal(await daemon.stop(), 0);
  }
});
