import assert from 'node:assert/strict';
import { test } from 'node:test';
import { join } from 'node:path';
import { Daemon, writeConfig } from '../helpers/daemon.js';
import { journalCounts } from '../helpers/journal-file.js';
import { consumeOrEmpty } from '../helpers/kcat.js';
import { StreamPublisher } from '../helpers/publisher.js';
import { brokersForFile } from '../helpers/brokers.js';
import { checkDelivery, randomMs, sinkDuplicates } from '../helpers/verify.js';
import { delay, waitFor } from '../helpers/wait-for.js';

const { dir: base, mosquitto, kafka } = brokersForFile();


for (const durability of ['power', 'crash'] as const) {
  test(`kill -9 at random moments, 12 times, while publishing and while draining (durability ${durability}): no acknowledged message is missing`, async () => {
    const dir = join(base, `gw-${durability}`);
    const topic = `readings-${durability}`;
    const config = writeConfig({ dir, mqttUrl: mosquitto.url, brokers: [kafka.bootstrap], durability, clientId: `sluice-crash-${durability}`, routes: [{ match: 'dev/+device/#', topic, key: '{device}' }] });
    let daemon = Daemon.run(config).start();
    await daemon.waitForLog(/subscribed/);
    const publisher = new StreamPublisher(mosquitto.url, 50, 3000);
    await publisher.start();
    let kills = 0;
    const killAndRestart = async (): Promise<void> => {
      await daemon.kill9();
      assert.equal(daemon.exitSignal, 'SIGKILL');
      kills++;
      daemon = Daemon.run(config).start();
    };
    try {
      // Phase 1: publishing, Kafka up: kills hit ingest and shipping at once.
      for (let i = 0; i < 6; i++) {
        await delay(randomMs(200, 1500));
        await killAndRestart();
      }
      // Phase 2: Kafka away, a backlog builds in the journal; kills hit ingest alone.
      await kafka.stop();
      for (let i = 0; i < 2; i++) {
        await delay(randomMs(500, 1500));
        await killAndRestart();
      }
      await delay(2000);
      const acked = await publisher.stop();
      // Phase 3: Kafka back, the backlog drains; kills hit the drain.
      await kafka.start();
      for (let i = 0; i < 4; i++) {
        await delay(randomMs(300, 1500));
        await killAndRestart();
      }
      assert.ok(kills >= 10);
      const expectedCount = publisher.ackedCount;
      assert.ok(expectedCount > 10000, `published ${expectedCount}`);
      const messages = await waitFor(
        async () => {
          const m = await consumeOrEmpty(kafka.bootstrap, topic);
          const r = checkDelivery(m, acked);
          return r.missing.length === 0 ? m : null;
        },
        { timeoutMs: 120000, intervalMs: 2000, what: 'every acknowledged message in Kafka' },
      );
      const result = checkDelivery(messages, acked);
      // Duplicates with the same sluice.seq are the sink's resends (at-least-once); a reading under
      // two seqs would be an MQTT redelivery journaled twice, which the source recognises.
      const sinkDups = sinkDuplicates(messages);
      console.log(`crash test (durability ${durability}): ${kills} kill -9, ${expectedCount} acknowledged by the broker, ${result.distinct} distinct in Kafka, ${result.duplicates} duplicates (${sinkDups} the same record sent again, ${result.duplicates - sinkDups} MQTT redeliveries journaled twice), ${result.missing.length} missing, publisher reconnects ${publisher.drops}`);
      assert.deepEqual(result.missing, []);
      assert.deepEqual(result.outOfOrder, []);
      assert.equal(result.duplicates - sinkDups, 0, 'no reading journaled twice under two seqs');
      await waitFor(() => journalCounts(join(dir, 'journal.db')).rows === 0, { what: 'journal drained' });
    } finally {
      await publisher.stop().catch(() => undefined);
      await daemon.stop();
    }
  });
}
