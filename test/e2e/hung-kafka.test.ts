import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Daemon, writeConfig } from '../helpers/daemon.js';
import { createTopic, KafkaBroker } from '../helpers/kafka.js';
import { consumeOrEmpty, type KafkaMessage, consumeUntil } from '../helpers/kcat.js';
import { MosquittoBroker } from '../helpers/mosquitto.js';
import { StreamPublisher } from '../helpers/publisher.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { tempDir } from '../helpers/tmp.js';
import { checkDelivery } from '../helpers/verify.js';
import { waitFor } from '../helpers/wait-for.js';

// Kafka sits behind a TCP proxy that can hang or reset every connection, and tells clients to use
// the proxy's port, so every request sluice makes goes through it. Topics are not auto-created,
// so a missing topic is a real condition sluice must wait through.
const tmp = tempDir();
const mosquitto = new MosquittoBroker(join(tmp.path, 'mosquitto'));
let kafkaPort = 0;
const proxy = new TcpProxy(() => ({ host: '127.0.0.1', port: kafkaPort }));
let kafka: KafkaBroker;

before(async () => {
  await mosquitto.start();
  await proxy.start();
  kafka = new KafkaBroker(join(tmp.path, 'kafka'), { advertisedPort: proxy.port, autoCreateTopics: false });
  // The proxy's target is read per connection; the broker's port is fixed by start().
  const starting = kafka.start();
  await waitFor(() => kafka.port || null, { what: 'kafka port' });
  kafkaPort = kafka.port;
  await starting;
  await createTopic(kafka.bootstrap, 'readings-hung');
});

after(async () => {
  await proxy.stop();
  await kafka?.stop();
  await mosquitto.stop();
  tmp.cleanup();
});

const kafkaUntil = (topic: string, done: (m: KafkaMessage[]) => boolean, what: string, timeoutMs?: number): Promise<KafkaMessage[]> =>
  consumeUntil(() => kafka.bootstrap, topic, done, what, timeoutMs);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('Kafka hangs longer than every timeout, then answers; then its connections are reset: every acknowledged reading arrives, nothing is reported lost', async () => {
  const dir = join(tmp.path, 'hung');
  const config = writeConfig({
    dir,
    mqttUrl: mosquitto.url,
    brokers: [`127.0.0.1:${proxy.port}`],
    clientId: 'hung',
    sinkExtra: 'gap_topic = "gaps-hung"',
    routes: [{ match: 'dev/+device/#', topic: 'readings-hung', key: '{device}' }],
  });
  const daemon = Daemon.run(config).start();
  const stream = new StreamPublisher(mosquitto.url, 5, 100);
  const t0 = Date.now();
  const phase = (what: string): void => console.log(`hung kafka: ${what} at ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  try {
    await daemon.waitForLog(/subscribed/);
    await stream.start();
    await kafkaUntil('readings-hung', (m) => m.length > 100, 'readings flowing before the stall');

    // Packets vanish for 8 s after the first failure: longer than request_timeout_ms (5 s) and connection_timeout_ms (2 s).
    phase('flowing; stall');
    proxy.stall();
    await daemon.waitForLog(/cannot ship to Kafka/, 30000);
    await sleep(8000);
    phase('release');
    proxy.release();
    await daemon.waitForLog(/Kafka reachable again/, 60000);
    assert.equal(daemon.countLogs(/cannot ship to Kafka/), 1, 'one "cannot ship" line for the outage, not one per retry');

    phase('reachable again');
    // Connections reset mid-stream.
    await sleep(2000);
    proxy.drop();
    await sleep(1000);
    proxy.drop();
    await sleep(3000);
    const acked = await stream.stop();
    phase('publisher stopped');
    const messages = await kafkaUntil('readings-hung', (m) => checkDelivery(m, acked).missing.length === 0, 'every acknowledged reading in Kafka');
    phase('all in Kafka');
    const r = checkDelivery(messages, acked);
    assert.deepEqual(r.missing, []);
    assert.deepEqual(r.outOfOrder, [], 'order per key holds across the stall and the resets');
    assert.ok(stream.ackedCount > 1500, `a real stream went through (${stream.ackedCount})`);
    assert.equal(daemon.countLogs(/cannot ship to Kafka/), daemon.countLogs(/Kafka reachable again/), 'every outage logged once and its end logged once');
    assert.ok(!daemon.lines.some((l) => /records lost|alarm recorded|programming error/.test(l)), 'no loss, alarm or fatal error was reported');
    assert.deepEqual(await consumeOrEmpty(kafka.bootstrap, 'gaps-hung'), [], 'no gap record');
    assert.ok(daemon.running, 'the daemon kept running');
  } finally {
    await stream.stop().catch(() => undefined);
    assert.equal(await daemon.stop(), 0);
  }
});

test('a topic that does not exist yet: records wait with a clear log line and flow once the topic is created', async () => {
  const dir = join(tmp.path, 'notopic');
  const config = writeConfig({
    dir,
    mqttUrl: mosquitto.url,
    brokers: [`127.0.0.1:${proxy.port}`],
    clientId: 'notopic',
    sinkExtra: 'gap_topic = "gaps-notopic"',
    routes: [{ match: 'dev/+device/#', topic: 'readings-later', key: '{device}' }],
  });
  const daemon = Daemon.run(config).start();
  const stream = new StreamPublisher(mosquitto.url, 5, 100);
  try {
    await daemon.waitForLog(/subscribed/);
    await stream.start();
    const line = await daemon.waitForLog(/cannot ship to Kafka/, 60000);
    console.log(`missing-topic log line: ${line}`);
    assert.match(line, /topic|partition/i, 'the log line says the topic is the problem');
    await sleep(3000);
    assert.deepEqual(await consumeOrEmpty(kafka.bootstrap, 'readings-later'), [], 'the topic was not created behind our back');
    await createTopic(kafka.bootstrap, 'readings-later');
    await daemon.waitForLog(/Kafka reachable again/, 60000);
    await sleep(2000);
    const acked = await stream.stop();
    const messages = await kafkaUntil('readings-later', (m) => checkDelivery(m, acked).missing.length === 0, 'every acknowledged reading in Kafka');
    const r = checkDelivery(messages, acked);
    assert.deepEqual(r.missing, []);
    assert.deepEqual(r.outOfOrder, []);
    assert.equal(daemon.countLogs(/cannot ship to Kafka/), 1, 'logged once while waiting');
    assert.ok(!daemon.lines.some((l) => /records lost|programming error/.test(l)), 'nothing was failed or reported lost');
  } finally {
    await stream.stop().catch(() => undefined);
    assert.equal(await daemon.stop(), 0);
  }
});
