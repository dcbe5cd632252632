import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { brokersForFile } from '../helpers/brokers.js';
import { Daemon, writeConfig } from '../helpers/daemon.js';
import { consumeUntil } from '../helpers/kcat.js';
import { freePort } from '../helpers/net.js';
import { httpGet, metricValue } from '../helpers/notify-socket.js';
import { Publisher } from '../helpers/publisher.js';
import { waitFor } from '../helpers/wait-for.js';

const { dir: base, mosquitto, kafka } = brokersForFile();

const SHIFT_MS = -3 * 3_600_000 - 17_000; // the board booted with a clock 3 h 17 s behind

// The daemon runs on a file-driven wall clock (SLUICE_TEST_CLOCK_FILE, tests only) that is wrong
// and unsynced while the uplink is down; readings are journaled; then the clock "syncs" (stepped
// right and reported synced) and the uplink returns: kcat must see the true capture times.
test('readings captured on a wrong, unsynced clock reach Kafka with their true capture time (within 50 ms), marked corrected; readings after the sync are marked synced', async () => {
  const dir = join(base, 'clock');
  const clockFile = join(dir, 'clock.json');
  const port = await freePort();
  const away = `127.0.0.1:${await freePort()}`;
  const topic = 'readings-clock';
  const routes = [{ match: 'dev/+device/#', topic, key: '{device}' }];
  const config = writeConfig({ dir, mqttUrl: mosquitto.url, brokers: [away], routes, httpPort: port, clientId: 'sluice-clock' });
  writeFileSync(clockFile, JSON.stringify({ wall_offset_ms: SHIFT_MS, synced: false }));
  const daemon = Daemon.run(config, { SLUICE_TEST_CLOCK_FILE: clockFile }).start();
  /** When the test sent each reading and when the broker acknowledged it: sluice captured it in between. */
  const published = new Map<string, { sent: number; acked: number }>();
  const t0 = Date.now();
  const phase = (what: string): void => console.log(`# clock e2e: ${what} at ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  try {
    await daemon.waitForLog(/subscribed/);
    const pub = new Publisher(mosquitto.url);
    await pub.connect();
    const publishOne = async (id: string): Promise<void> => {
      const sent = Date.now();
      await pub.publish(`dev/${id}/reading`, JSON.stringify({ id }));
      published.set(id, { sent, acked: Date.now() });
    };
    for (let i = 0; i < 5; i++) {
      await publishOne(`before${i}`);
      await new Promise((r) => setTimeout(r, 150));
    }
    const st1 = JSON.parse((await httpGet(port, '/status')).body) as { clock: { state: string; unsynced_for_s: number }; journal: { backlog_records: number } };
    assert.equal(st1.clock.state, 'unsynced');
    assert.equal(st1.journal.backlog_records, 5, 'journaled, waiting for the uplink');
    assert.equal(metricValue((await httpGet(port, '/metrics')).body, 'sluice_clock_synced'), 0);

    phase('5 readings journaled on the wrong clock');
    writeFileSync(clockFile, JSON.stringify({ wall_offset_ms: 0, synced: true }));
    await daemon.waitForLog(/system clock synchronised/, 10000);
    phase('clock synced');
    await daemon.waitForLog(/the system clock jumped/, 10000);
    for (let i = 0; i < 2; i++) await publishOne(`after${i}`);
    await pub.close();

    writeFileSync(config, readFileSync(config, 'utf8').replace(`"${away}"`, `"${kafka.bootstrap}"`));
    daemon.signal('SIGHUP');
    await daemon.waitForLog(/config reloaded/, 30000);
    phase('sink pointed at Kafka');
    const msgs = await consumeUntil(() => kafka.bootstrap, topic, (m) => m.length >= 7, '7 readings in Kafka');
    phase('7 readings in Kafka');
    assert.equal(msgs.length, 7);
    const idOf = (m: { payload: string | null }): string => (JSON.parse(m.payload!) as { id: string }).id;
    // The test clock is the real clock plus SHIFT_MS, so what it said at capture minus SHIFT_MS is the true capture time, to the ms.
    const correctionError = msgs.filter((m) => m.headers['sluice.clock_time']).map((m) => m.ts - (Number(m.headers['sluice.clock_time']) - SHIFT_MS));
    console.log(`# clock e2e: corrected time minus true capture time, ms: ${correctionError.join(', ')}; shipped time minus send time, ms: ${msgs.map((m) => m.ts - published.get(idOf(m))!.sent).join(', ')}`);
    for (const m of msgs) {
      const id = idOf(m);
      const { sent, acked } = published.get(id)!;
      const quality = id.startsWith('before') ? 'corrected' : 'synced';
      assert.equal(m.headers['sluice.time_quality'], quality, `${id}: marked ${quality}`);
      assert.ok(m.ts >= sent - 50 && m.ts <= acked + 50, `${id}: Kafka timestamp ${m.ts} within 50 ms of when sluice took it (sent ${sent}, acknowledged ${acked})`);
      assert.equal(m.headers['sluice.time'], String(m.ts), `${id}: sluice.time is the shipped time`);
      if (quality === 'corrected') {
        const truth = Number(m.headers['sluice.clock_time']) - SHIFT_MS;
        assert.ok(Math.abs(m.ts - truth) < 50, `${id}: corrected time ${m.ts} within 50 ms of the true capture time ${truth}`);
        assert.ok(Number(m.headers['sluice.clock_time']) < sent + SHIFT_MS + 50, `${id}: sluice.clock_time keeps what the wrong clock said`);
      } else assert.equal(m.headers['sluice.clock_time'], undefined);
    }
    const st2 = JSON.parse((await httpGet(port, '/status')).body) as { clock: { state: string; jumps: number; alarm: boolean } };
    assert.equal(st2.clock.state, 'synced');
    assert.equal(st2.clock.jumps, 1);
    assert.equal(metricValue((await httpGet(port, '/metrics')).body, 'sluice_clock_synced'), 1);
  } finally {
    assert.equal(await daemon.stop(), 0);
  }
});

test('a clock unsynced for longer than time.unsynced_alarm_after_s: /readyz degraded naming it, status and metric show the alarm', async () => {
  const dir = join(base, 'alarm');
  const clockFile = join(dir, 'clock.json');
  const port = await freePort();
  const config = writeConfig({ dir, mqttUrl: mosquitto.url, brokers: [kafka.bootstrap], httpPort: port, clientId: 'sluice-clock-alarm', extraTables: '[time]\nunsynced_alarm_after_s = 1\n' });
  writeFileSync(clockFile, JSON.stringify({ wall_offset_ms: SHIFT_MS, synced: false }));
  const daemon = Daemon.run(config, { SLUICE_TEST_CLOCK_FILE: clockFile }).start();
  try {
    await daemon.waitForLog(/subscribed/);
    const ready = await waitFor(
      async () => {
        const r = await httpGet(port, '/readyz');
        return r.status === 503 ? r : null;
      },
      { what: '/readyz 503', timeoutMs: 15000 },
    );
    assert.match(ready.body, /^degraded: clock not synchronised for \d+ s \(unsynced: test clock/);
    assert.equal(metricValue((await httpGet(port, '/metrics')).body, 'sluice_clock_alarm'), 1);
    writeFileSync(clockFile, JSON.stringify({ wall_offset_ms: 0, synced: true }));
    await waitFor(async () => ((await httpGet(port, '/readyz')).status === 200 ? true : null), { what: '/readyz ready after the sync', timeoutMs: 15000 });
  } finally {
    assert.equal(await daemon.stop(), 0);
  }
});
