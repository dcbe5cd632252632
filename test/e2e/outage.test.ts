import assert from 'node:assert/strict';
import { test } from 'node:test';
import { join } from 'node:path';
import { Daemon, writeConfig } from '../helpers/daemon.js';
import { journalCounts } from '../helpers/journal-file.js';
import { consumeOrEmpty } from '../helpers/kcat.js';
import { Publisher } from '../helpers/publisher.js';
import { brokersForFile } from '../helpers/brokers.js';
import { checkDelivery, expectedReadings } from '../helpers/verify.js';
import { waitFor } from '../helpers/wait-for.js';

const { dir: base, mosquitto, kafka } = brokersForFile({ kafkaAway: true });

test('Kafka away: 10,000 QoS 1 messages over 100 device topics are journaled, then all arrive in order per key and the journal drains', async () => {
  const dir = join(base, 'gw');
  const config = writeConfig({ dir, mqttUrl: mosquitto.url, brokers: [kafka.bootstrap] });
  const daemon = Daemon.run(config).start();
  try {
    await daemon.waitForLog(/subscribed/);
    const pub = new Publisher(mosquitto.url);
    await pub.connect();
    const acked = await pub.publishMany(100, 100);
    await pub.close();
    assert.equal(acked, 10000);
    await waitFor(() => journalCounts(join(dir, 'journal.db')).records === 10000, { what: 'all 10,000 journaled', timeoutMs: 30000 });
    await daemon.waitForLog(/cannot ship to Kafka/);
    assert.equal((await consumeOrEmpty('127.0.0.1:1', 'readings').catch(() => [])).length, 0);

    await kafka.start();
    const messages = await waitFor(
      async () => {
        const m = await consumeOrEmpty(kafka.bootstrap, 'readings');
        return m.length >= 10000 ? m : null;
      },
      { timeoutMs: 90000, intervalMs: 1000, what: '10,000 messages in Kafka' },
    );
    const result = checkDelivery(messages, expectedReadings(100, 100));
    assert.deepEqual(result.missing, []);
    assert.deepEqual(result.outOfOrder, []);
    assert.equal(result.duplicates, 0);
    const sample = messages[0]!;
    assert.equal(sample.headers['sluice.gateway'], 'test-gw');
    assert.equal(sample.headers['sluice.source'], 'mqtt:local');
    assert.match(sample.headers['sluice.topic'] ?? '', /^dev\/d\d+\/reading$/);
    assert.match(sample.headers['sluice.seq'] ?? '', /^\d+$/);
    assert.equal(String(sample.ts), sample.headers['sluice.time']);
    assert.equal(sample.key, JSON.parse(sample.payload!).device);
    await waitFor(() => journalCounts(join(dir, 'journal.db')).rows === 0, { what: 'journal drained to empty' });
    await daemon.waitForLog(/Kafka reachable again/);
  } finally {
    assert.equal(await daemon.stop(), 0);
  }
});
