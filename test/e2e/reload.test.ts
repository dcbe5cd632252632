import assert from 'node:assert/strict';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { brokersForFile } from '../helpers/brokers.js';
import { Daemon, writeConfig, type TestConfig } from '../helpers/daemon.js';
import { consumeOrEmpty, type KafkaMessage } from '../helpers/kcat.js';
import { freePort } from '../helpers/net.js';
import { httpGet, metricValue } from '../helpers/notify-socket.js';
import { journalCounts } from '../helpers/journal-file.js';
import { Publisher, StreamPublisher } from '../helpers/publisher.js';
import { checkDelivery, expectedReadings } from '../helpers/verify.js';
import { waitFor } from '../helpers/wait-for.js';

const { dir: base, mosquitto, kafka } = brokersForFile();

test('SIGHUP under load: a changed route, sink limits, MQTT settings and log level apply without a restart, nothing lost or duplicated; an invalid file is refused and the old config keeps working', async () => {
  const dir = join(base, 'gw');
  const port = await freePort();
  const common: TestConfig = { dir, mqttUrl: mosquitto.url, brokers: [kafka.bootstrap], httpPort: port };
  const config = writeConfig({ ...common, routes: [{ match: 'dev/+device/#', topic: 'before', key: '{device}' }] });
  const daemon = Daemon.run(config).start();
  const shipped = async (): Promise<number> => metricValue((await httpGet(port, '/metrics')).body, 'sluice_sink_shipped_total{sink="kafka"}') ?? 0;
  const shippedBeyond = (n: number): Promise<boolean> => waitFor(async () => (await shipped()) > n, { what: `more than ${n} records shipped`, timeoutMs: 60000, intervalMs: 250 });
  const pub = new StreamPublisher(mosquitto.url, 20, 400);
  try {
    await daemon.waitForLog(/subscribed/);
    await pub.start();
    await shippedBeyond(200);

    // The new file: another topic, smaller batches, another MQTT payload limit, debug logging.
    writeConfig({ ...common, routes: [{ match: 'dev/+device/#', topic: 'after', key: '{device}' }], sinkExtra: 'batch_max_records = 50\nlinger_ms = 5', mqttExtra: 'max_payload_bytes = 100000', logLevel: 'debug' });
    daemon.signal('SIGHUP');
    const applied = JSON.parse(await daemon.waitForLog(/"msg":"config reloaded"/)) as { time: string; changed: string[] };
    assert.deepEqual([...applied.changed].sort(), ['log.level', 'mqtt:local', 'sink:kafka']);
    const reloadedAt = Date.parse(applied.time);
    await shippedBeyond((await shipped()) + 400);
    const status = JSON.parse((await httpGet(port, '/status')).body) as { log_level: string; config: { reloads: number; last_reload: { ok: boolean } } };
    assert.equal(status.log_level, 'debug');
    assert.equal(status.config.reloads, 1);
    assert.equal(status.config.last_reload.ok, true);

    // An invalid file: refused, every problem logged, the running config stays.
    appendFileSync(config, '\n[bogus]\nx = 1\n[[sink.route]]\nmatch = "a/+x/#y/z"\ntopic = "t"\n');
    daemon.signal('SIGHUP');
    const refused = JSON.parse(await daemon.waitForLog(/config reload refused/)) as { errors: string[] };
    assert.ok(refused.errors.some((e) => /bogus/.test(e)), refused.errors.join('\n'));
    await shippedBeyond((await shipped()) + 400);
    const st2 = JSON.parse((await httpGet(port, '/status')).body) as { state: string; config: { reloads: number; last_reload: { ok: boolean; errors: string[] } } };
    assert.equal(st2.config.last_reload.ok, false);
    assert.equal(st2.config.reloads, 1);
    assert.equal(st2.state, 'ready');
    assert.equal(daemon.countLogs(/"msg":"stopping"/), 0, 'no restart');

    const acked = await pub.stop();
    // Kafka is read once the flow has stopped and the sink has caught up (kcat, reading a topic
    // while it grows fast, sometimes ends its output mid-line).
    await waitFor(async () => metricValue((await httpGet(port, '/metrics')).body, 'sluice_sink_lag_records{sink="kafka"}') === 0, { what: 'sink caught up', timeoutMs: 90000 });
    const expected = new Map([...acked].map(([d, ns]) => [d, ns]));
    const total = [...acked.values()].reduce((a, l) => a + l.length, 0);
    let all: KafkaMessage[] = [];
    await waitFor(
      async () => {
        const b = await consumeOrEmpty(kafka.bootstrap, 'before');
        const a = await consumeOrEmpty(kafka.bootstrap, 'after');
        all = [...b, ...a];
        return checkDelivery(all, expected).missing.length === 0;
      },
      { what: () => `every acknowledged reading in Kafka (${all.length} of ${total})`, timeoutMs: 90000, intervalMs: 1000 },
    );
    const result = checkDelivery(all, expected);
    assert.deepEqual(result.missing, []);
    assert.equal(result.duplicates, 0, 'no reading shipped twice');
    assert.equal(all.length, new Set(all.map((m) => m.headers['sluice.seq'])).size, 'no seq shipped twice');
    // Order per key: within each topic, and every reading of a device in "before" precedes its readings in "after".
    const before = all.filter((m) => m.topic === 'before');
    const after = all.filter((m) => m.topic === 'after');
    assert.deepEqual(checkDelivery(before, new Map()).outOfOrder, []);
    assert.deepEqual(checkDelivery(after, new Map()).outOfOrder, []);
    const ns = (list: KafkaMessage[], device: string): number[] => list.filter((m) => m.key === device).map((m) => (JSON.parse(m.payload!) as { n: number }).n);
    for (const device of acked.keys()) {
      const b = ns(before, device);
      const a = ns(after, device);
      if (b.length && a.length) assert.ok(Math.max(...b) < Math.min(...a), `${device}: old route after new route`);
    }
    assert.ok(before.length > 0 && after.length > 0);
    // The new route is in effect: nothing published after the reload went to the old topic.
    const lateInBefore = all.filter((m) => m.topic === 'before' && (JSON.parse(m.payload!) as { ts: number }).ts > reloadedAt);
    assert.deepEqual(lateInBefore.map((m) => m.headers['sluice.seq']), []);
    assert.ok(total > 1000, `published ${total}`);
  } catch (err) {
    console.error(daemon.lines.slice(-60).join('\n'));
    throw err;
  } finally {
    await pub.stop().catch(() => undefined);
    assert.equal(await daemon.stop(), 0);
  }
});

