import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Daemon, writeConfig, type TestConfig } from '../helpers/daemon.js';
import { MosquittoBroker } from '../helpers/mosquitto.js';
import { freePort } from '../helpers/net.js';
import { httpGet, metricValue } from '../helpers/notify-socket.js';
import { Publisher } from '../helpers/publisher.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait-for.js';

/*
 * The daemon's subscriptions follow the config file through SIGHUP and through a restart, with
 * the persistent session the broker keeps. No Kafka: records stay journaled, and the source's
 * received counter says what the broker delivered.
 */

const tmp = tempDir();
const mosquitto = new MosquittoBroker(join(tmp.path, 'mosquitto'));
before(() => mosquitto.start());
after(async () => {
  await mosquitto.stop();
  tmp.cleanup();
});

for (const v of [4, 5] as const) {
  test(`MQTT ${v === 5 ? '5' : '3.1.1'}: SIGHUP and restart replace a/# with b/# and then c/#: the dropped filter is unsubscribed, the new one subscribed`, async () => {
    const port = await freePort();
    const common: TestConfig = { dir: join(tmp.path, `v${v}`), mqttUrl: mosquitto.url, brokers: [`127.0.0.1:${await freePort()}`], httpPort: port, clientId: `reload-subs-v${v}`, mqttExtra: `protocol_version = ${v}` };
    const received = async (): Promise<number> => metricValue((await httpGet(port, '/metrics')).body, 'sluice_source_received_total{source="mqtt:local"}') ?? 0;
    /** Publishes on a dropped filter, then on the kept one twice; only the kept ones may arrive (the broker keeps one publisher's order). */
    const expectOnly = async (dropped: string, kept: string): Promise<void> => {
      const before = await received();
      await pub.publish(`${dropped}/old`, 'old');
      await pub.publish(`${kept}/new`, 'new');
      await waitFor(async () => (await received()) >= before + 1, { what: `${kept}/new received` });
      await pub.publish(`${kept}/new2`, 'new2');
      await waitFor(async () => (await received()) >= before + 2, { what: `${kept}/new2 received` });
      assert.equal(await received(), before + 2, `nothing on ${dropped}/old was received`);
    };
    const pub = new Publisher(mosquitto.url);
    await pub.connect();
    let daemon = Daemon.run(writeConfig({ ...common, subscribe: `r${v}/a/#` })).start();
    try {
      await daemon.waitForLog(/"msg":"subscribed"/);
      await pub.publish(`r${v}/a/first`, 'first');
      await waitFor(async () => (await received()) === 1, { what: 'a/first received' });

      writeConfig({ ...common, subscribe: `r${v}/b/#` });
      daemon.signal('SIGHUP');
      await daemon.waitForLog(/"msg":"config reloaded"/);
      await daemon.waitForLog(/unsubscribed filters the config no longer has/);
      await waitFor(() => daemon.countLogs(/"msg":"subscribed"/) === 2, { what: 'b/# subscribed' });
      await expectOnly(`r${v}/a`, `r${v}/b`);

      assert.equal(await daemon.stop(), 0);
      daemon = Daemon.run(writeConfig({ ...common, subscribe: `r${v}/c/#` })).start();
      const unsubscribed = JSON.parse(await daemon.waitForLog(/unsubscribed filters the config no longer has/)) as { topics: string[] };
      assert.deepEqual(unsubscribed.topics, [`r${v}/b/#`]);
      await daemon.waitForLog(/"msg":"subscribed"/);
      await expectOnly(`r${v}/b`, `r${v}/c`);
      assert.equal(daemon.countLogs(/    at /), 0, 'no stack trace');
    } finally {
      await daemon.stop();
      await pub.close();
    }
  });
}
