import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Daemon, writeConfig } from '../helpers/daemon.js';
import { journalCounts } from '../helpers/journal-file.js';
import { KafkaBroker } from '../helpers/kafka.js';
import { consumeOrEmpty } from '../helpers/kcat.js';
import { MosquittoBroker } from '../helpers/mosquitto.js';
import { Publisher } from '../helpers/publisher.js';
import { tempDir } from '../helpers/tmp.js';
import { checkDelivery, expectedReadings } from '../helpers/verify.js';
import { waitFor } from '../helpers/wait-for.js';

const tmp = tempDir();
const mosquitto = new MosquittoBroker(join(tmp.path, 'mosquitto'));
const kafkaA = new KafkaBroker(join(tmp.path, 'kafka-a'), { heapMb: 384 });
const kafkaB = new KafkaBroker(join(tmp.path, 'kafka-b'), { heapMb: 384 });
before(async () => {
  await mosquitto.start();
  await kafkaA.start();
  await kafkaB.start();
  // Cluster B is down from the start (its port is fixed by the first start).
  await kafkaB.stop();
});
after(async () => {
  await kafkaA.stop();
  await kafkaB.stop();
  await mosquitto.stop();
  tmp.cleanup();
});

async function waitForAll(kafka: KafkaBroker, topic: string, n: number): Promise<Awaited<ReturnType<typeof consumeOrEmpty>>> {
  return waitFor(
    async () => {
      const m = await consumeOrEmpty(kafka.bootstrap, topic);
      return m.length >= n ? m : null;
    },
    { timeoutMs: 90000, intervalMs: 500, what: `${n} messages in ${topic}` },
  );
}

test('two clusters, one stopped: the other gets everything while records stay journaled for the stopped one, which gets its backlog when it starts', async () => {
  const dir = join(tmp.path, 'gw');
  const config = writeConfig({
    dir,
    mqttUrl: mosquitto.url,
    brokers: [kafkaA.bootstrap],
    sinkName: 'a',
    routes: [{ match: 'dev/+device/#', topic: 'readings-a', key: '{device}' }],
    extraTables: `
[[sink]]
name = "b"
brokers = ["${kafkaB.bootstrap}"]
request_timeout_ms = 5000
connection_timeout_ms = 2000
retry_min_ms = 200
retry_max_ms = 2000
compression = "zstd"
[[sink.route]]
match = "dev/+device/#"
topic = "readings-b"
key = "{device}"
value_format = "envelope"
`,
  });
  const daemon = Daemon.run(config).start();
  try {
    await daemon.waitForLog(/subscribed/);
    const pub = new Publisher(mosquitto.url);
    await pub.connect();
    assert.equal(await pub.publishMany(20, 50), 1000);
    const first = await waitForAll(kafkaA, 'readings-a', 1000);
    await daemon.waitForLog(/"component":"sink:b".*cannot ship to Kafka|cannot ship to Kafka.*"component":"sink:b"/);
    // B has been failing and backing off for a while now; A must still take new records as they come.
    assert.equal(await pub.publishMany(20, 50, { start: 50 }), 1000);
    await pub.close();
    const all = await waitForAll(kafkaA, 'readings-a', 2000);
    assert.ok(first.length >= 1000);
    const ra = checkDelivery(all, expectedReadings(20, 100));
    assert.deepEqual(ra.missing, []);
    assert.equal(ra.duplicates, 0);
    // Nothing is deleted while B has not confirmed it.
    assert.equal(journalCounts(join(dir, 'journal.db')).records, 2000, 'every record kept for the stopped cluster');

    await kafkaB.start();
    const bMessages = await waitForAll(kafkaB, 'readings-b', 2000);
    // B's route wraps values in the JSON envelope; unwrap to check delivery.
    const unwrapped = bMessages.map((m) => {
      const e = JSON.parse(m.payload!) as { gateway: string; payload_encoding: string; payload: unknown; topic: string };
      assert.equal(e.gateway, 'test-gw');
      assert.equal(e.payload_encoding, 'json');
      return { ...m, payload: JSON.stringify(e.payload) };
    });
    const rb = checkDelivery(unwrapped, expectedReadings(20, 100));
    assert.deepEqual(rb.missing, []);
    assert.equal(rb.duplicates, 0);
    assert.deepEqual(rb.outOfOrder, []);
    await waitFor(() => journalCounts(join(dir, 'journal.db')).rows === 0, { timeoutMs: 30000, what: 'journal drained once both confirmed' });
    // A was not disturbed: still exactly 2000.
    assert.equal((await consumeOrEmpty(kafkaA.bootstrap, 'readings-a')).length, 2000);
  } finally {
    assert.equal(await daemon.stop(), 0);
  }
});
