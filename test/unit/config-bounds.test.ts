import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import mqttPacket from 'mqtt-packet';
import { pino } from 'pino';
import { configErrorLines, parseConfig, type SecretSources } from '../../src/config/load.js';
import { MAX_TIMER_MS, MQTT_MAX_STRING_BYTES } from '../../src/config/grammar.js';
import { configJsonSchema } from '../../src/config/schema.js';
import { SluiceError } from '../../src/errors.js';
import { kafkajsBrokers } from '../../src/sinks/bootstrap-brokers.js';
import { kafkajsConfig } from '../../src/sinks/kafka-client.js';
import { makeTestPki, type TestPki } from '../helpers/pki.js';
import { tempDir } from '../helpers/tmp.js';

/*
 * Issue 12, "accepted by check-config, broken at run time": one test per kind of value that used
 * to pass the loader and then failed (or misbehaved) in `sluice run`.
 */

const noSecrets: SecretSources = { env: {}, readFile: () => { throw Object.assign(new Error('nope'), { code: 'ENOENT' }); } };

const MQTT = (extra = '', topic = 'a/#'): string => `[[mqtt]]\nurl = "mqtt://127.0.0.1:1883"\n${extra}\n[[mqtt.subscribe]]\ntopic = ${JSON.stringify(topic)}\n`;
const SINK = (extra = ''): string => `[[sink]]\nbrokers = ["127.0.0.1:9092"]\n${extra}\n`;
const SERIAL = (extra = ''): string => `[[serial]]\nname = "s"\npath = "/dev/ttyS9"\n${extra}\n`;

function errorsOf(toml: string): string[] {
  try {
    parseConfig(toml, { secrets: noSecrets, hostname: 'gw' });
  } catch (err) {
    assert.ok(err instanceof SluiceError, String(err));
    assert.equal(err.code, 'SLUICE_CONFIG_INVALID');
    return configErrorLines(err);
  }
  assert.fail(`config should have been refused:\n${toml}`);
}

function accepted(toml: string): void {
  try {
    parseConfig(toml, { secrets: noSecrets, hostname: 'gw' });
  } catch (err) {
    assert.fail(`config should have been accepted:\n${toml}\n${err instanceof SluiceError ? configErrorLines(err).join('\n') : String(err)}`);
  }
}

/** Asserts the config is refused with a line starting with `path: `. */
function refusedAt(toml: string, path: string, message?: RegExp): void {
  const errors = errorsOf(toml);
  const line = errors.find((e) => e.startsWith(`${path}: `));
  assert.ok(line, `no error at ${path} in:\n${errors.join('\n')}`);
  if (message) assert.match(line, message);
}

/** Every `*_ms` / `*_s` key of the JSON Schema with its maximum, found by walking it. */
function durationKeys(): { path: string; key: string; maximum: number | undefined }[] {
  const out: { path: string; key: string; maximum: number | undefined }[] = [];
  const walk = (schema: unknown, path: string): void => {
    if (!schema || typeof schema !== 'object') return;
    const s = schema as { properties?: Record<string, { maximum?: number }>; items?: unknown };
    for (const [k, v] of Object.entries(s.properties ?? {})) {
      if (/_(ms|s)$/.test(k)) out.push({ path: `${path}.${k}`, key: k, maximum: v.maximum });
      walk(v, `${path}.${k}`);
    }
    walk(s.items, `${path}[]`);
  };
  walk(configJsonSchema(), '');
  return out;
}

