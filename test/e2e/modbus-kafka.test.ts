import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Daemon } from '../helpers/daemon.js';
import { KafkaBroker } from '../helpers/kafka.js';
import { consumeOrEmpty, LIVE_TOPIC, type KafkaMessage } from '../helpers/kcat.js';
import { deviceToml, fullMap, sameValue, serverSpec, type MapDevice } from '../helpers/modbus-map.js';
import { ByteFlipRelay, ModbusServer } from '../helpers/modbus-server.js';
import { freePort } from '../helpers/net.js';
import { SocatPty } from '../helpers/socat-pty.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait-for.js';

/*
 * The built daemon polls pymodbus's server (a Modbus implementation sluice did not write) over
 * RTU on real ptys and over TCP on loopback, and ships through its journal to a real Kafka; kcat
 * reads what landed, which must equal what the server holds. One Kafka for the file.
 */

const tmp = tempDir();
const kafka = new KafkaBroker(join(tmp.path, 'kafka'));
before(() => kafka.start());
after(async () => {
  await kafka.stop();
  tmp.cleanup();
});

interface Poll {
  bus: string;
  device: string;
  unit_id: number;
  time: string;
  ok: boolean;
  values: Record<string, { value: unknown; quality: string; error?: string; unit?: string }>;
}

function writeModbusConfig(dir: string, bus: string, kafkaTopic: string, busToml: string, devices: string): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'sluice.toml');
  writeFileSync(
    path,
    `
[gateway]
id = "test-gw"
shutdown_timeout_ms = 8000

[log]
format = "json"

[http]
enabled = false

[health]
enabled = false

[journal]
path = "${join(dir, 'journal.db')}"

[[modbus]]
name = "${bus}"
${busToml}
reopen_min_ms = 100
reopen_max_ms = 500

${devices}

[[sink]]
name = "kafka"
brokers = ["${kafka.bootstrap}"]
request_timeout_ms = 5000
connection_timeout_ms = 2000
retry_min_ms = 200
retry_max_ms = 2000

[[sink.route]]
match = "modbus/+bus/+device"
topic = "${kafkaTopic}"
key = "{device}"
`,
  );
  return path;
}

/** Reads the topic until every device has at least `n` polls; returns them by device. */
async function pollsByDevice(topic: string, devices: string[], n: number): Promise<Map<string, { m: KafkaMessage; p: Poll }[]>> {
  return waitFor(
    async () => {
      const by = new Map<string, { m: KafkaMessage; p: Poll }[]>(devices.map((d) => [d, []]));
      for (const m of await consumeOrEmpty(kafka.bootstrap, topic, LIVE_TOPIC)) {
        const p = JSON.parse(m.payload!) as Poll;
        by.get(p.device)?.push({ m, p });
      }
      return [...by.values()].every((l) => l.length >= n) ? by : null;
    },
    { timeoutMs: 60000, intervalMs: 500, what: `${n} polls of each of ${devices.join(', ')} in ${topic}` },
  );
}

/** Every value of every poll of the device equals what the server holds, with quality good. */
function assertServerValues(d: MapDevice, polls: { m: KafkaMessage; p: Poll }[], bus: string): void {
  for (const { m, p } of polls) {
    assert.equal(m.key, d.name);
    assert.equal(m.headers['sluice.source'], `modbus:${bus}`);
    assert.equal(m.headers['sluice.topic'], `modbus/${bus}/${d.name}`);
    assert.equal(p.unit_id, d.unitId);
    assert.ok(Number.isFinite(Date.parse(p.time)));
    for (const v of d.values) {
      const got = p.values[v.name];
      assert.ok(got, `${d.name}.${v.name} present`);
      assert.equal(got.quality, 'good', `${d.name}.${v.name}: ${JSON.stringify(got)}`);
      assert.ok(sameValue(v, got.value), `${d.name}.${v.name} (${v.type} ${v.order ?? 'ABCD'}): Kafka has ${JSON.stringify(got.value)}, the server holds ${JSON.stringify(v.value)}`);
      if (v.unit) assert.equal(got.unit, v.unit);
    }
  }
}

function assertPastEnd(polls: { p: Poll }[]): void {
  for (const { p } of polls) {
    assert.equal(p.ok, false);
    assert.deepEqual(p.values.past_end, { value: null, quality: 'bad', error: 'illegal_data_address' });
  }
}

const t0 = Date.now();
const phase = (what: string): void => console.log(`${((Date.now() - t0) / 1000).toFixed(1)} s: ${what}`);

const silentDevice: MapDevice = {
  name: 'dead',
  unitId: 9,
  timeoutMs: 200,
  values: [
    { name: 'a', table: 'holding_registers', address: 0, type: 'uint16', value: 0 },
    { name: 'b', table: 'input_registers', address: 0, type: 'uint16', value: 0 },
  ],
};

