import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import kafkajs from 'kafkajs';
import { Daemon, writeConfig } from '../helpers/daemon.js';
import { journalCounts } from '../helpers/journal-file.js';
import { KafkaBroker, withAdmin } from '../helpers/kafka.js';
import { consumeOrEmpty } from '../helpers/kcat.js';
import { MosquittoBroker } from '../helpers/mosquitto.js';
import { makeTestPki } from '../helpers/pki.js';
import { Publisher } from '../helpers/publisher.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { tempDir } from '../helpers/tmp.js';
import { checkDelivery, expectedReadings } from '../helpers/verify.js';
import { delay, waitFor } from '../helpers/wait-for.js';

const { AclOperationTypes, AclPermissionTypes, AclResourceTypes, ResourcePatternTypes } = kafkajs;
const PASSWORD = 'Sluice-Scram-Secret-7f3a9c';
const PLAIN_PASSWORD = 'Sluice-Plain-Secret-2b8e41';
const tmp = tempDir();
const pki = makeTestPki(join(tmp.path, 'pki'));
const mosquitto = new MosquittoBroker(join(tmp.path, 'mosquitto'));
const kafka = new KafkaBroker(join(tmp.path, 'kafka'), {
  security: { pki, scramUsers: [{ name: 'gateway', password: PASSWORD }], plainUsers: [{ name: 'plain-gw', password: PLAIN_PASSWORD }] },
  // ACLs are enforced; with none on a resource everyone may use it. The PLAINTEXT listener (the
  // tests' own clients and the controller) is ANONYMOUS, a super user.
  extraProps: ['authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer', 'super.users=User:ANONYMOUS', 'allow.everyone.if.no.acl.found=true'],
});
const proxies: TcpProxy[] = [];
before(async () => {
  await mosquitto.start();
  await kafka.start();
});
after(async () => {
  for (const p of proxies) await p.stop();
  await kafka.stop();
  await mosquitto.stop();
  tmp.cleanup();
});

/** Readings d0 and d1, n 0..9 each. */
async function publishTwenty(): Promise<void> {
  const pub = new Publisher(mosquitto.url);
  await pub.connect();
  assert.equal(await pub.publishMany(2, 10), 20);
  await pub.close();
}

/** Publishes readings, checks they are journaled and not shipped while the config is wrong, then fixed. */
async function wrongThenFixed(
  name: string,
  opts: { brokers: string; rightBrokers?: string; wrongExtra: string; rightExtra: string; expectHint: RegExp; wrongEnv?: Record<string, string>; rightEnv?: Record<string, string>; before?: () => void; fix?: () => Promise<void> | void },
): Promise<Daemon[]> {
  const dir = join(tmp.path, name);
  const topic = `readings-${name}`;
  const routes = [{ match: 'dev/+device/#', topic, key: '{device}' }];
  const base = { dir, mqttUrl: mosquitto.url, brokers: [opts.brokers], routes, clientId: `sluice-${name}`, logLevel: 'debug' };
  opts.before?.();
  const config = writeConfig({ ...base, sinkExtra: opts.wrongExtra });
  const wrong = Daemon.run(config, opts.wrongEnv).start();
  const daemons = [wrong];
  try {
    await wrong.waitForLog(/subscribed/);
    const pub = new Publisher(mosquitto.url);
    await pub.connect();
    assert.equal(await pub.publishMany(5, 40), 200);
    await pub.close();
    const line = await wrong.waitForLog(/cannot ship to Kafka/);
    assert.match(line, opts.expectHint, 'the one error line says what to fix');
    console.log(`${name}: ${line}`);
    // Let it retry for a while: the line is not repeated and retries back off.
    await delay(5000);
    assert.equal(wrong.countLogs(/cannot ship to Kafka/), 1, 'one clear error line per outage');
    const retries = wrong.countLogs(/Kafka send failed again/);
    // retry_min_ms 200 doubling to retry_max_ms 2000: a handful in 5 s, never a tight loop.
    assert.ok(retries >= 1 && retries <= 15, `retries in 5 s: ${retries}`);
    assert.equal(journalCounts(join(dir, 'journal.db')).records, 200, 'records stay journaled');
    assert.equal((await consumeOrEmpty(kafka.bootstrap, topic)).length, 0);
    assert.equal(await wrong.stop(), 0);

    await opts.fix?.();
    writeConfig({ ...base, brokers: [opts.rightBrokers ?? opts.brokers], sinkExtra: opts.rightExtra });
    const right = Daemon.run(config, opts.rightEnv).start();
    daemons.push(right);
    const messages = await waitFor(
      async () => {
        const m = await consumeOrEmpty(kafka.bootstrap, topic);
        return m.length >= 200 ? m : null;
      },
      { timeoutMs: 60000, intervalMs: 500, what: '200 messages after the fix' },
    );
    const r = checkDelivery(messages, expectedReadings(5, 40));
    assert.deepEqual(r.missing, []);
    assert.equal(r.duplicates, 0);
    await waitFor(() => journalCounts(join(dir, 'journal.db')).rows === 0, { what: 'journal drained' });
    assert.equal(await right.stop(), 0);
    return daemons;
  } finally {
    for (const d of daemons) await d.stop();
  }
}