test('every duration is capped at what a Node timer holds: *_ms at 2^31-1, *_s so that x1000 fits (or its protocol bound)', () => {
  const keys = durationKeys();
  assert.ok(keys.length >= 22, `found only ${keys.length} duration keys`);
  for (const k of keys) {
    assert.ok(k.maximum !== undefined, `${k.path} has no maximum`);
    // max_age_s is compared with the clock, never timed: it may exceed a timer, not exact integer ms.
    const cap = k.key.endsWith('_ms') ? MAX_TIMER_MS : k.key === 'max_age_s' ? Number.MAX_SAFE_INTEGER / 1000 : k.key === 'session_expiry_s' ? 2 ** 32 - 1 : MAX_TIMER_MS / 1000;
    assert.ok(k.maximum <= cap, `${k.path}: maximum ${k.maximum} above ${cap}`);
  }
  // The values the issue saw break: each refused with its path, all at once.
  const errors = errorsOf(`[gateway]\nshutdown_timeout_ms = 3e9\n${MQTT('connect_timeout_ms = 3000000000')}${SERIAL('poll_interval_ms = 3000000000\npoll_request = "R"')}${SINK('request_timeout_ms = 2147483648\nprogress_interval_s = 2147484')}[http]\ndegraded_after_s = 3000000\n`);
  for (const path of ['gateway.shutdown_timeout_ms', 'mqtt[0].connect_timeout_ms', 'serial[0].poll_interval_ms', 'sink[0].request_timeout_ms', 'sink[0].progress_interval_s', 'http.degraded_after_s']) {
    assert.ok(errors.some((e) => e.startsWith(`${path}: `)), `no error at ${path} in:\n${errors.join('\n')}`);
  }
  accepted(`[gateway]\nshutdown_timeout_ms = ${MAX_TIMER_MS}\n`);
});

test('ports outside 1-65535, host names that are not names, and URLs that do not parse are refused; [::1]:9092 is accepted', () => {
  refusedAt(MQTT().replace('127.0.0.1:1883', '127.0.0.1:0'), 'mqtt[0].url', /port 0/);
  refusedAt(MQTT().replace('127.0.0.1:1883', '127.0.0.1:70000'), 'mqtt[0].url');
  refusedAt(MQTT().replace('127.0.0.1:1883', 'exa mple.com'), 'mqtt[0].url');
  refusedAt(MQTT().replace('127.0.0.1:1883', 'exa_mple!.com:1883'), 'mqtt[0].url');
  refusedAt(MQTT().replace('127.0.0.1:1883', 'u:secret@127.0.0.1:1883'), 'mqtt[0].url', /credentials/);
  refusedAt(MQTT().replace('127.0.0.1:1883', '127.0.0.1:1883/?clientId=x'), 'mqtt[0].url', /client_id/);
  refusedAt(SINK().replace('127.0.0.1:9092', '127.0.0.1:0'), 'sink[0].brokers[0]', /port 0/);
  refusedAt(SINK().replace('127.0.0.1:9092', 'kafka:70000'), 'sink[0].brokers[0]', /port 70000/);
  refusedAt(SINK().replace('127.0.0.1:9092', '[not-v6]:9092'), 'sink[0].brokers[0]');
  refusedAt(SINK().replace('127.0.0.1:9092', '::1:9092'), 'sink[0].brokers[0]');
  for (const host of ['not a host', 'a..b', '-x.example', '1.2.3.999', 'x'.repeat(64)]) refusedAt(`[http]\nhost = ${JSON.stringify(host)}\n`, 'http.host');
  for (const host of ['0.0.0.0', '::1', '::', 'localhost', 'gw-7.local']) accepted(`[http]\nhost = ${JSON.stringify(host)}\n`);
  accepted(`${SINK().replace('127.0.0.1:9092', '[::1]:9092')}${MQTT().replace('127.0.0.1:1883', '[::1]:1883')}`);
  accepted(SINK().replace('"127.0.0.1:9092"', '"b-1.kafka.eu-west-1.amazonaws.com:9096", "k2:9092"'));
});

