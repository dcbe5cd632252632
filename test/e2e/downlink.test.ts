import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { brokersForFile } from '../helpers/brokers.js';
import { Daemon, writeConfig } from '../helpers/daemon.js';
import { command, Device, produceCommands, repeated, results, type ResultRecord } from '../helpers/downlink.js';
import { createTopic } from '../helpers/kafka.js';
import { freePort } from '../helpers/net.js';
import { runCli } from '../helpers/daemon.js';
import { READ_COMMITTED } from '../helpers/kcat.js';
import { PtyDevice, SocatPty } from '../helpers/socat-pty.js';
import { randomMs } from '../helpers/verify.js';
import { delay, waitFor } from '../helpers/wait-for.js';

const { dir: base, mosquitto, kafka } = brokersForFile();
const GW = 'test-gw';

function downlinkConfig(name: string, opts: { commandTopic: string; resultTopic: string; extraRoutes?: string; extraTables?: string; downlinkExtra?: string; sinkExtra?: string; httpPort?: number }): string {
  return writeConfig({
    dir: join(base, name),
    mqttUrl: mosquitto.url,
    brokers: [kafka.bootstrap],
    clientId: `sluice-${name}`,
    sinkExtra: opts.sinkExtra,
    httpPort: opts.httpPort,
    routes: [{ match: 'sluice/downlink/#', topic: opts.resultTopic, key: '' }].map((r) => ({ match: r.match, topic: r.topic })),
    extraTables: `
${opts.extraTables ?? ''}
[[downlink]]
topic = "${opts.commandTopic}"
session_timeout_ms = 6000
retry_min_ms = 200
retry_max_ms = 1000
${opts.downlinkExtra ?? ''}
[[downlink.route]]
target = "valve/+id"
mqtt = "local"
topic = "cmd/{id}/set"
qos = 2
${opts.extraRoutes ?? ''}
`,
  });
}

/** Checks every id reached the device exactly once and in order per target; returns per-topic payloads. */
function assertExactlyOnceInOrder(device: Device, sent: Map<string, string[]>): void {
  const got = device.byTopic();
  const all = device.got.map((g) => g.payload);
  assert.deepEqual(repeated(all), [], 'no command delivered twice');
  for (const [topic, ids] of sent) assert.deepEqual(got.get(topic) ?? [], ids, `${topic}: every command once, in order`);
}

function onePerCommand(res: ResultRecord[], ids: string[]): Map<string, ResultRecord> {
  assert.deepEqual(repeated(res.map((r) => r.id)), [], 'one result record per command');
  const byId = new Map(res.map((r) => [r.id, r]));
  for (const id of ids) assert.ok(byId.has(id), `result for ${id}`);
  return byId;
}

