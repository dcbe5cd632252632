import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { test } from 'node:test';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { Daemon, runCli, writeConfig } from '../helpers/daemon.js';
import { gapPayloads } from '../helpers/gaps.js';
import { journalCounts } from '../helpers/journal-file.js';
import { consumeOrEmpty } from '../helpers/kcat.js';
import { Publisher, reading } from '../helpers/publisher.js';
import { brokersForFile } from '../helpers/brokers.js';
import { freePort } from '../helpers/net.js';
import { waitFor } from '../helpers/wait-for.js';

const { dir: base, mosquitto, kafka } = brokersForFile();

function writeFile(name: string, text: string): string {
  const path = join(base, name);
  writeFileSync(path, text);
  return path;
}

test('a TOML syntax error names its line and exits 3', async () => {
  const path = writeFile('syntax.toml', '[journal]\npath = "x.db"\ndurability = \n');
  const r = await runCli(['check-config', '-c', path]);
  assert.equal(r.code, 3);
  assert.match(r.stderr, /line 3/);
  assert.doesNotMatch(r.stderr, /    at /, 'no stack trace');
});

test('every config error is reported at once as dotted.path: message, and exit is 3', async () => {
  const path = writeFile(
    'many-errors.toml',
    `
[journal]
durability = "sometimes"
commit_delay_ms = -5
colour = "blue"

[[mqtt]]
url = "http://example"
password = "hunter2-secret"
subscribe = []

[[sink]]
brokers = ["no-port"]
[[sink.route]]
match = "a/#rest/b"
topic = "t"
`,
  );
  for (const args of [['check-config', '-c', path], ['run', '-c', path]]) {
    const r = await runCli(args);
    assert.equal(r.code, 3, r.stderr);
    for (const expected of [
      /journal\.durability: /,
      /journal\.commit_delay_ms: /,
      /journal: unknown key "colour"/,
      /mqtt\[0\]\.url: must start with mqtt:\/\//,
      /mqtt\[0\]\.subscribe: at least one subscription/,
      /sink\[0\]\.brokers\[0\]: must be host:port/,
    ]) {
      assert.match(r.stderr, expected);
    }
    assert.doesNotMatch(r.stderr, /hunter2/, 'secrets never printed');
    assert.doesNotMatch(r.stderr, /    at /, 'no stack trace');
  }
});

test('cross-field errors and secret sources are checked: missing env var, unreadable password file, bad route template', async () => {
  const path = writeFile(
    'secrets.toml',
    `
[[mqtt]]
password_env = "SLUICE_TEST_NOT_SET"
[[mqtt.subscribe]]
topic = "a/#"
[[sink]]
brokers = ["127.0.0.1:9092"]
[sink.sasl]
mechanism = "plain"
username = "u"
password_file = "/nonexistent/password"
[[sink.route]]
match = "a/+x"
topic = "t.{y}"
`,
  );
  const r = await runCli(['check-config', '-c', path]);
  assert.equal(r.code, 3);
  assert.match(r.stderr, /mqtt\[0\]\.password_env: environment variable SLUICE_TEST_NOT_SET is not set/);
  assert.match(r.stderr, /sink\[0\]\.sasl\.password_file: cannot read \/nonexistent\/password: ENOENT/);
  assert.match(r.stderr, /sink\[0\]\.route\[0\]\.match: topic template uses \{y\}/);
});

test('a missing config file is a clear error with exit 3', async () => {
  const r = await runCli(['run', '-c', join(base, 'nope.toml')]);
  assert.equal(r.code, 3);
  assert.match(r.stderr, /nope\.toml: cannot read config file: ENOENT/);
});

test('an oversized payload is rejected, counted, logged once with its reason and named in a gap record; the daemon keeps going', async () => {
  const dir = join(base, 'gw-oversize');
  const config = writeConfig({ dir, mqttUrl: mosquitto.url, brokers: [kafka.bootstrap], clientId: 'sluice-oversize', mqttExtra: 'max_payload_bytes = 1000\nusername = "gw"\npassword = "hunter2-secret"', sinkExtra: 'gap_topic = "gaps-oversize"', routes: [{ match: 'dev/+device/#', topic: 'oversize', key: '{device}' }] });
  const daemon = Daemon.run(config).start();
  try {
    await daemon.waitForLog(/subscribed/);
    const pub = new Publisher(mosquitto.url);
    await pub.connect();
    await pub.publish('dev/d1/reading', reading('d1', 1));
    await pub.publish('dev/d1/reading', Buffer.alloc(5000, 'x'));
    await pub.publish('dev/d1/reading', Buffer.alloc(6000, 'y'));
    await pub.publish('dev/d1/reading', reading('d1', 2));
    await pub.close();
    const msgs = await waitFor(async () => {
      const m = await consumeOrEmpty(kafka.bootstrap, 'oversize');
      return m.length >= 2 ? m : null;
    }, { what: 'the two good readings' });
    assert.deepEqual(msgs.map((m) => JSON.parse(m.payload!).n).sort(), [1, 2]);
    assert.ok(daemon.running, 'daemon still running');
    assert.equal(daemon.countLogs(/payload over max_payload_bytes rejected/), 1, 'logged once');
    assert.match(daemon.lines.find((l) => /max_payload_bytes rejected/.test(l))!, /"bytes":5000,"limit":1000/);
    // Acknowledged and not journaled: a gap record in Kafka says so, so the loss is not silent downstream.
    const gaps = gapPayloads(await waitFor(async () => {
      const m = await consumeOrEmpty(kafka.bootstrap, 'gaps-oversize');
      return gapPayloads(m).reduce((n, g) => n + (g.reason === 'payload_too_large' ? g.count : 0), 0) >= 2 ? m : null;
    }, { what: 'a payload_too_large gap record for both' }));
    const tooLarge = gaps.filter((g) => g.reason === 'payload_too_large');
    assert.equal(tooLarge.reduce((n, g) => n + g.count, 0), 2);
    assert.equal(tooLarge.reduce((n, g) => n + g.bytes, 0), 11000);
    assert.equal(await daemon.stop(), 0);
    const final = daemon.lines.find((l) => /final counters/.test(l))!;
    assert.match(final, /"sluice_source_rejected_total\{reason=\\"payload_too_large\\",source=\\"mqtt:local\\"\}":2/);
    assert.doesNotMatch(daemon.lines.join('\n'), /hunter2/, 'secrets never logged');
  } catch (err) {
    console.log(daemon.lines.slice(-30).join('\n'));
    throw err;
  } finally {
    await daemon.stop();
  }
});

