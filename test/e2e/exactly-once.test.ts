import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { brokersForFile } from '../helpers/brokers.js';
import { Daemon, writeConfig } from '../helpers/daemon.js';
import { journalCounts } from '../helpers/journal-file.js';
import { consumeOrEmpty, READ_COMMITTED } from '../helpers/kcat.js';
import { Publisher, StreamPublisher } from '../helpers/publisher.js';
import { checkDelivery, expectedReadings, randomMs, sinkDuplicates } from '../helpers/verify.js';
import { delay, waitFor } from '../helpers/wait-for.js';

const { dir: base, mosquitto, kafka } = brokersForFile();


test('exactly_once: records and the cursor commit together; the cursor record is in the compacted topic; a restart sends nothing again', async () => {
  const dir = join(base, 'eos-basic');
  const topic = 'readings-eos-basic';
  const config = writeConfig({ dir, mqttUrl: mosquitto.url, brokers: [kafka.bootstrap], clientId: 'sluice-eos-basic', routes: [{ match: 'dev/+device/#', topic, key: '{device}' }], sinkExtra: 'delivery = "exactly_once"\n' });
  let daemon = Daemon.run(config).start();
  const pub = new Publisher(mosquitto.url);
  try {
    await daemon.waitForLog(/subscribed/);
    await pub.connect();
    assert.equal(await pub.publishMany(10, 50), 500);
    const messages = await waitFor(async () => {
      const m = await consumeOrEmpty(kafka.bootstrap, topic, READ_COMMITTED);
      return m.length >= 500 ? m : null;
    }, { timeoutMs: 60000, intervalMs: 500, what: '500 committed messages' });
    const r = checkDelivery(messages, expectedReadings(10, 50));
    assert.deepEqual(r.missing, []);
    assert.equal(r.duplicates, 0);
    const cursors = (await consumeOrEmpty(kafka.bootstrap, 'sluice-cursors', READ_COMMITTED)).filter((m) => m.key === 'test-gw/kafka');
    assert.ok(cursors.length >= 1);
    assert.equal((JSON.parse(cursors.at(-1)!.payload!) as { seq: number }).seq, 500);
    await waitFor(() => journalCounts(join(dir, 'journal.db')).rows === 0, { what: 'journal drained' });
    assert.equal(await daemon.stop(), 0);

    daemon = Daemon.run(config).start();
    // The MQTT session survives the restart: no new subscription.
    await daemon.waitForLog(/connected to MQTT broker/);
    assert.equal(await pub.publishMany(10, 10, { start: 50 }), 100);
    const after = await waitFor(async () => {
      const m = await consumeOrEmpty(kafka.bootstrap, topic, READ_COMMITTED);
      return m.length >= 600 ? m : null;
    }, { timeoutMs: 60000, intervalMs: 500, what: '600 committed messages' });
    const r2 = checkDelivery(after, expectedReadings(10, 60));
    assert.deepEqual(r2.missing, []);
    assert.equal(r2.duplicates, 0);
  } finally {
    await pub.close().catch(() => undefined);
    assert.equal(await daemon.stop(), 0);
  }
});

const results: string[] = [];

for (const delivery of ['at_least_once', 'exactly_once'] as const) {
  test(`kill -9 at random moments, 12 times, while publishing and while draining (delivery ${delivery}): nothing missing; duplicates counted by a read_committed consumer`, async () => {
    const dir = join(base, `crash-${delivery}`);
    const topic = `readings-crash-${delivery}`;
    const config = writeConfig({ dir, mqttUrl: mosquitto.url, brokers: [kafka.bootstrap], clientId: `sluice-crash-${delivery}`, sinkName: `crash-${delivery.replace(/_/g, '-')}`, routes: [{ match: 'dev/+device/#', topic, key: '{device}' }], sinkExtra: `delivery = "${delivery}"\n` });
    let daemon = Daemon.run(config).start();
    await daemon.waitForLog(/subscribed/);
    const publisher = new StreamPublisher(mosquitto.url, 50, 2000);
    await publisher.start();
    let kills = 0;
    const killAndRestart = async (): Promise<void> => {
      await daemon.kill9();
      assert.equal(daemon.exitSignal, 'SIGKILL');
      kills++;
      daemon = Daemon.run(config).start();
    };
    try {
      // Phase 1: publishing and shipping: kills land between Kafka's ack and the cursor update.
      for (let i = 0; i < 8; i++) {
        await delay(randomMs(300, 1500));
        await killAndRestart();
      }
      const acked = await publisher.stop();
      // Phase 2: the backlog drains; kills hit the drain.
      for (let i = 0; i < 4; i++) {
        await delay(randomMs(300, 1200));
        await killAndRestart();
      }
      const expectedCount = publisher.ackedCount;
      assert.ok(expectedCount > 5000, `published ${expectedCount}`);
      const messages = await waitFor(
        async () => {
          const m = await consumeOrEmpty(kafka.bootstrap, topic, READ_COMMITTED);
          return checkDelivery(m, acked).missing.length === 0 ? m : null;
        },
        { timeoutMs: 120000, intervalMs: 2000, what: 'every acknowledged message in Kafka' },
      );
      await waitFor(() => journalCounts(join(dir, 'journal.db')).rows === 0, { timeoutMs: 60000, what: 'journal drained' });
      // Read again once drained: nothing may arrive late.
      const final = await consumeOrEmpty(kafka.bootstrap, topic, READ_COMMITTED);
      const result = checkDelivery(final, acked);
      // Two kinds of duplicates: the same journal record sent twice (same sluice.seq: the sink's
      // doing, what exactly_once removes), and one reading journaled twice under two seqs (the MQTT
      // broker redelivered it because its PUBACK was lost in the kill: the source's doing).
      const sinkDups = sinkDuplicates(final);
      const line = `crash test (delivery ${delivery}): ${kills} kill -9, ${expectedCount} acknowledged by the broker, ${result.distinct} distinct in Kafka (read_committed), ${result.duplicates} duplicates: ${sinkDups} the same record sent again (same sluice.seq), ${result.duplicates - sinkDups} MQTT redeliveries journaled twice; ${result.missing.length} missing`;
      results.push(line);
      console.log(line);
      assert.ok(messages.length > 0);
      assert.deepEqual(result.missing, []);
      assert.deepEqual(result.outOfOrder, []);
      // MQTT redeliveries of messages already journaled are recognised at ingest (redelivery filter).
      assert.equal(result.duplicates - sinkDups, 0, 'no reading journaled twice under two seqs');
      if (delivery === 'exactly_once') {
        assert.equal(sinkDups, 0, 'exactly once: no journal record twice in Kafka');
        // Counted by reading (device, n), not only by seq: zero of any kind.
        assert.equal(result.duplicates, 0, 'exactly once: no reading twice in Kafka');
      }
    } catch (err) {
      console.log(`last daemon log lines:\n${daemon.lines.slice(-30).join('\n')}`);
      throw err;
    } finally {
      await publisher.stop().catch(() => undefined);
      await daemon.stop();
    }
  });
}
