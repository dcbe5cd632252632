import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { inspect } from 'node:util';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseConfig, configErrorLines, type SecretSources } from '../../src/config/load.js';
import { configJsonSchema } from '../../src/config/schema.js';
import { Secret } from '../../src/config/secret.js';
import { SluiceError } from '../../src/errors.js';
import type { ConfigFiles } from '../../src/config/tls-files.js';
import { repoRoot } from '../helpers/daemon.js';
import { makeTestPki } from '../helpers/pki.js';
import { tempDir } from '../helpers/tmp.js';

const noSecrets: SecretSources = { env: {}, readFile: () => { throw Object.assign(new Error('nope'), { code: 'ENOENT' }); } };

function errorsOf(toml: string, secrets = noSecrets): string[] {
  try {
    parseConfig(toml, { secrets });
  } catch (err) {
    assert.ok(err instanceof SluiceError);
    assert.equal(err.code, 'SLUICE_CONFIG_INVALID');
    return configErrorLines(err);
  }
  assert.fail('config should have been invalid');
}

test('config.example.toml validates against the schema', () => {
  const text = readFileSync(join(repoRoot, 'config.example.toml'), 'utf8');
  const c = parseConfig(text, { baseDir: '/etc/sluice', hostname: 'pi-7' });
  assert.equal(c.gateway.id, 'pi-7');
  assert.equal(c.journal.path, '/etc/sluice/data/journal.db');
  assert.equal(c.mqtt.length, 1);
  assert.equal(c.sink[0]!.route.length, 5);
  assert.equal(c.serial.length, 1);
  assert.equal(c.serial[0]!.decoder, 'nmea');
});