test('SIGHUP adds a sink, re-points its brokers, then removes it: the added sink gets what was journaled after it, waits while its brokers are wrong, ships once they are right; once removed it no longer holds the journal', async () => {
  const dir = join(base, 'sinks');
  const dead = `127.0.0.1:${await freePort()}`;
  const common: TestConfig = { dir, mqttUrl: mosquitto.url, brokers: [kafka.bootstrap], clientId: 'sluice-reload-sinks', routes: [{ match: 'dev/+device/#', topic: 'reload-a', key: '{device}' }] };
  const second = (brokers: string): string => `[[sink]]\nname = "second"\nbrokers = ["${brokers}"]\nretry_min_ms = 200\nretry_max_ms = 1000\n[[sink.route]]\nmatch = "dev/+device/#"\ntopic = "reload-b"\nkey = "{device}"\n`;
  const config = writeConfig(common);
  const daemon = Daemon.run(config).start();
  const pub = new Publisher(mosquitto.url);
  let reloads = 0;
  const reload = async (c: TestConfig): Promise<string[]> => {
    writeConfig(c);
    daemon.signal('SIGHUP');
    reloads++;
    await waitFor(() => (daemon.countLogs(/"msg":"config reloaded"/) === reloads ? true : null), { what: `reload ${reloads} applied` });
    return (JSON.parse(daemon.lines.filter((l) => /"msg":"config reloaded"/.test(l)).at(-1)!) as { changed: string[] }).changed;
  };
  const inTopic = (topic: string, n: number): Promise<KafkaMessage[]> =>
    waitFor(async () => {
      const m = await consumeOrEmpty(kafka.bootstrap, topic);
      return m.length >= n ? m : null;
    }, { what: `${n} in ${topic}`, timeoutMs: 60000, intervalMs: 500 });
  try {
    await daemon.waitForLog(/subscribed/);
    await pub.connect();
    await pub.publishMany(5, 20);
    await inTopic('reload-a', 100);

    // Added, with brokers nobody answers on: records wait for it in the journal.
    assert.deepEqual(await reload({ ...common, extraTables: second(dead) }), ['sink:second']);
    await pub.publishMany(5, 20, { start: 20 });
    await inTopic('reload-a', 200);
    await daemon.waitForLog(/"component":"sink:second".*cannot ship to Kafka/);
    await waitFor(() => (journalCounts(join(dir, 'journal.db')).records >= 100 ? true : null), { what: 'the 100 held for the second sink' });

    // Re-pointed at the real cluster: it ships exactly what was journaled since it was added.
    assert.deepEqual(await reload({ ...common, extraTables: second(kafka.bootstrap) }), ['sink:second']);
    const b = await inTopic('reload-b', 100);
    const rb = checkDelivery(b, expectedReadings(5, 20, 20));
    assert.deepEqual(rb.missing, []);
    assert.equal(rb.duplicates, 0);
    assert.equal(b.length, 100, 'nothing from before it was added');

    // Removed: its cursor is forgotten; the journal drains with the first sink alone.
    assert.deepEqual(await reload(common), ['sink:second']);
    await daemon.waitForLog(/forgot the cursor of a sink no longer configured/);
    await pub.publishMany(5, 20, { start: 40 });
    const a = await inTopic('reload-a', 300);
    const ra = checkDelivery(a, expectedReadings(5, 60));
    assert.deepEqual(ra.missing, []);
    assert.equal(ra.duplicates, 0);
    await waitFor(() => (journalCounts(join(dir, 'journal.db')).rows === 0 ? true : null), { what: 'journal drained without the removed sink' });
    assert.equal((await consumeOrEmpty(kafka.bootstrap, 'reload-b')).length, 100, 'the removed sink shipped nothing more');
  } finally {
    await pub.close().catch(() => undefined);
    assert.equal(await daemon.stop(), 0);
  }
});