test('commands produced with kcat reach the device once and in order per target; bad ones, other gateways\' and a serial target: one result each', async () => {
  const commandTopic = 'dl-basic';
  const resultTopic = 'dl-basic-results';
  await createTopic(kafka.bootstrap, commandTopic, 3);
  mkdirSync(join(base, 'basic'), { recursive: true });
  const ptySource = new SocatPty(join(base, 'basic'), 'src');
  const ptyFree = new SocatPty(join(base, 'basic'), 'free');
  await ptySource.plug();
  await ptyFree.plug();
  const httpPort = await freePort();
  const config = downlinkConfig('basic', {
    httpPort,
    commandTopic,
    resultTopic,
    extraTables: `[[serial]]\nname = "meter"\npath = "${ptySource.devPath}"\n`,
    extraRoutes: `[[downlink.route]]\ntarget = "meter"\nserial = "meter"\nline_ending = "crlf"\n[[downlink.route]]\ntarget = "display"\nserial_path = "${ptyFree.devPath}"\n`,
  });
  const device = new Device(mosquitto.url, 'cmd/#');
  await device.start();
  const meter = new PtyDevice(ptySource.feedPath);
  const display = new PtyDevice(ptyFree.feedPath);
  await meter.open();
  await display.open();
  const daemon = Daemon.run(config).start();
  try {
    await daemon.waitForLog(/downlink: consuming commands/, 60000);
    const sent = new Map<string, string[]>();
    const records: { key: string; value: string }[] = [];
    for (let i = 0; i < 30; i++) {
      for (const v of ['1', '2', '3']) {
        const id = `b-${v}-${i}`;
        records.push({ key: GW, value: command(id, `valve/${v}`) });
        sent.set(`cmd/${v}/set`, [...(sent.get(`cmd/${v}/set`) ?? []), id]);
      }
    }
    records.push({ key: 'other-gw', value: command('not-mine', 'valve/1') });
    records.push({ key: GW, value: 'this is not json' });
    records.push({ key: GW, value: command('no-route', 'pump/9') });
    records.push({ key: GW, value: JSON.stringify({ id: 'too-big', target: 'valve/1', payload: 'x'.repeat(70000) }) });
    records.push({ key: GW, value: JSON.stringify({ id: 'b64', target: 'valve/4', payload: Buffer.from('bin\u0001').toString('base64'), encoding: 'base64' }) });
    records.push({ key: GW, value: command('meter-1', 'meter', { payload: 'SET 1' }) });
    records.push({ key: GW, value: command('meter-2', 'meter', { payload: 'SET 2' }) });
    records.push({ key: GW, value: command('display-1', 'display', { payload: 'HELLO' }) });
    records.push({ key: GW, value: command('b-1-0', 'valve/1') }); // the same id produced again
    await produceCommands(kafka.bootstrap, commandTopic, records);
    const ids = [...[...sent.values()].flat(), 'no-route', 'too-big', 'b64', 'meter-1', 'meter-2', 'display-1'];
    const res = await waitFor(
      async () => {
        const r = await results(kafka.bootstrap, resultTopic);
        return r.length >= ids.length + 1 ? r : null;
      },
      { timeoutMs: 60000, intervalMs: 1000, what: 'a result per command' },
    );
    await delay(1500); // anything extra would show now
    const final = await results(kafka.bootstrap, resultTopic);
    assert.equal(final.length, ids.length + 1, 'one result per command of this gateway (the unparsable one included), none for another gateway\'s');
    const byId = onePerCommand(final, ids);
    for (const id of [...sent.values()].flat()) assert.equal(byId.get(id)!.status, 'delivered', id);
    assert.equal(byId.get('no-route')!.status, 'rejected');
    assert.match(byId.get('no-route')!.reason!, /no_route/);
    assert.equal(byId.get('too-big')!.status, 'rejected');
    assert.match(byId.get('too-big')!.reason!, /payload_too_large/);
    const unparsable = final.find((r) => r.id.startsWith('kafka:'))!;
    assert.equal(unparsable.status, 'rejected');
    assert.match(unparsable.reason!, /unparsable/);
    assert.ok(!byId.has('not-mine'));
    assertExactlyOnceInOrder(device, sent);
    assert.ok(!device.got.some((g) => g.payload === 'not-mine'), 'another gateway\'s command is not delivered');
    assert.deepEqual(device.byTopic().get('cmd/4/set'), ['bin\u0001']);
    // Serial: through the [[serial]] source's open port (a line), and a port only the downlink opens (bytes as given).
    await waitFor(() => meter.receivedBytes.toString() === 'SET 1\r\nSET 2\r\n', { timeoutMs: 10000, what: () => `meter bytes ${JSON.stringify(meter.receivedBytes.toString())}` });
    await waitFor(() => display.receivedBytes.toString() === 'HELLO', { timeoutMs: 10000, what: () => `display bytes ${JSON.stringify(display.receivedBytes.toString())}` });
    assert.equal(byId.get('meter-1')!.status, 'delivered');
    assert.equal(byId.get('display-1')!.status, 'delivered');
    // What an operator sees: `sluice status` and /metrics count every outcome.
    const status = await runCli(['status', '--url', `http://127.0.0.1:${httpPort}`]);
    assert.match(status.stdout, /downlink\n  downlink +consumer consuming +waiting 0 \(0 in flight\), oldest — +received 97 +delivered 94 +expired 0 +rejected 3 +failed 0 +duplicates 1/);
    assert.match(status.stdout, /mqtt:local connected, serial:meter open/);
    const metrics = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
    assert.match(metrics, /sluice_downlink_commands_total\{downlink="downlink",outcome="delivered"\} 94/);
    assert.match(metrics, /sluice_downlink_waiting\{downlink="downlink"\} 0/);
    assert.ok(daemon.running);
  } finally {
    await daemon.stop();
    await device.stop();
    await meter.close();
    await display.close();
    await ptySource.stop();
    await ptyFree.stop();
  }
  assert.equal(daemon.exitCode, 0);
});