test('Modbus RTU on ptys: several units on one bus, every type and order, an exception, a silent device and CRC-corrupted frames; Kafka holds what pymodbus holds', async () => {
  const map = fullMap();
  const crcDevice: MapDevice = { name: 'noisy', unitId: 3, values: [{ name: 'level', table: 'holding_registers', address: 0, type: 'uint16', value: 777 }] };
  const onServer = [...map, crcDevice];
  // sluice ⇄ pty pair A ⇄ byte-flipping relay ⇄ pty pair B ⇄ pymodbus
  const busPty = new SocatPty(tmp.path, 'bus');
  const serverPty = new SocatPty(tmp.path, 'srv');
  await busPty.plug();
  await serverPty.plug();
  const server = new ModbusServer(tmp.path, serverSpec(onServer, [silentDevice.unitId]), { rtuPath: serverPty.feedPath, baud: 19200 });
  await server.start();
  const relay = new ByteFlipRelay(busPty.feedPath, serverPty.devPath, crcDevice.unitId);
  await relay.start();
  const dir = join(tmp.path, 'gw-rtu');
  const config = writeModbusConfig(dir, 'field', 'modbus.rtu', `transport = "rtu"\npath = "${busPty.devPath}"\nbaud_rate = 19200\nparity = "none"`, deviceToml([...onServer, silentDevice], 1000));
  const daemon = Daemon.run(config).start();
  try {
    await daemon.waitForLog(/modbus link open/);
    const by = await pollsByDevice('modbus.rtu', ['plc', 'meter', 'noisy', 'dead'], 3);
    assertServerValues(map[0]!, by.get('plc')!, 'field');
    assertServerValues(map[1]!, by.get('meter')!, 'field');
    assertPastEnd(by.get('meter')!);
    for (const { p } of by.get('noisy')!) assert.deepEqual(p.values.level, { value: null, quality: 'bad', error: 'crc_error' });
    assert.ok(relay.flipped >= 6, `each poll of the noisy unit is retried once: ${relay.flipped} frames corrupted`);
    for (const { p } of by.get('dead')!) {
      assert.deepEqual(p.values, { a: { value: null, quality: 'bad', error: 'timeout' }, b: { value: null, quality: 'bad', error: 'timeout' } });
    }
    // Polls of every device keep their order and capture times rise.
    for (const list of by.values()) {
      const times = list.map(({ p }) => Date.parse(p.time));
      assert.deepEqual(times, [...times].sort((a, b) => a - b));
    }
    assert.equal(daemon.countLogs(/modbus device failing/), 3, `one line per failing device (meter, noisy, dead):\n${daemon.lines.filter((l) => /failing/.test(l)).join('\n')}`);
    assert.match(daemon.lines.find((l) => /modbus device failing/.test(l) && /"device":"noisy"/.test(l))!, /crc_error/);
    assert.match(daemon.lines.find((l) => /modbus device failing/.test(l) && /"device":"dead"/.test(l))!, /timeout/);
  } finally {
    assert.equal(await daemon.stop(), 0);
    await relay.stop();
    await server.stop();
    await busPty.stop();
    await serverPty.stop();
  }
});

test('Modbus TCP on loopback: the same map, a silent unit behind the same connection, and a server restart the daemon reconnects after', async () => {
  const map = fullMap();
  const port = await freePort();
  let server = new ModbusServer(tmp.path, serverSpec(map, [silentDevice.unitId]), { tcpPort: port });
  await server.start();
  const dir = join(tmp.path, 'gw-tcp');
  const config = writeModbusConfig(dir, 'lan', 'modbus.tcp', `transport = "tcp"\naddress = "127.0.0.1:${port}"`, deviceToml([...map, silentDevice], 500));
  const daemon = Daemon.run(config).start();
  try {
    await daemon.waitForLog(/modbus link open/);
    phase('tcp open');
    const by = await pollsByDevice('modbus.tcp', ['plc', 'meter', 'dead'], 3);
    assertServerValues(map[0]!, by.get('plc')!, 'lan');
    assertServerValues(map[1]!, by.get('meter')!, 'lan');
    assertPastEnd(by.get('meter')!);
    for (const { p } of by.get('dead')!) assert.equal(p.values.a!.error, 'timeout');

    // The server goes away: polls say not_connected; it comes back: values again, one outage logged.
    phase('tcp polls checked');
    await server.stop();
    await daemon.waitForLog(/modbus link lost/);
    phase('tcp lost');
    const down = await waitFor(
      async () => {
        const l = (await consumeOrEmpty(kafka.bootstrap, 'modbus.tcp', LIVE_TOPIC)).map((m) => JSON.parse(m.payload!) as Poll).filter((p) => p.device === 'plc' && p.values.i16!.error === 'not_connected');
        return l.length >= 2 ? l : null;
      },
      { timeoutMs: 30000, intervalMs: 500, what: 'not_connected polls in Kafka' },
    );
    assert.ok(down.every((p) => !p.ok));
    phase('not_connected seen');
    server = new ModbusServer(tmp.path, serverSpec(map, [silentDevice.unitId]), { tcpPort: port });
    await server.start();
    await daemon.waitForLog(/modbus link recovered/);
    phase('recovered');
    const seen = (await consumeOrEmpty(kafka.bootstrap, 'modbus.tcp', LIVE_TOPIC)).length;
    const after = await waitFor(
      async () => {
        const all = await consumeOrEmpty(kafka.bootstrap, 'modbus.tcp', LIVE_TOPIC);
        const l = all.slice(seen).map((m) => ({ m, p: JSON.parse(m.payload!) as Poll })).filter(({ p }) => p.device === 'plc' && p.ok);
        return l.length >= 2 ? l : null;
      },
      { timeoutMs: 30000, intervalMs: 500, what: 'good plc polls after the server came back' },
    );
    assertServerValues(map[0]!, after, 'lan');
    assert.equal(daemon.countLogs(/modbus link lost/), 1, 'the outage is logged once');
    phase('tcp done');
  } finally {
    assert.equal(await daemon.stop(), 0);
    await server.stop();
  }
});