test('SASL_SSL with SCRAM-SHA-512: a wrong password gives one clear line, records wait, backoff; the fixed password (from a file) ships them; the password is never printed', async () => {
  const pwFile = join(tmp.path, 'kafka-password');
  const daemons = await wrongThenFixed('scram', {
    brokers: kafka.saslSslBootstrap,
    before: () => writeFileSync(pwFile, 'not-the-password\n'),
    wrongExtra: `[sink.tls]\nenabled = true\nca_file = "${pki.caCert}"\n[sink.sasl]\nmechanism = "scram-sha-512"\nusername = "gateway"\npassword_file = "${pwFile}"\n`,
    fix: () => writeFileSync(pwFile, `${PASSWORD}\n`),
    rightExtra: `[sink.tls]\nenabled = true\nca_file = "${pki.caCert}"\n[sink.sasl]\nmechanism = "scram-sha-512"\nusername = "gateway"\npassword_file = "${pwFile}"\n`,
    expectHint: /SASL/,
  });
  const output = daemons.flatMap((d) => d.lines).join('\n');
  assert.ok(output.length > 1000, 'debug output was captured');
  assert.ok(!output.includes(PASSWORD), 'the SASL password never appears in the output');
  assert.ok(!output.includes('not-the-password'), 'nor the wrong one');
});

test('SASL_SSL with SCRAM-SHA-512, password from the environment: ships', async () => {
  const output = await ships('scram-env', kafka.saslSslBootstrap, `[sink.tls]\nenabled = true\nca_file = "${pki.caCert}"\n[sink.sasl]\nmechanism = "scram-sha-512"\nusername = "gateway"\npassword_env = "TEST_KAFKA_PW"\n`, { TEST_KAFKA_PW: PASSWORD });
  assert.ok(!output.includes(PASSWORD));
});

test('mutual TLS: an untrusted server certificate gives one clear line and records wait; trusting the right CA ships them', async () => {
  const mtls = (ca: string): string => `[sink.tls]\nenabled = true\nca_file = "${ca}"\ncert_file = "${pki.clientCert}"\nkey_file = "${pki.clientKey}"\n`;
  await wrongThenFixed('mtls', {
    brokers: kafka.sslBootstrap,
    wrongExtra: mtls(pki.otherCaCert),
    rightExtra: mtls(pki.caCert),
    expectHint: /TLS handshake failed/,
  });
});

test('mutual TLS: a client certificate the broker does not trust is refused; records wait', async () => {
  const dir = join(tmp.path, 'mtls-client');
  const topic = 'readings-mtls-client';
  const config = writeConfig({
    dir,
    mqttUrl: mosquitto.url,
    brokers: [kafka.sslBootstrap],
    clientId: 'sluice-mtls-client',
    routes: [{ match: 'dev/+device/#', topic, key: '{device}' }],
    sinkExtra: `[sink.tls]\nenabled = true\nca_file = "${pki.caCert}"\ncert_file = "${pki.otherClientCert}"\nkey_file = "${pki.otherClientKey}"\n`,
  });
  const daemon = Daemon.run(config).start();
  try {
    await daemon.waitForLog(/subscribed/);
    await publishTwenty();
    await daemon.waitForLog(/cannot ship to Kafka/);
    await waitFor(() => journalCounts(join(dir, 'journal.db')).records === 20, { what: '20 journaled' });
    assert.equal((await consumeOrEmpty(kafka.bootstrap, topic)).length, 0);
  } finally {
    assert.equal(await daemon.stop(), 0);
  }
});

test('SASL_SSL with OAUTHBEARER: a token from a command ships; an expired token is refused with one clear line', async () => {
  // Kafka's unsecured-JWT validator on the test broker accepts alg "none" tokens with a subject and a valid exp.
  const jwt = (expS: number): string => `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ sub: 'gateway', iat: Math.floor(Date.now() / 1000) - 10, exp: expS })).toString('base64url')}.`;
  const script = join(tmp.path, 'token.sh');
  const now = Math.floor(Date.now() / 1000);
  writeFileSync(script, `echo "${jwt(now - 600)}"\n`);
  await wrongThenFixed('oauth', {
    brokers: kafka.saslSslBootstrap,
    wrongExtra: `[sink.tls]\nenabled = true\nca_file = "${pki.caCert}"\n[sink.sasl]\nmechanism = "oauthbearer"\ntoken_command = "sh ${script}"\ntoken_refresh_s = 1\n`,
    fix: () => writeFileSync(script, `echo "${jwt(now + 3600)}"\n`),
    rightExtra: `[sink.tls]\nenabled = true\nca_file = "${pki.caCert}"\n[sink.sasl]\nmechanism = "oauthbearer"\ntoken_command = "sh ${script}"\ntoken_refresh_s = 1\n`,
    expectHint: /SASL/,
  });
});

