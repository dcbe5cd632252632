import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Daemon, writeConfig } from '../helpers/daemon.js';
import { KafkaBroker } from '../helpers/kafka.js';
import { consumeOrEmpty } from '../helpers/kcat.js';
import { MosquittoBroker } from '../helpers/mosquitto.js';
import { makeTestPki } from '../helpers/pki.js';
import { Publisher } from '../helpers/publisher.js';
import { tempDir } from '../helpers/tmp.js';
import { checkDelivery, expectedReadings } from '../helpers/verify.js';
import { waitFor } from '../helpers/wait-for.js';

const MQTT_PASSWORD = 'Mqtt-Tls-Secret-51c2e';
const tmp = tempDir();
const pki = makeTestPki(join(tmp.path, 'pki'));
// Sluice connects to the TLS listener (CA, client certificate, username/password); the test publishes on the plain one.
const mosquitto = new MosquittoBroker(join(tmp.path, 'mosquitto'), { tls: { pki, users: [{ name: 'sluice', password: MQTT_PASSWORD }] } });
const kafka = new KafkaBroker(join(tmp.path, 'kafka'));
before(async () => {
  await mosquitto.start();
  await kafka.start();
});
after(async () => {
  await kafka.stop();
  await mosquitto.stop();
  tmp.cleanup();
});

const mqttTls = (): string =>
  `username = "sluice"\npassword_env = "TEST_MQTT_PW"\n[mqtt.tls]\nenabled = true\nca_file = "${pki.caCert}"\ncert_file = "${pki.clientCert}"\nkey_file = "${pki.clientKey}"\n`;

test('MQTT over TLS with a CA file, a client certificate and username/password: readings reach Kafka; the password is never printed', async () => {
  const dir = join(tmp.path, 'ok');
  const topic = 'readings-mqtt-tls';
  const config = writeConfig({ dir, mqttUrl: mosquitto.tlsUrl, brokers: [kafka.bootstrap], clientId: 'sluice-tls-ok', logLevel: 'debug', routes: [{ match: 'dev/+device/#', topic, key: '{device}' }], mqttExtra: mqttTls() });
  const daemon = Daemon.run(config, { TEST_MQTT_PW: MQTT_PASSWORD }).start();
  try {
    await daemon.waitForLog(/subscribed/);
    const pub = new Publisher(mosquitto.url);
    await pub.connect();
    assert.equal(await pub.publishMany(5, 20), 100);
    await pub.close();
    const messages = await waitFor(async () => {
      const m = await consumeOrEmpty(kafka.bootstrap, topic);
      return m.length >= 100 ? m : null;
    }, { timeoutMs: 60000, intervalMs: 500, what: '100 messages' });
    const r = checkDelivery(messages, expectedReadings(5, 20));
    assert.deepEqual(r.missing, []);
    assert.equal(r.duplicates, 0);
  } finally {
    assert.equal(await daemon.stop(), 0);
  }
  assert.ok(!daemon.lines.join('\n').includes(MQTT_PASSWORD), 'the MQTT password never appears in the output');
});

test('MQTT over TLS with a wrong password: the broker refusal is logged with its reason code, nothing is subscribed', async () => {
  const dir = join(tmp.path, 'bad');
  const config = writeConfig({ dir, mqttUrl: mosquitto.tlsUrl, brokers: [kafka.bootstrap], clientId: 'sluice-tls-bad', routes: [{ match: 'dev/+device/#', topic: 'readings-mqtt-bad', key: '{device}' }], mqttExtra: mqttTls() });
  const daemon = Daemon.run(config, { TEST_MQTT_PW: 'not-the-password' }).start();
  try {
    const line = await daemon.waitForLog(/MQTT broker refused the connection/);
    assert.match(line, /"reasonCode":(134|135|4|5)/);
    assert.equal(daemon.countLogs(/subscribed/), 0);
  } finally {
    assert.equal(await daemon.stop(), 0);
  }
});

test('MQTT over TLS trusting another CA: the server certificate is refused and sluice waits for the broker', async () => {
  const dir = join(tmp.path, 'untrusted');
  const config = writeConfig({
    dir,
    mqttUrl: mosquitto.tlsUrl,
    brokers: [kafka.bootstrap],
    clientId: 'sluice-tls-untrusted',
    routes: [{ match: 'dev/+device/#', topic: 'readings-mqtt-untrusted', key: '{device}' }],
    mqttExtra: `username = "sluice"\npassword_env = "TEST_MQTT_PW"\n[mqtt.tls]\nenabled = true\nca_file = "${pki.otherCaCert}"\ncert_file = "${pki.clientCert}"\nkey_file = "${pki.clientKey}"\n`,
  });
  const daemon = Daemon.run(config, { TEST_MQTT_PW: MQTT_PASSWORD }).start();
  try {
    const line = await daemon.waitForLog(/MQTT broker not reachable/);
    assert.match(line, /certificate|self[- ]signed|verify/i);
    assert.equal(daemon.countLogs(/subscribed/), 0);
  } finally {
    assert.equal(await daemon.stop(), 0);
  }
});