test('checking an MQTT URL as MQTT.js parses it prints no deprecation warning (Node 24 warns on url.parse, DEP0169): check-config\'s stderr is its report alone', async () => {
  const tmp = tempDir();
  try {
    // A process of its own: the warning is once per process, and this one may have spent it.
    const script = join(tmp.path, 'check-urls.mjs');
    writeFileSync(
      script,
      `import { mqttUrlProblem } from ${JSON.stringify(new URL('../../src/config/grammar.js', import.meta.url).href)};
process.on('warning', (w) => console.log('warning', w.name, w.code));
console.log(JSON.stringify([mqttUrlProblem('mqtt://127.0.0.1:1883'), mqttUrlProblem('mqtts://broker.example:8883'), mqttUrlProblem('mqtt://u:p@h:1'), process.noDeprecation ?? null]));
setImmediate(() => console.log('end'));
`,
    );
    const r = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile(process.execPath, [script], (err, stdout, stderr) => resolve({ code: err ? 1 : 0, stdout, stderr })),
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    const lines = r.stdout.trim().split('\n');
    assert.deepEqual(lines.slice(1), ['end'], `no warning event: ${r.stdout}`);
    const [plain, tls, creds, noDeprecation] = JSON.parse(lines[0]!) as (string | boolean | null)[];
    assert.equal(plain, null);
    assert.equal(tls, null);
    assert.match(String(creds), /credentials/);
    assert.equal(noDeprecation, null, 'process.noDeprecation is left as it was');
  } finally {
    tmp.cleanup();
  }
});

test('an IPv6 bootstrap broker reaches kafkajs through a socket factory that connects to the address', async (t) => {
  assert.deepEqual(kafkajsBrokers(['k:9092']), { brokers: ['k:9092'] });
  const server = createServer((s) => s.end('hello'));
  await new Promise<void>((resolve) => server.listen(0, '::1', resolve));
  t.after(() => server.close());
  const port = (server.address() as AddressInfo).port;
  // What the sink hands kafkajs for a config naming an IPv6 broker.
  const sink = parseConfig(SINK().replace('127.0.0.1:9092', `[::1]:${port}`).replace('brokers = [', 'brokers = ["k:9092", '), { hostname: 'gw' }).sink[0]!;
  const mapped = kafkajsConfig(sink, 'c', pino({ level: 'silent' })) as { brokers: string[]; socketFactory?: ReturnType<typeof kafkajsBrokers>['socketFactory'] };
  assert.equal(mapped.brokers[0], 'k:9092');
  // kafkajs reads a broker with split(':'): the stand-in must survive that.
  const standIn = mapped.brokers[1]!;
  assert.equal(standIn.split(':').length, 2);
  assert.equal(Number(standIn.split(':')[1]), port);
  const text = await new Promise<string>((resolve, reject) => {
    const socket = mapped.socketFactory!({ host: standIn.split(':')[0]!, port, ssl: false as never, onConnect: () => undefined });
    let got = '';
    socket.on('data', (d: Buffer) => (got += d.toString()));
    socket.on('end', () => resolve(got));
    socket.on('error', reject);
  });
  assert.equal(text, 'hello');
});

test('MQTT 5 session expiry at most 2^32-1 s and keepalive at most 65535 s', () => {
  refusedAt(MQTT('session_expiry_s = 4294967296'), 'mqtt[0].session_expiry_s');
  refusedAt(MQTT('keepalive_s = 65536'), 'mqtt[0].keepalive_s');
  accepted(MQTT('session_expiry_s = 4294967295\nkeepalive_s = 65535'));
});

test('client ids: empty, too long for an MQTT string, control characters, or shared with another source on the same broker are refused', () => {
  refusedAt(MQTT('client_id = ""'), 'mqtt[0].client_id', /empty/);
  refusedAt(MQTT(`client_id = "${'x'.repeat(70000)}"`), 'mqtt[0].client_id');
  // Under 65535 characters, over 65535 bytes: the MQTT limit is bytes.
  refusedAt(MQTT(`client_id = "${'é'.repeat(40000)}"`), 'mqtt[0].client_id', /bytes/);
  refusedAt(MQTT('client_id = "a\\u0000b"'), 'mqtt[0].client_id', /control/);
  refusedAt(MQTT(`username = "${'u'.repeat(70000)}"`), 'mqtt[0].username');
  refusedAt(MQTT(`username = "u"\npassword = "${'p'.repeat(70000)}"`), 'mqtt[0].password', /at most 65535/);
  const two = (a: string, b: string, url2 = 'mqtt://127.0.0.1:1883'): string => `${MQTT(`name = "a"\n${a}`)}${MQTT(`name = "b"\n${b}`).replace('mqtt://127.0.0.1:1883', url2)}`;
  refusedAt(two('client_id = "same"', 'client_id = "same"'), 'mqtt[1].client_id', /already used by mqtt\[0\]/);
  // The same broker written with its default port, and a default id spelled out.
  refusedAt(two('client_id = "same"', 'client_id = "same"', 'mqtt://127.0.0.1'), 'mqtt[1].client_id');
  refusedAt(two('', 'client_id = "sluice-gw-a"'), 'mqtt[1].client_id');
  accepted(two('client_id = "same"', 'client_id = "same"', 'mqtt://127.0.0.2:1883'));
  accepted(two('', ''));
});