test('records no route matches: skipped and counted by a sink without default_topic, shipped by one with it', async () => {
  const dir = join(base, 'gw-unrouted');
  const config = writeConfig({
    dir,
    mqttUrl: mosquitto.url,
    brokers: [kafka.bootstrap],
    clientId: 'sluice-unrouted',
    routes: [{ match: 'dev/+device/reading', topic: 'routed-a', key: '{device}' }],
    sinkExtra: '',
  });
  // A second sink with a default topic, appended to the generated config.
  writeFileSync(
    config,
    `${(await import('node:fs')).readFileSync(config, 'utf8')}
[[sink]]
name = "second"
brokers = ["${kafka.bootstrap}"]
retry_min_ms = 200
retry_max_ms = 2000
default_topic = "unrouted-b"
[[sink.route]]
match = "dev/+device/reading"
topic = "routed-b"
key = "{device}"
`,
  );
  const daemon = Daemon.run(config).start();
  try {
    await daemon.waitForLog(/subscribed/);
    const pub = new Publisher(mosquitto.url);
    await pub.connect();
    await pub.publish('dev/d1/reading', reading('d1', 1));
    await pub.publish('dev/d1/unknown-kind', reading('d1', 2));
    await pub.publish('dev/d1/unknown-kind', reading('d1', 3));
    await pub.publish('dev/d1/reading', reading('d1', 4));
    await pub.close();
    const a = await waitFor(async () => ((await consumeOrEmpty(kafka.bootstrap, 'routed-a')).length >= 2 ? consumeOrEmpty(kafka.bootstrap, 'routed-a') : null), { what: 'routed-a' });
    const b = await waitFor(async () => ((await consumeOrEmpty(kafka.bootstrap, 'routed-b')).length >= 2 ? consumeOrEmpty(kafka.bootstrap, 'routed-b') : null), { what: 'routed-b' });
    const u = await waitFor(async () => ((await consumeOrEmpty(kafka.bootstrap, 'unrouted-b')).length >= 2 ? consumeOrEmpty(kafka.bootstrap, 'unrouted-b') : null), { what: 'unrouted-b' });
    assert.deepEqual(a.map((m) => JSON.parse(m.payload!).n), [1, 4]);
    assert.deepEqual(b.map((m) => JSON.parse(m.payload!).n), [1, 4]);
    // No key: the two may land on different partitions, so compare as a set.
    assert.deepEqual(u.map((m) => JSON.parse(m.payload!).n).sort(), [2, 3]);
    assert.equal(u[0]!.key, null);
    await daemon.waitForLog(/no route matches this topic/);
    assert.equal(daemon.countLogs(/no route matches this topic/), 1, 'logged once per topic');
    await waitFor(() => journalCounts(join(dir, 'journal.db')).rows === 0, { what: 'journal drained: unrouted records do not block it' });
    assert.equal(await daemon.stop(), 0);
    assert.match(daemon.lines.find((l) => /final counters/.test(l))!, /"sluice_sink_unrouted_total\{sink=\\"kafka\\"\}":2/);
  } finally {
    await daemon.stop();
  }
});

test('SIGTERM leaves a hung in-flight batch for next time within the deadline; a second signal exits at once', async () => {
  // A "broker" that accepts connections and never answers.
  const sockets: Socket[] = [];
  const blackHole: Server = createServer((s) => sockets.push(s));
  const port = await freePort();
  await new Promise<void>((r) => blackHole.listen(port, '127.0.0.1', r));
  try {
    for (const twice of [false, true]) {
      const dir = join(base, `gw-hung-${twice}`);
      const config = writeConfig({ dir, mqttUrl: mosquitto.url, brokers: [`127.0.0.1:${port}`], clientId: `sluice-hung-${twice}` });
      const daemon = Daemon.run(config).start();
      await daemon.waitForLog(/subscribed/);
      const pub = new Publisher(mosquitto.url);
      await pub.connect();
      await pub.publish('dev/d1/reading', reading('d1', 1));
      await pub.close();
      await waitFor(() => sockets.length > 0, { what: 'sluice to connect to the black hole' });
      await waitFor(() => journalCounts(join(dir, 'journal.db')).records === 1, { what: 'record journaled' });
      daemon.signal('SIGTERM');
      if (twice) {
        await daemon.waitForLog(/"msg":"stopping"/);
        daemon.signal('SIGTERM');
      }
      await daemon.wait();
      if (twice) {
        assert.equal(daemon.exitCode, 143);
        assert.ok(daemon.countLogs(/second signal/) === 1);
      } else {
        assert.equal(daemon.exitCode, 0);
        assert.ok(daemon.countLogs(/"msg":"stopped"/) === 1);
      }
      // The record was not lost either way.
      assert.equal(journalCounts(join(dir, 'journal.db')).records, 1);
    }
  } finally {
    for (const s of sockets) s.destroy();
    blackHole.close();
  }
});
