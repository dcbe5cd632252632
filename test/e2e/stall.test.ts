import assert from 'node:assert/strict';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { brokersForFile } from '../helpers/brokers.js';
import { Daemon, writeConfig } from '../helpers/daemon.js';
import { gapPayloads } from '../helpers/gaps.js';
import { consumeUntil } from '../helpers/kcat.js';
import { freePort } from '../helpers/net.js';
import { httpGet, metricValue } from '../helpers/notify-socket.js';
import { Publisher } from '../helpers/publisher.js';
import { waitFor } from '../helpers/wait-for.js';

const { dir: base, mosquitto, kafka } = brokersForFile();

// Two sinks: "away" points at a port where no Kafka listens, so the journal (max_bytes 64 KiB)
// fills and the MQTT source pauses; "cloud" is a real Kafka and carries the alarm gap record.
test('a source paused longer than stall_after_s is an alarm: /readyz 503 "degraded: stalled", status and metric show it, a stalled gap record reaches Kafka; a sink failing is not called stalled; it ends when a reload gives room', async () => {
  const dir = join(base, 'paused');
  const port = await freePort();
  const away = `127.0.0.1:${await freePort()}`;
  const cloudSink = `
[[sink]]
name = "cloud"
brokers = ["${kafka.bootstrap}"]
request_timeout_ms = 5000
connection_timeout_ms = 2000
gap_topic = "gaps-stall"
[[sink.route]]
match = "dev/#"
topic = "readings-stall"
`;
  const config = writeConfig({ dir, mqttUrl: mosquitto.url, brokers: [away], sinkName: 'away', httpPort: port, gatewayExtra: 'stall_after_s = 2', journalExtra: 'max_bytes = 65536\nmin_free_bytes = 0', clientId: 'sluice-stall', extraTables: cloudSink });
  const daemon = Daemon.run(config).start();
  try {
    await daemon.waitForLog(/subscribed/);
    const pub = new Publisher(mosquitto.url);
    await pub.connect();
    await pub.publishMany(10, 100);
    await pub.close();
    await daemon.waitForLog(/disconnecting from the MQTT broker/);
    const ready = await waitFor(
      async () => {
        const r = await httpGet(port, '/readyz');
        return r.status === 503 && /stalled/.test(r.body) ? r : null;
      },
      { what: '/readyz 503 naming the stall', timeoutMs: 20000 },
    );
    assert.match(ready.body, /^degraded: .*stalled: mqtt:local made no progress for \d+ s: paused: the journal is full \(max_bytes\)/);
    assert.doesNotMatch(ready.body, /stalled: sink:away/, 'a sink whose sends fail is failing, not stalled');
    const status = await httpGet(port, '/status');
    const st = JSON.parse(status.body) as { stalls: { component: string; kind: string }[] };
    const kinds = st.stalls.map((s) => `${s.kind} ${s.component}`);
    assert.ok(kinds.includes('source mqtt:local'), kinds.join(', '));
    // sink:cloud may show a short stall of its own on a loaded machine (Kafka creating its topics); sink:away must not.
    assert.ok(!kinds.includes('sink sink:away'), kinds.join(', '));
    assert.equal(metricValue((await httpGet(port, '/metrics')).body, 'sluice_stalled{component="mqtt:local"}'), 1);
    assert.equal(daemon.lines.filter((l) => /stalled: source mqtt:local/.test(l)).length, 1, 'logged once');
    const gaps = gapPayloads(await consumeUntil(() => kafka.bootstrap, 'gaps-stall', (m) => gapPayloads(m).some((g) => g.reason === 'stalled'), 'the stalled alarm in Kafka'));
    const alarm = gaps.find((g) => g.reason === 'stalled')!;
    assert.equal(alarm.source, 'mqtt:local');
    assert.equal(alarm.count, 0, 'an alarm, not a loss');

    // Way out: the reload drops the sink that never confirms; its rows go, the journal has room.
    const text = readFileSync(config, 'utf8');
    writeFileSync(config, text.replace(/\[\[sink\]\]\nname = "away"[\s\S]*?(?=\n\[\[sink\]\]\nname = "cloud")/, ''));
    daemon.signal('SIGHUP');
    await daemon.waitForLog(/journal has room again: reconnecting/, 20000);
    await daemon.waitForLog(/no longer stalled: mqtt:local/, 20000);
    await waitFor(async () => ((await httpGet(port, '/readyz')).status === 200 ? true : null), { what: '/readyz ready again', timeoutMs: 20000 });
    assert.equal(metricValue((await httpGet(port, '/metrics')).body, 'sluice_stalled{component="mqtt:local"}'), 0);
  } finally {
    assert.equal(await daemon.stop(), 0);
  }
});