test('the longest client id and topic filter the schema accepts are ones mqtt-packet can encode', () => {
  const id = 'i'.repeat(MQTT_MAX_STRING_BYTES);
  const filter = `${'t'.repeat(MQTT_MAX_STRING_BYTES - 2)}/#`;
  accepted(MQTT(`client_id = "${id}"`, filter));
  assert.ok(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clientId: id, clean: false, keepalive: 30 }).length > MQTT_MAX_STRING_BYTES);
  assert.ok(mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: filter, qos: 1 }] }).length > MQTT_MAX_STRING_BYTES);
  // One byte more is what crashed it: the schema refuses that.
  refusedAt(MQTT(`client_id = "${id}x"`), 'mqtt[0].client_id');
  refusedAt(MQTT('', `${filter}x`), 'mqtt[0].subscribe[0].topic');
});

test('MQTT topic filters MQTT forbids are refused; valid ones accepted', () => {
  for (const bad of ['a/#/b', '+x', 'a/b#', 'a/+b/c', '#/a', 'a\u0000b', '']) refusedAt(MQTT('', bad), 'mqtt[0].subscribe[0].topic');
  for (const good of ['#', '+', 'a/#', '+/+/#', 'a//b', '/', 'sensors/+/temp', 'ünï/cödé', '$SYS/#']) accepted(MQTT('', good));
});

test('topics sluice files records under (health.topic, serial topic and error_topic) take no wildcards; {placeholders} are fine', () => {
  refusedAt('[health]\ntopic = "sluice/#"\n', 'health.topic', /wildcards/);
  refusedAt('[health]\ntopic = "a/+/b"\n', 'health.topic');
  refusedAt(SERIAL('topic = "serial/+/x"'), 'serial[0].topic');
  refusedAt(SERIAL('error_topic = "serial/{name}/#"'), 'serial[0].error_topic');
  accepted(`[health]\ntopic = "gw/health"\n${SERIAL('decoder = "nmea"\ntopic = "serial/{name}/{sentence}"\nerror_topic = "serial/{name}/errors"')}`);
});

test('Kafka topic names Kafka forbids are refused in every topic key; route templates allow {placeholders} only', () => {
  const bads = ['has space', 'bang!', '.', '..', 'ünïcode', 'x'.repeat(250), ''];
  for (const key of ['gap_topic', 'default_topic', 'cursor_topic', 'dead_letter_topic']) {
    for (const bad of bads) refusedAt(SINK(`${key} = ${JSON.stringify(bad)}`), `sink[0].${key}`);
  }
  for (const bad of [...bads, 'iot.{site', 'iot.{si te}', 'a/b']) refusedAt(`${SINK()}[[sink.route]]\nmatch = "s/+site"\ntopic = ${JSON.stringify(bad)}\n`, 'sink[0].route[0].topic');
  accepted(`${SINK(`gap_topic = "x..y"\ndefault_topic = "a-b_c.d"\ndead_letter_topic = "${'x'.repeat(249)}"`)}[[sink.route]]\nmatch = "s/+site/#rest"\ntopic = "iot.{site}-{rest}"\n`);
});

test('framing regexes that can match the empty string anywhere are refused (lookarounds, \\b, optional delimiters)', () => {
  const regexCfg = (re: string): string => SERIAL(`framing = "regex"\nregex = ${JSON.stringify(re)}`);
  for (const bad of ['(?=\\n)', '\\b', 'a*', '\\n?', '$', '^', '(?<=;)', 'x|', '(?:\\r\\n)*']) refusedAt(regexCfg(bad), 'serial[0].regex', /empty string/);
  for (const good of ['\\r?\\n|;', '\\n', ';', '\\x03', '[\\r\\n]+']) accepted(regexCfg(good));
});