test('kill -9 at random moments, 10 times, while commands flow, and Kafka restarted mid-stream: none lost, none delivered twice, in order, one result each', async () => {
  const commandTopic = 'dl-crash';
  const resultTopic = 'dl-crash-results';
  await createTopic(kafka.bootstrap, commandTopic, 2);
  // An at_least_once sink may ship a record twice after a kill -9 (between Kafka's ack and the cursor):
  // exactly_once (a Kafka transaction) makes the one result per command the journal holds one in Kafka.
  const config = downlinkConfig('crash', { commandTopic, resultTopic, downlinkExtra: 'default_ttl_s = 3600', sinkExtra: 'delivery = "exactly_once"\ncursor_topic = "dl-crash-cursors"' });
  const device = new Device(mosquitto.url, 'cmd/#');
  await device.start();
  let daemon = Daemon.run(config).start();
  const runs = [daemon];
  const sent = new Map<string, string[]>();
  const allIds: string[] = [];
  let producing = true;
  let paused: Promise<void> | null = null;
  let next = 0;
  const producer = (async () => {
    while (producing) {
      await paused;
      const batch: { key: string; value: string }[] = [];
      for (let k = 0; k < 8; k++) {
        const v = String(next % 4);
        const id = `k-${next++}`;
        batch.push({ key: GW, value: command(id, `valve/${v}`) });
        sent.set(`cmd/${v}/set`, [...(sent.get(`cmd/${v}/set`) ?? []), id]);
        allIds.push(id);
      }
      await produceCommands(kafka.bootstrap, commandTopic, batch);
      await delay(150);
    }
  })();
  let kills = 0;
  const started = Date.now();
  try {
    await daemon.waitForLog(/downlink: consuming commands/, 60000);
    for (let i = 0; i < 10; i++) {
      await delay(randomMs(300, 2500));
      await daemon.kill9();
      assert.equal(daemon.exitSignal, 'SIGKILL');
      kills++;
      daemon = Daemon.run(config).start();
      runs.push(daemon);
      if (i === 5) {
        // Kafka restarted mid-stream (the producer waits for it too).
        await daemon.waitForLog(/downlink: consuming commands/, 60000);
        // The producer (the cloud) pauses while Kafka is away, so what it produced is known exactly.
        let resume = (): void => undefined;
        paused = new Promise((r) => (resume = r));
        await delay(500);
        await kafka.stop();
        await delay(2000);
        await kafka.start();
        resume();
        paused = null;
      }
    }
    await daemon.waitForLog(/downlink: consuming commands/, 60000);
    await delay(1500);
    producing = false;
    await producer;
    assert.ok(kills >= 10);
    const res = await waitFor(
      async () => {
        const r = await results(kafka.bootstrap, resultTopic, READ_COMMITTED);
        return new Set(r.map((x) => x.id)).size >= allIds.length ? r : null;
      },
      { timeoutMs: 120000, intervalMs: 2000, what: () => `a result for each of ${allIds.length} commands` },
    );
    await waitFor(() => device.got.length >= allIds.length, { timeoutMs: 30000, what: () => `device got ${device.got.length} of ${allIds.length}` });
    await delay(1500);
    const final = await results(kafka.bootstrap, resultTopic, READ_COMMITTED);
    const byId = onePerCommand(final, allIds);
    assert.equal(final.length, allIds.length, 'exactly one result per command');
    assert.equal(res.length <= final.length, true);
    for (const id of allIds) assert.equal(byId.get(id)!.status, 'delivered', id);
    assertExactlyOnceInOrder(device, sent);
    // How often a kill left a PUBLISH/PUBREL in flight that the next run sent again with its packet id.
    const resumed = runs.filter((r) => r.lines.some((l) => /downlink started/.test(l) && /"inFlight":[1-9]/.test(l))).length;
    console.log(`downlink kill test: ${kills} kills, ${allIds.length} commands, ${((Date.now() - started) / 1000).toFixed(1)} s, device got ${device.got.length}, duplicates ${device.got.length - new Set(device.got.map((g) => g.payload)).size}, restarts with packets in flight ${resumed}`);
  } finally {
    producing = false;
    await producer.catch(() => undefined);
    await daemon.stop();
    await device.stop();
  }
});

