import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Daemon, writeConfig } from '../helpers/daemon.js';
import { journalCounts } from '../helpers/journal-file.js';
import { KafkaBroker, withAdmin } from '../helpers/kafka.js';
import { consumeOrEmpty } from '../helpers/kcat.js';
import { MosquittoBroker } from '../helpers/mosquitto.js';
import { Publisher, reading } from '../helpers/publisher.js';
import { tempDir } from '../helpers/tmp.js';
import { checkDelivery, expectedReadings } from '../helpers/verify.js';
import { waitFor } from '../helpers/wait-for.js';

const tmp = tempDir();
const mosquitto = new MosquittoBroker(join(tmp.path, 'mosquitto'));
// A broker that takes record batches up to 60 kB: a 100 kB incompressible reading is refused for good.
const kafka = new KafkaBroker(join(tmp.path, 'kafka'), { extraProps: ['message.max.bytes=60000'] });
before(async () => {
  await mosquitto.start();
  await kafka.start();
  // The dead-letter topic takes larger records than the broker's default.
  await withAdmin(kafka.bootstrap, (admin) => admin.createTopics({ topics: [{ topic: 'dead-letters', numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: '1000000' }] }], waitForLeaders: true }));
});
after(async () => {
  await kafka.stop();
  await mosquitto.stop();
  tmp.cleanup();
});

/** Publishes 10 readings, one oversized record, 10 more readings; returns the oversized payload. */
async function publishWithPoison(): Promise<Buffer> {
  const pub = new Publisher(mosquitto.url);
  await pub.connect();
  for (let n = 0; n < 10; n++) await pub.publish('dev/d0/reading', reading('d0', n));
  const big = Buffer.from(randomBytes(75000).toString('base64'));
  await pub.publish('dev/big/reading', big);
  for (let n = 10; n < 20; n++) await pub.publish('dev/d0/reading', reading('d0', n));
  await pub.close();
  return big;
}

async function readingsArrive(topic: string): Promise<void> {
  const messages = await waitFor(
    async () => {
      const m = (await consumeOrEmpty(kafka.bootstrap, topic)).filter((x) => x.key === 'd0');
      return m.length >= 20 ? m : null;
    },
    { timeoutMs: 60000, intervalMs: 500, what: `the 20 readings around the oversized one in ${topic}` },
  );
  const r = checkDelivery(messages, expectedReadings(1, 20));
  assert.deepEqual(r.missing, []);
  assert.deepEqual(r.outOfOrder, []);
}

test('an oversized record goes to the dead-letter topic with its reason; the records behind it are not held up', async () => {
  const dir = join(tmp.path, 'dlq');
  const config = writeConfig({
    dir,
    mqttUrl: mosquitto.url,
    brokers: [kafka.bootstrap],
    clientId: 'sluice-dlq',
    routes: [{ match: 'dev/+device/#', topic: 'readings-dlq', key: '{device}' }],
    sinkExtra: 'dead_letter_topic = "dead-letters"\n',
  });
  const daemon = Daemon.run(config).start();
  try {
    await daemon.waitForLog(/subscribed/);
    const big = await publishWithPoison();
    await readingsArrive('readings-dlq');
    const dead = await waitFor(async () => {
      const m = await consumeOrEmpty(kafka.bootstrap, 'dead-letters');
      return m.length >= 1 ? m : null;
    }, { timeoutMs: 30000, what: 'the dead letter' });
    assert.equal(dead.length, 1);
    assert.equal(dead[0]!.payload, big.toString());
    assert.equal(dead[0]!.headers['sluice.error.reason'], 'record_too_large');
    assert.equal(dead[0]!.headers['sluice.error.topic'], 'readings-dlq');
    assert.equal(dead[0]!.headers['sluice.topic'], 'dev/big/reading');
    assert.equal((await consumeOrEmpty(kafka.bootstrap, 'readings-dlq')).filter((m) => m.key === 'big').length, 0);
    await daemon.waitForLog(/sent to the dead-letter topic/);
    await waitFor(() => journalCounts(join(dir, 'journal.db')).rows === 0, { what: 'journal drained' });
  } finally {
    assert.equal(await daemon.stop(), 0);
  }
  assert.match(daemon.lines.find((l) => /final counters/.test(l)) ?? '', /sluice_sink_rejected_total\{[^}]*action=\\?"?dead_letter/);
});

test('without a dead-letter topic the oversized record is dropped with a gap record saying which; the rest ship', async () => {
  const dir = join(tmp.path, 'gap');
  const config = writeConfig({
    dir,
    mqttUrl: mosquitto.url,
    brokers: [kafka.bootstrap],
    clientId: 'sluice-gap',
    routes: [
      { match: 'dev/+device/#', topic: 'readings-gap', key: '{device}' },
      { match: 'sluice/gaps', topic: 'gaps' },
    ],
  });
  const daemon = Daemon.run(config).start();
  try {
    await daemon.waitForLog(/subscribed/);
    await publishWithPoison();
    await readingsArrive('readings-gap');
    const gaps = await waitFor(async () => {
      const m = await consumeOrEmpty(kafka.bootstrap, 'gaps');
      return m.length >= 1 ? m : null;
    }, { timeoutMs: 30000, what: 'the gap record' });
    assert.equal(gaps.length, 1);
    const gap = JSON.parse(gaps[0]!.payload!) as { reason: string; count: number; first_seq: number; sink: string; source: string; bytes: number };
    assert.equal(gap.reason, 'kafka_record_too_large');
    assert.equal(gap.count, 1);
    assert.equal(gap.sink, 'kafka');
    assert.equal(gap.source, 'mqtt:local');
    assert.equal(gap.bytes, 100000);
    assert.equal(typeof gap.first_seq, 'number');
    await waitFor(() => journalCounts(join(dir, 'journal.db')).rows === 0, { what: 'journal drained' });
  } finally {
    assert.equal(await daemon.stop(), 0);
  }
});
