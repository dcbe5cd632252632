import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import mqtt, { type IPublishPacket } from 'mqtt';
import { pino } from 'pino';
import { parseConfig } from '../../src/config/load.js';
import { SqliteJournal } from '../../src/journal/sqlite-journal.js';
import { Metrics } from '../../src/metrics.js';
import { MqttSource } from '../../src/sources/mqtt-source.js';
import { systemClock } from '../../src/util/clock.js';
import { MosquittoBroker } from '../helpers/mosquitto.js';
import { Publisher } from '../helpers/publisher.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait-for.js';

/*
 * Subscriptions follow the config across restarts with a persistent session (the broker keeps
 * the old subscriptions): what the config drops is unsubscribed, what it adds or changes is
 * subscribed. Real Mosquitto with persistence; a real journal, closed and reopened as a restart would.
 */

const tmp = tempDir();
const broker = new MosquittoBroker(join(tmp.path, 'mosquitto'));
before(() => broker.start());
after(async () => {
  await broker.stop();
  tmp.cleanup();
});

interface Run {
  journal: SqliteJournal;
  source: MqttSource;
  /** QoS of each PUBLISH the broker sent sluice, by topic. */
  qos: Map<string, number>;
  stop: () => Promise<void>;
}

async function startRun(v: 4 | 5, subscribe: { topic: string; qos: number }[], started: Run[]): Promise<Run> {
  const config = parseConfig(`
[journal]
path = "${join(tmp.path, `v${v}`, 'journal.db')}"
[[mqtt]]
url = "${broker.url}"
client_id = "subs-v${v}"
protocol_version = ${v}
reconnect_min_ms = 50
reconnect_max_ms = 300
${subscribe.map((s) => `[[mqtt.subscribe]]\ntopic = "${s.topic}"\nqos = ${s.qos}\n`).join('')}
`);
  const logger = pino({ level: 'silent' });
  const journal = new SqliteJournal({ ...config.journal, logger, clock: systemClock });
  await journal.start();
  const qos = new Map<string, number>();
  const source = new MqttSource(config.mqtt[0]!, {
    journal,
    logger,
    clock: systemClock,
    metrics: new Metrics(),
    gatewayId: 'gw',
    createClient: (url, options) => {
      const client = mqtt.connect(url, options);
      client.on('packetreceive', (p) => {
        if (p.cmd === 'publish') qos.set((p as IPublishPacket).topic, (p as IPublishPacket).qos);
      });
      return client;
    },
  });
  let stopped = false;
  const run: Run = {
    journal,
    source,
    qos,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await source.stop();
      await journal.stop();
    },
  };
  started.push(run);
  await source.start();
  const want = Object.fromEntries(subscribe.map((s) => [s.topic, s.qos]));
  await waitFor(() => source.connected && JSON.stringify(source.subscriptions) === JSON.stringify(want), { what: () => `subscriptions ${JSON.stringify(want)}, have ${JSON.stringify(source.subscriptions)}` });
  return run;
}

function topics(journal: SqliteJournal): string[] {
  return journal.read(0, 10000, 1e9).map((r) => r.topic);
}

for (const v of [4, 5] as const) {
  test(`MQTT ${v === 5 ? '5' : '3.1.1'}, persistent session: a restart with a/# replaced by b/# unsubscribes a/# and subscribes b/#; a QoS change takes effect`, async () => {
    const pub = new Publisher(broker.url);
    await pub.connect();
    const runs: Run[] = [];
    try {
      let run = await startRun(v, [{ topic: `v${v}/a/#`, qos: 1 }], runs);
      await pub.publish(`v${v}/a/first`, 'a1');
      await waitFor(() => topics(run.journal).includes(`v${v}/a/first`), { what: 'a/first journaled' });
      await run.stop();

      run = await startRun(v, [{ topic: `v${v}/b/#`, qos: 1 }], runs);
      await pub.publish(`v${v}/a/old`, 'old');
      await pub.publish(`v${v}/b/new`, 'new');
      // The broker forwards one publisher's messages in order: a/old would have come first.
      await waitFor(() => topics(run.journal).includes(`v${v}/b/new`), { what: 'b/new journaled' });
      assert.deepEqual(topics(run.journal), [`v${v}/a/first`, `v${v}/b/new`], 'a/old is not journaled');
      assert.equal(run.qos.get(`v${v}/b/new`), 1);
      await run.stop();

      // The same filter at QoS 0: the broker now sends its messages at QoS 0.
      run = await startRun(v, [{ topic: `v${v}/b/#`, qos: 0 }], runs);
      await pub.publish(`v${v}/b/q0`, 'q0');
      await waitFor(() => topics(run.journal).includes(`v${v}/b/q0`), { what: 'b/q0 journaled' });
      assert.equal(run.qos.get(`v${v}/b/q0`), 0, 'delivered at the QoS of the changed subscription');
      await run.stop();

      // Unchanged config: nothing is re-sent, and data still flows at QoS 0.
      run = await startRun(v, [{ topic: `v${v}/b/#`, qos: 0 }], runs);
      await pub.publish(`v${v}/a/old2`, 'old');
      await pub.publish(`v${v}/b/again`, 'again');
      await waitFor(() => topics(run.journal).includes(`v${v}/b/again`), { what: 'b/again journaled' });
      assert.deepEqual(topics(run.journal), [`v${v}/a/first`, `v${v}/b/new`, `v${v}/b/q0`, `v${v}/b/again`]);
      await run.stop();
    } finally {
      for (const r of runs) await r.stop();
      await pub.close();
    }
  });
}