test('a command whose TTL passes while the local broker is down is reported expired and never delivered; one that is still valid is delivered after', async () => {
  const commandTopic = 'dl-expiry';
  const resultTopic = 'dl-expiry-results';
  await createTopic(kafka.bootstrap, commandTopic, 1);
  const config = downlinkConfig('expiry', { commandTopic, resultTopic });
  const device = new Device(mosquitto.url, 'cmd/#');
  await device.start();
  const daemon = Daemon.run(config).start();
  try {
    await daemon.waitForLog(/downlink: connected to MQTT broker/, 60000);
    await daemon.waitForLog(/downlink: consuming commands/, 60000);
    await mosquitto.stop();
    await produceCommands(kafka.bootstrap, commandTopic, [
      { key: GW, value: command('stale', 'valve/8', { ttl_s: 2 }) },
      { key: GW, value: command('fresh', 'valve/9', { ttl_s: 600 }) },
    ]);
    const expired = await waitFor(
      async () => (await results(kafka.bootstrap, resultTopic)).find((r) => r.id === 'stale') ?? null,
      { timeoutMs: 30000, intervalMs: 500, what: 'the expired result' },
    );
    assert.equal(expired.status, 'expired');
    await mosquitto.start();
    await waitFor(() => device.got.some((g) => g.payload === 'fresh'), { timeoutMs: 30000, what: 'the fresh command at the device' });
    await delay(1500);
    assert.ok(!device.got.some((g) => g.payload === 'stale'), 'an expired command is never delivered');
    const res = await results(kafka.bootstrap, resultTopic);
    assert.equal(res.length, 2);
    assert.equal(res.find((r) => r.id === 'fresh')!.status, 'delivered');
  } finally {
    await daemon.stop();
    await device.stop();
  }
});

test('a topic per gateway ({gateway}) with select = "header", then with select = "all": only this gateway\'s commands are delivered, each with one result', async () => {
  // select = "header": the header named select_header must equal gateway.id; the key does not count.
  await createTopic(kafka.bootstrap, `dl-hdr-${GW}`, 1);
  const device = new Device(mosquitto.url, 'cmd/#');
  await device.start();
  try {
    const resultTopic = 'dl-hdr-results';
    const config = downlinkConfig('hdr', { commandTopic: 'dl-hdr-{gateway}', resultTopic, downlinkExtra: 'select = "header"\nselect_header = "site"' });
    const daemon = Daemon.run(config).start();
    try {
      await daemon.waitForLog(/downlink: consuming commands/, 60000);
      const mine = ['h-1', 'h-2', 'h-3'];
      await produceCommands(kafka.bootstrap, `dl-hdr-${GW}`, mine.map((id) => ({ key: 'any-key', value: command(id, 'valve/21') })), [`site=${GW}`]);
      await produceCommands(kafka.bootstrap, `dl-hdr-${GW}`, [{ key: GW, value: command('other-site', 'valve/21') }], ['site=other-gw']);
      await produceCommands(kafka.bootstrap, `dl-hdr-${GW}`, [{ key: GW, value: command('no-header', 'valve/21') }]);
      await produceCommands(kafka.bootstrap, `dl-hdr-${GW}`, [{ key: GW, value: command('h-4', 'valve/21') }], [`site=${GW}`]);
      mine.push('h-4');
      await waitFor(async () => (await results(kafka.bootstrap, resultTopic)).length >= mine.length, { timeoutMs: 60000, intervalMs: 1000, what: 'a result per command of this gateway' });
      await delay(1500); // anything extra would show now
      const res = await results(kafka.bootstrap, resultTopic);
      const byId = onePerCommand(res, mine);
      assert.equal(res.length, mine.length, 'no result for records that are not this gateway\'s');
      for (const id of mine) assert.equal(byId.get(id)!.status, 'delivered', id);
      assert.deepEqual(device.byTopic().get('cmd/21/set'), mine, 'this gateway\'s commands, once each, in order; not the other site\'s, not the one without the header');
    } finally {
      await daemon.stop();
    }
    // select = "all": every record on the gateway's own topic is its command, whatever the key.
    await createTopic(kafka.bootstrap, `dl-all-${GW}`, 1);
    const allResults = 'dl-all-results';
    const all = Daemon.run(downlinkConfig('all', { commandTopic: 'dl-all-{gateway}', resultTopic: allResults, downlinkExtra: 'select = "all"' })).start();
    try {
      await all.waitForLog(/downlink: consuming commands/, 60000);
      const ids = ['a-1', 'a-2', 'a-3'];
      await produceCommands(kafka.bootstrap, `dl-all-${GW}`, ids.map((id, i) => ({ key: ['', 'other-gw', GW][i]!, value: command(id, 'valve/22') })));
      await waitFor(async () => (await results(kafka.bootstrap, allResults)).length >= ids.length, { timeoutMs: 60000, intervalMs: 1000, what: 'a result per command' });
      const res = await results(kafka.bootstrap, allResults);
      const byId = onePerCommand(res, ids);
      for (const id of ids) assert.equal(byId.get(id)!.status, 'delivered', id);
      assert.deepEqual(device.byTopic().get('cmd/22/set'), ids);
    } finally {
      await all.stop();
    }
  } finally {
    await device.stop();
  }
});