test('TLS files that are missing, a directory, not PEM, or a key that does not match the certificate are refused at load', async (t) => {
  const dir = tempDir();
  t.after(() => dir.cleanup());
  const pki: TestPki = makeTestPki(join(dir.path, 'pki'));
  mkdirSync(join(dir.path, 'adir'));
  writeFileSync(join(dir.path, 'junk.pem'), 'not a certificate\n');
  const tls = (section: string, ca: string, cert?: string, key?: string): string =>
    `[${section}.tls]\nenabled = true\nca_file = "${ca}"\n${cert ? `cert_file = "${cert}"\nkey_file = "${key}"\n` : ''}`;
  const mqttTls = (ca: string, cert?: string, key?: string): string => `${MQTT()}${tls('mqtt', ca, cert, key)}`;
  const sinkTls = (ca: string, cert?: string, key?: string): string => `${SINK()}${tls('sink', ca, cert, key)}`;
  refusedAt(mqttTls(join(dir.path, 'missing.pem')), 'mqtt[0].tls.ca_file', /ENOENT/);
  refusedAt(mqttTls(join(dir.path, 'adir')), 'mqtt[0].tls.ca_file', /not a regular file/);
  refusedAt(mqttTls(join(dir.path, 'junk.pem')), 'mqtt[0].tls.ca_file', /PEM/);
  refusedAt(sinkTls(pki.caCert, join(dir.path, 'junk.pem'), pki.clientKey), 'sink[0].tls.cert_file', /PEM/);
  refusedAt(sinkTls(pki.caCert, pki.clientCert, pki.clientCert), 'sink[0].tls.key_file', /private key/);
  refusedAt(sinkTls(pki.caCert, pki.clientCert, pki.otherClientKey), 'sink[0].tls.key_file', /not the key/);
  accepted(`${mqttTls(pki.caCert, pki.clientCert, pki.clientKey)}${sinkTls(pki.caCert, pki.clientCert, pki.clientKey)}`);
});

test('schema errors and cross-field errors are reported together, every line a dotted path', () => {
  const errors = errorsOf(`[gateway]\nshutdown_timeout_ms = 3e9\n[http]\nport = 0\n${MQTT('reconnect_min_ms = 5000\nreconnect_max_ms = 100')}${SINK('compression = "brotli"')}[[sink.route]]\nmatch = "s/+site"\ntopic = "iot.{nope}"\n${SERIAL('framing = "regex"\nregex = "\\\\b"\npoll_timeout_ms = 5000\n')}`);
  for (const path of ['gateway.shutdown_timeout_ms', 'http.port', 'sink[0].compression', 'serial[0].regex']) assert.ok(errors.some((e) => e.startsWith(`${path}: `)), `schema error at ${path} missing:\n${errors.join('\n')}`);
  // Cross-field errors of sections that parsed, and of an item whose refused key is left out.
  for (const path of ['mqtt[0].reconnect_min_ms', 'sink[0].route[0].match', 'serial[0].poll_timeout_ms']) assert.ok(errors.some((e) => e.startsWith(`${path}: `)), `cross-field error at ${path} missing:\n${errors.join('\n')}`);
  // Nothing said about the refused regex by the cross-field stage (it would say "needs regex").
  assert.ok(!errors.some((e) => /needs regex/.test(e)), errors.join('\n'));
  for (const e of errors) assert.match(e, /^[a-z_]+(\[\d+\])?(\.[a-z_]+(\[\d+\])?)*: \S/);
});

test('an MQTT password without a user name is refused (the broker would refuse every connect: found by the config fuzz test)', () => {
  refusedAt(MQTT('password = "/etc/hosts"'), 'mqtt[0].password', /needs username/);
  refusedAt(MQTT('password_env = "PW"'), 'mqtt[0].password_env', /needs username/);
  assert.doesNotThrow(() => parseConfig(MQTT('username = "u"\npassword = "p"')));
});