/** Ships 20 readings with `sinkExtra` and `env`; returns the daemon's output. */
async function ships(name: string, brokers: string, sinkExtra: string, env: Record<string, string> = {}): Promise<string> {
  const dir = join(tmp.path, name);
  const topic = `readings-${name}`;
  const config = writeConfig({ dir, mqttUrl: mosquitto.url, brokers: [brokers], clientId: `sluice-${name}`, logLevel: 'debug', routes: [{ match: 'dev/+device/#', topic, key: '{device}' }], sinkExtra });
  const daemon = Daemon.run(config, env).start();
  try {
    await daemon.waitForLog(/subscribed/);
    await publishTwenty();
    const messages = await waitFor(async () => {
      const m = await consumeOrEmpty(kafka.bootstrap, topic);
      return m.length >= 20 ? m : null;
    }, { timeoutMs: 30000, what: `20 messages in ${topic}` });
    assert.deepEqual(checkDelivery(messages, expectedReadings(2, 10)).missing, []);
    return daemon.lines.join('\n');
  } finally {
    assert.equal(await daemon.stop(), 0);
  }
}

test('SASL_SSL with PLAIN and with SCRAM-SHA-256: both ship; neither password is printed (debug logging)', async () => {
  const plain = await ships('plain', kafka.saslSslBootstrap, `[sink.tls]\nenabled = true\nca_file = "${pki.caCert}"\n[sink.sasl]\nmechanism = "plain"\nusername = "plain-gw"\npassword_env = "TEST_PLAIN_PW"\n`, { TEST_PLAIN_PW: PLAIN_PASSWORD });
  assert.ok(!plain.includes(PLAIN_PASSWORD));
  const scram256 = await ships('scram256', kafka.saslSslBootstrap, `[sink.tls]\nenabled = true\nca_file = "${pki.caCert}"\n[sink.sasl]\nmechanism = "scram-sha-256"\nusername = "gateway"\npassword = "${PASSWORD}"\n`);
  assert.ok(!scram256.includes(PASSWORD));
});

test('TLS without ca_file trusts the system CA bundle: a private CA outside it is refused with one clear line; named by SSL_CERT_FILE it ships', async () => {
  const sinkExtra = `[sink.tls]\nenabled = true\n[sink.sasl]\nmechanism = "scram-sha-512"\nusername = "gateway"\npassword_env = "TEST_KAFKA_PW"\n`;
  await wrongThenFixed('systemca', {
    brokers: kafka.saslSslBootstrap,
    wrongExtra: sinkExtra,
    rightExtra: sinkExtra,
    // Empty: the default bundle (/etc/ssl/certs/ca-certificates.crt), which lacks the test CA.
    wrongEnv: { TEST_KAFKA_PW: PASSWORD, SSL_CERT_FILE: '' },
    rightEnv: { TEST_KAFKA_PW: PASSWORD, SSL_CERT_FILE: pki.caCert },
    expectHint: /TLS handshake failed/,
  });
});

test('the server name is checked: the broker reached as 127.0.0.2 (not in its certificate) is refused with one clear line; reached by its name it ships', async () => {
  const proxy = new TcpProxy(() => ({ host: '127.0.0.1', port: kafka.saslSslPort }));
  await proxy.start(0, '127.0.0.2');
  proxies.push(proxy);
  const sinkExtra = `[sink.tls]\nenabled = true\nca_file = "${pki.caCert}"\n[sink.sasl]\nmechanism = "scram-sha-512"\nusername = "gateway"\npassword = "${PASSWORD}"\n`;
  const [wrong] = await wrongThenFixed('sni', {
    brokers: `127.0.0.2:${proxy.port}`,
    rightBrokers: kafka.saslSslBootstrap,
    wrongExtra: sinkExtra,
    rightExtra: sinkExtra,
    expectHint: /TLS handshake failed/,
  });
  assert.match(wrong!.lines.find((l) => /cannot ship to Kafka/.test(l))!, /altnames|not in the cert|127\.0\.0\.2/i, 'the line names the mismatch');
});

test('an authorization failure (an ACL denies the topic) gives one clear line with a hint; records wait; removing the ACL ships them', async () => {
  const acl = { resourceType: AclResourceTypes.TOPIC, resourceName: 'readings-acl', resourcePatternType: ResourcePatternTypes.LITERAL, principal: 'User:gateway', host: '*', operation: AclOperationTypes.ALL, permissionType: AclPermissionTypes.DENY };
  await withAdmin(kafka.bootstrap, (admin) => admin.createAcls({ acl: [acl] }));
  const sinkExtra = `[sink.tls]\nenabled = true\nca_file = "${pki.caCert}"\n[sink.sasl]\nmechanism = "scram-sha-512"\nusername = "gateway"\npassword = "${PASSWORD}"\n`;
  await wrongThenFixed('acl', {
    brokers: kafka.saslSslBootstrap,
    wrongExtra: sinkExtra,
    rightExtra: sinkExtra,
    expectHint: /refused access: grant the sink's principal WRITE/,
    fix: async () => void (await withAdmin(kafka.bootstrap, (admin) => admin.deleteAcls({ filters: [acl] }))),
  });
});
