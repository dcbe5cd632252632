import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { join } from 'node:path';
import { pino } from 'pino';
import { parseConfig } from '../../src/config/load.js';
import { SqliteJournal } from '../../src/journal/sqlite-journal.js';
import { Metrics } from '../../src/metrics.js';
import { MqttSource } from '../../src/sources/mqtt-source.js';
import { systemClock } from '../../src/util/clock.js';
import { MosquittoBroker } from '../helpers/mosquitto.js';
import { Publisher, reading } from '../helpers/publisher.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait-for.js';

const tmp = tempDir();
// No persistence: a restart forgets every session, as a broker replaced or wiped would.
const broker = new MosquittoBroker(join(tmp.path, 'mosquitto'), { persistence: false });
before(() => broker.start());
after(async () => {
  await broker.stop();
  tmp.cleanup();
});

for (const protocolVersion of [4, 5] as const) {
  test(`MQTT ${protocolVersion === 5 ? '5' : '3.1.1'}: when the broker has lost the session, sluice subscribes again and data flows`, async () => {
    const config = parseConfig(`
[journal]
path = "${join(tmp.path, `v${protocolVersion}`, 'journal.db')}"
[[mqtt]]
url = "${broker.url}"
client_id = "session-v${protocolVersion}"
protocol_version = ${protocolVersion}
reconnect_min_ms = 50
reconnect_max_ms = 300
[[mqtt.subscribe]]
topic = "sess/v${protocolVersion}/#"
`);
    const logger = pino({ level: 'silent' });
    const journal = new SqliteJournal({ ...config.journal, logger, clock: systemClock });
    await journal.start();
    const source = new MqttSource(config.mqtt[0]!, { journal, logger, clock: systemClock, metrics: new Metrics(), gatewayId: 'gw' });
    await source.start();
    try {
      await waitFor(() => source.connected, { what: 'connected' });
      const pub = new Publisher(broker.url);
      await waitFor(async () => {
        await pub.connect();
        await pub.publish(`sess/v${protocolVersion}/d1`, reading('d1', 1));
        await pub.close();
        return journal.committedSeq >= 1;
      }, { what: 'first message journaled', intervalMs: 300 });
      await broker.restart();
      await waitFor(() => !source.connected, { what: 'disconnect noticed', timeoutMs: 5000 }).catch(() => undefined);
      await waitFor(() => source.connected, { what: 'reconnected' });
      const before = journal.committedSeq;
      await waitFor(async () => {
        await pub.connect();
        await pub.publish(`sess/v${protocolVersion}/d1`, reading('d1', 2));
        await pub.close();
        return journal.committedSeq > before;
      }, { what: 'a message after the session was lost', intervalMs: 300, timeoutMs: 10000 });
      assert.ok(journal.committedSeq > before);
    } finally {
      await source.stop();
      await journal.stop();
    }
  });
}
