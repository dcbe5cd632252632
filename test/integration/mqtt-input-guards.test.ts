import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { parseConfig, type MqttConfig } from '../../src/config/load.js';
import { SqliteJournal } from '../../src/journal/sqlite-journal.js';
import { Metrics } from '../../src/metrics.js';
import { MqttSource } from '../../src/sources/mqtt-source.js';
import { systemClock } from '../../src/util/clock.js';
import { MosquittoBroker } from '../helpers/mosquitto.js';
import { Publisher } from '../helpers/publisher.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait-for.js';

/*
 * Values MQTT cannot carry (a 70,000-character topic filter or client id) made MQTT.js throw from
 * inside its packet writer: an uncaught TypeError and a stack trace. The config schema refuses
 * them now, so these tests hand MqttSource such a config directly: the runtime must not crash
 * either, but log the reason, count it and keep running.
 */

const tmp = tempDir();
const broker = new MosquittoBroker(join(tmp.path, 'mosquitto'));
before(() => broker.start());
after(async () => {
  await broker.stop();
  tmp.cleanup();
});

function harness(name: string, mutate: (cfg: MqttConfig) => MqttConfig): { source: MqttSource; journal: SqliteJournal; metrics: Metrics; lines: string[] } {
  const config = parseConfig(`
[journal]
path = "${join(tmp.path, name, 'journal.db')}"
[[mqtt]]
url = "${broker.url}"
client_id = "guard-${name}"
reconnect_min_ms = 50
reconnect_max_ms = 200
[[mqtt.subscribe]]
topic = "guard/${name}/#"
`);
  const lines: string[] = [];
  const logger = pino({ level: 'debug' }, new Writable({ write: (chunk: Buffer, _enc, cb) => void (lines.push(chunk.toString()), cb()) }));
  const journal = new SqliteJournal({ ...config.journal, logger, clock: systemClock });
  const metrics = new Metrics();
  const source = new MqttSource(mutate(config.mqtt[0]!), { journal, logger, clock: systemClock, metrics, gatewayId: 'gw' });
  return { source, journal, metrics, lines };
}

const noStackTrace = (lines: string[]): void => assert.ok(!lines.some((l) => /\\n\s+at /.test(l) || /"stack"/.test(l)), 'no stack trace logged');

test('a 70,000-character topic filter is refused with its reason and counted; the other filters are subscribed and data flows', async () => {
  const long = `guard/long/${'x'.repeat(70000)}`;
  const h = harness('long', (c) => ({ ...c, subscribe: [{ topic: long, qos: 1 }, ...c.subscribe] }));
  await h.journal.start();
  await h.source.start();
  const pub = new Publisher(broker.url);
  try {
    await waitFor(() => h.source.connected && h.source.subscriptions?.['guard/long/#'] === 1, { what: 'the valid filter subscribed' });
    await pub.connect();
    await pub.publish('guard/long/d1', 'hello');
    await waitFor(() => h.journal.committedSeq >= 1, { what: 'a message journaled' });
    assert.equal(h.metrics.get('sluice_mqtt_client_errors_total', { source: 'mqtt:mqtt', reason: 'subscribe_invalid_filter' }), 1);
    assert.ok(h.lines.some((l) => /topic filter is 70011 bytes; MQTT allows at most 65535/.test(l)), 'the reason is logged');
    assert.ok(h.lines.every((l) => l.length < 5000), 'the 70,000 characters are not logged whole');
    noStackTrace(h.lines);
  } finally {
    await pub.close();
    await h.source.stop();
    await h.journal.stop();
  }
});

test('a 70,000-character client id is never sent: the source logs why, counts each attempt, retries with backoff and keeps running', async () => {
  const h = harness('cid', (c) => ({ ...c, clientId: 'c'.repeat(70000) }));
  await h.journal.start();
  await h.source.start();
  try {
    await waitFor(() => h.metrics.get('sluice_mqtt_client_errors_total', { source: 'mqtt:mqtt', reason: 'connect_invalid' }) >= 3, { what: 'three attempts counted' });
    assert.equal(h.source.connectionState, 'waiting');
    assert.equal(h.lines.filter((l) => /client_id is 70000 bytes; MQTT allows at most 65535/.test(l)).length, 1, 'the reason is logged once');
    noStackTrace(h.lines);
  } finally {
    await h.source.stop();
    await h.journal.stop();
  }
});
