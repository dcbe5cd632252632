import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { checksum } from '../../src/sources/serial/nmea.js';
import { Daemon } from '../helpers/daemon.js';
import { KafkaBroker } from '../helpers/kafka.js';
import { consumeAll, consumeOrEmpty, type KafkaMessage } from '../helpers/kcat.js';
import { PtyDevice, SocatPty } from '../helpers/socat-pty.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait-for.js';

/*
 * The built daemon reads a GPS on a real pty (socat) and ships through its journal to a real
 * Kafka; kcat checks what landed. Only Kafka is started: no MQTT source is configured.
 */

const tmp = tempDir();
const kafka = new KafkaBroker(join(tmp.path, 'kafka'));
before(() => kafka.start());
after(async () => {
  await kafka.stop();
  tmp.cleanup();
});

const gga = (i: number): string => {
  const body = `GPGGA,1200${String(i).padStart(2, '0')}.00,4807.038,N,01131.000,E,1,08,0.9,${500 + i}.0,M,46.9,M,,`;
  return `$${body}*${checksum(body).toString(16).toUpperCase().padStart(2, '0')}\r\n`;
};

function writeSerialConfig(dir: string, devPath: string): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'sluice.toml');
  writeFileSync(
    path,
    `
[gateway]
id = "test-gw"
shutdown_timeout_ms = 8000

[journal]
path = "${join(dir, 'journal.db')}"

[[serial]]
name = "gps"
path = "${devPath}"
baud_rate = 9600
decoder = "nmea"
topic = "serial/{name}/{sentence}"
reopen_min_ms = 100
reopen_max_ms = 500

[[sink]]
name = "kafka"
brokers = ["${kafka.bootstrap}"]
request_timeout_ms = 5000
connection_timeout_ms = 2000
retry_min_ms = 200
retry_max_ms = 2000

[[sink.route]]
match = "serial/+port/errors"
topic = "serial.errors"
key = "{port}"

[[sink.route]]
match = "serial/+port/+sentence"
topic = "gps.fixes"
key = "{port}"
`,
  );
  return path;
}

async function fixes(n: number): Promise<KafkaMessage[]> {
  return waitFor(
    async () => {
      const m = await consumeOrEmpty(kafka.bootstrap, 'gps.fixes');
      return m.length >= n ? m : null;
    },
    { timeoutMs: 60000, intervalMs: 500, what: `${n} fixes in Kafka` },
  );
}

test('NMEA from a pty reaches Kafka decoded, with its headers; a bad checksum goes to the error topic; the GPS is unplugged and replugged while the daemon runs', async () => {
  const dir = join(tmp.path, 'gw');
  const pty = new SocatPty(tmp.path, 'gps');
  await pty.plug();
  const daemon = Daemon.run(writeSerialConfig(dir, pty.devPath)).start();
  let device = new PtyDevice(pty.feedPath);
  try {
    await daemon.waitForLog(/serial port open/);
    await device.open();
    for (let i = 0; i < 20; i++) assert.ok(await device.write(gga(i)));
    const badBody = 'GPGGA,120000.00,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,';
    assert.ok(await device.write(`$${badBody}*00\r\n`));

    const first = await fixes(20);
    assert.equal(first.length, 20);
    first.forEach((m, i) => {
      const p = JSON.parse(m.payload!) as Record<string, unknown>;
      assert.equal(p.talker, 'GP');
      assert.equal(p.sentence, 'GGA');
      assert.equal(p.lat, 48.1173);
      assert.equal(p.lon, 11.5166667);
      assert.equal(p.altitude_m, 500 + i, 'in order');
      assert.equal(m.key, 'gps');
      assert.equal(m.headers['sluice.decoder'], 'nmea');
      assert.equal(m.headers['sluice.source'], 'serial:gps');
      assert.equal(m.headers['sluice.topic'], 'serial/gps/GGA');
      assert.equal(m.headers['sluice.gateway'], 'test-gw');
    });
    const errors = await waitFor(async () => {
      const m = await consumeOrEmpty(kafka.bootstrap, 'serial.errors');
      return m.length >= 1 ? m : null;
    }, { timeoutMs: 30000, intervalMs: 500, what: 'the bad sentence in serial.errors' });
    assert.equal(errors.length, 1);
    assert.match(errors[0]!.payload!, /^\$GPGGA,120000\.00,.*\*00$/, 'the raw frame, as sent');
    assert.equal(errors[0]!.headers['sluice.error'], `nmea_checksum: sentence says 00, computed ${checksum(badBody).toString(16).toUpperCase().padStart(2, '0')}`);
    assert.equal(errors[0]!.headers['sluice.decoder'], 'nmea');
    assert.equal(errors[0]!.headers['sluice.topic'], 'serial/gps/errors');

    // Pull the cable while the daemon runs, wait through a few reopen attempts, plug it back.
    await pty.unplug();
    await daemon.waitForLog(/serial port lost/);
    await new Promise((r) => setTimeout(r, 1500));
    assert.ok(daemon.running, 'the daemon does not exit because a port went away');
    await pty.plug();
    device = new PtyDevice(pty.feedPath);
    await device.open();
    await daemon.waitForLog(/serial port recovered/);
    for (let i = 20; i < 30; i++) assert.ok(await device.write(gga(i)));
    const all = await fixes(30);
    assert.deepEqual(
      all.map((m) => (JSON.parse(m.payload!) as { altitude_m: number }).altitude_m),
      Array.from({ length: 30 }, (_, i) => 500 + i),
      'frames before and after the unplug, once each, in order',
    );
    assert.equal(daemon.countLogs(/serial port lost/), 1, 'the outage is logged once');
    assert.equal(daemon.countLogs(/serial port recovered/), 1);
  } finally {
    await device.close();
    assert.equal(await daemon.stop(), 0);
    await pty.stop();
  }
  assert.equal((await consumeAll(kafka.bootstrap, 'gps.fixes')).length, 30, 'nothing more after the stop');
});