test('the commented cluster examples in config.example.toml (Confluent, MSK SCRAM, MSK IAM, mTLS) are valid sinks', () => {
  const text = readFileSync(join(repoRoot, 'config.example.toml'), 'utf8');
  // Every commented "# [[sink]]" block up to the next bare "#" line, uncommented.
  const blocks = [...text.matchAll(/^# \[\[sink\]\]\n(?:# .*\n)+/gm)].map((m) => m[0].replace(/^# /gm, ''));
  assert.equal(blocks.length, 4, 'four examples');
  const secrets: SecretSources = { env: { CONFLUENT_API_SECRET: 'x' }, readFile: () => 'y' };
  // The mTLS example's files, played by a real throw-away PKI: the loader checks they are PEM.
  const dir = tempDir();
  const pki = makeTestPki(dir.path);
  const standIns: Record<string, string> = { '/etc/sluice/plant-ca.pem': pki.caCert, '/etc/sluice/gateway-7.crt': pki.clientCert, '/etc/sluice/gateway-7.key': pki.clientKey };
  const files: ConfigFiles = { isRegularFile: (p) => p in standIns, readFile: (p) => readFileSync(standIns[p]!) };
  const c = parseConfig(`${text}\n${blocks.join('\n')}`, { baseDir: '/etc/sluice', hostname: 'pi-7', secrets, files });
  dir.cleanup();
  const byName = new Map(c.sink.map((k) => [k.name, k]));
  assert.deepEqual([...byName.keys()].slice(-4), ['confluent', 'msk', 'msk-iam', 'plant']);
  assert.equal(byName.get('confluent')!.sasl?.mechanism, 'plain');
  assert.equal(byName.get('msk')!.delivery, 'exactly_once');
  assert.equal(byName.get('msk-iam')!.sasl?.mechanism, 'oauthbearer');
  assert.equal(byName.get('plant')!.tls.certFile, '/etc/sluice/gateway-7.crt');
});

test('config.example.toml shows every key of the schema', () => {
  const text = readFileSync(join(repoRoot, 'config.example.toml'), 'utf8');
  const keys = new Set<string>();
  const walk = (schema: unknown): void => {
    if (!schema || typeof schema !== 'object') return;
    const s = schema as { properties?: Record<string, unknown>; items?: unknown; anyOf?: unknown[] };
    for (const [k, v] of Object.entries(s.properties ?? {})) {
      keys.add(k);
      walk(v);
    }
    walk(s.items);
    for (const a of s.anyOf ?? []) walk(a);
  };
  walk(configJsonSchema());
  const missing = [...keys].filter((k) => !new RegExp(`^(# )?\\[*(\\w+\\.)*${k}\\]*( =|\\]|$)`, 'm').test(text));
  assert.deepEqual(missing, []);
});

test('defaults come from the schema: an almost empty config is complete', () => {
  const c = parseConfig('', { hostname: 'host name!' });
  assert.equal(c.gateway.id, 'host-name-');
  assert.equal(c.journal.durability, 'power');
  assert.equal(c.journal.commitDelayMs, 5);
  assert.deepEqual(c.mqtt, []);
  assert.deepEqual(c.sink, []);
});

test('keys arrive camelCased, nested defaults filled', () => {
  const c = parseConfig('[[mqtt]]\n[[mqtt.subscribe]]\ntopic = "a/#"\n[[sink]]\nbrokers = ["k:9092"]\n');
  assert.equal(c.mqtt[0]!.maxPayloadBytes, 262144);
  assert.equal(c.mqtt[0]!.subscribe[0]!.qos, 1);
  assert.equal(c.mqtt[0]!.tls.rejectUnauthorized, true);
  assert.equal(c.sink[0]!.batchMaxRecords, 2000);
  assert.equal(c.sink[0]!.acks, 'all');
});

test('all errors at once, each as dotted.path: message', () => {
  const errors = errorsOf(`
[gateway]
id = "bad id"
[journal]
durability = "maybe"
[[mqtt]]
qos = 1
subscribe = [{ topic = "a", qos = 3 }]
[[sink]]
brokers = []
`);
  assert.ok(errors.some((e) => e.startsWith('gateway.id: ')), errors.join('\n'));
  assert.ok(errors.some((e) => e.startsWith('journal.durability: ')));
  assert.ok(errors.some((e) => e === 'mqtt[0]: unknown key "qos"'));
  assert.ok(errors.some((e) => e.startsWith('mqtt[0].subscribe[0].qos: ')));
  assert.ok(errors.some((e) => e.startsWith('sink[0].brokers: at least one broker')));
  assert.ok(errors.length >= 5);
});

test('duplicate names and cross-field limits are reported', () => {
  const errors = errorsOf(`
[[mqtt]]
reconnect_min_ms = 5000
reconnect_max_ms = 100
subscribe = [{ topic = "a" }]
[[mqtt]]
subscribe = [{ topic = "b" }]
[[sink]]
brokers = ["a:1"]
[sink.tls]
cert_file = "c.pem"
[[sink.route]]
match = "a/#x/b"
topic = "t"
`);
  assert.ok(errors.includes('mqtt[1].name: "mqtt" is already used by mqtt[0]'), errors.join('\n'));
  assert.ok(errors.includes('mqtt[0].reconnect_min_ms: must not exceed reconnect_max_ms (100)'));
  assert.ok(errors.includes('sink[0].tls: cert_file and key_file go together'));
  assert.ok(errors.some((e) => e.startsWith('sink[0].route[0].match: "#" must be the last level')));
});

test('a TOML syntax error gives its line', () => {
  const errors = errorsOf('[journal]\npath = \n');
  assert.equal(errors.length, 1);
  assert.match(errors[0]!, /^\(toml\) line 2, column \d+: /);
});

test('secrets come from inline, env or file, exactly one; they never print', () => {
  const base = '[[mqtt]]\nsubscribe = [{ topic = "a" }]\nusername = "u"\n';
  const fromEnv = parseConfig(`${base}password_env = "PW"`, { secrets: { env: { PW: 's3cret-env' }, readFile: noSecrets.readFile } });
  assert.equal(fromEnv.mqtt[0]!.password!.reveal(), 's3cret-env');
  const fromFile = parseConfig(`${base}password_file = "/run/pw"`, { secrets: { env: {}, readFile: (p) => (p === '/run/pw' ? 's3cret-file\n' : '') } });
  assert.equal(fromFile.mqtt[0]!.password!.reveal(), 's3cret-file');
  const inline = parseConfig(`${base}password = "s3cret-inline"`);
  const printed = [String(inline.mqtt[0]!.password), JSON.stringify(inline), inspect(inline, { depth: 10 })].join('\n');
  assert.doesNotMatch(printed, /s3cret/);
  assert.match(printed, /\[redacted\]/);
  assert.deepEqual(errorsOf(`${base}password = "a"\npassword_env = "B"`), ['mqtt[0]: give only one of password, password_env, password_file']);
  assert.deepEqual(errorsOf(`${base}password_env = "NOT_SET"`), ['mqtt[0].password_env: environment variable NOT_SET is not set']);
});

test('Secret hides its value from every printing path', () => {
  const s = new Secret('hunter2');
  assert.equal(`${s}`, '[redacted]');
  assert.equal(JSON.stringify({ s }), '{"s":"[redacted]"}');
  assert.equal(inspect(s), '[redacted]');
  assert.equal(s.reveal(), 'hunter2');
});

test('the JSON Schema carries descriptions and defaults for editors', () => {
  const schema = JSON.stringify(configJsonSchema());
  assert.match(schema, /"durability":\{[^}]*"default":"power"/);
  assert.match(schema, /survives power loss/);
});

test('serial: defaults, camelCase, and every cross-field rule reported', () => {
  const c = parseConfig('[[serial]]\nname = "ws"\npath = "/dev/ttyUSB0"\n');
  const p = c.serial[0]!;
  assert.equal(p.baudRate, 9600);
  assert.equal(p.framing, 'line');
  assert.equal(p.decoder, 'text');
  assert.equal(p.onDecodeError, 'error_route');
  assert.equal(p.topic, 'serial/{name}');
  assert.equal(p.maxFrameBytes, 65536);
  const errors = errorsOf(`
[[serial]]
name = "a"
path = "/dev/x"
framing = "delimiter"
decoder = "csv"
key = "k"
key_field = "f"
poll_request = "R"
poll_request_hex = "00"
poll_interval_ms = 100
poll_timeout_ms = 100
reopen_min_ms = 500
reopen_max_ms = 100
regex = "x"
[[serial]]
name = "a"
path = "/dev/x"
framing = "fixed"
frame_length = 100
max_frame_bytes = 10
decoder = "text"
key_field = "f"
[[serial]]
name = "b"
path = "/dev/y"
framing = "regex"
regex = "a*"
[[serial]]
name = "c"
path = "/dev/z"
framing = "regex"
regex = "("
delimiter = ";"
csv_columns = ["a", "a"]
`);
  for (const e of [
    'serial[0].delimiter: framing = "delimiter" needs delimiter or delimiter_hex',
    'serial[0].regex: only used with framing = "regex"',
    'serial[0].csv_columns: decoder = "csv" needs csv_columns',
    'serial[0]: give only one of key, key_field',
    'serial[0]: give only one of poll_request, poll_request_hex',
    'serial[0].poll_timeout_ms: must be below poll_interval_ms (100)',
    'serial[0].reopen_min_ms: must not exceed reopen_max_ms (100)',
    'serial[1].name: "a" is already used by serial[0]',
    'serial[1].path: "/dev/x" is already read by serial[0]',
    'serial[1].frame_length: must not exceed max_frame_bytes (10)',
    'serial[1].key_field: needs a decoder that yields fields (json, csv, kv, nmea)',
    'serial[2].regex: must not match the empty string',
    'serial[3].delimiter: only used with framing = "delimiter"',
    'serial[3].csv_columns: only used with decoder = "csv"',
    'serial[3].csv_columns: column names must be unique',
  ]) {
    assert.ok(errors.includes(e), `missing "${e}" in:\n${errors.join('\n')}`);
  }
  assert.ok(errors.some((e) => e.startsWith('serial[3].regex: Invalid regular expression')), errors.join('\n'));
  assert.ok(errorsOf('[[serial]]\nname = "x"\n').some((e) => e.startsWith('serial[0].path: ')), 'path is required');
});
