import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Daemon, repoRoot, runCli } from '../helpers/daemon.js';
import Database from 'better-sqlite3';
import { decodeRecords } from '../../src/journal/record-codec.js';
import { freePort } from '../helpers/net.js';
import { tempDir } from '../helpers/tmp.js';

const tmp = tempDir();
after(() => tmp.cleanup());

test('--help and --version exit 0; unknown commands and missing -c exit 2', async () => {
  const help = await runCli(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /sluice run -c FILE/);
  assert.match(help.stdout, /Exit codes/);
  const version = await runCli(['--version']);
  assert.equal(version.code, 0);
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
  assert.equal(version.stdout.trim(), `sluice ${pkg.version}`);
  assert.equal((await runCli(['frobnicate'])).code, 2);
  assert.equal((await runCli(['run'])).code, 2);
  assert.equal((await runCli(['run', '-c', 'x', '--log-level', 'loud'])).code, 2);
  assert.equal((await runCli(['--bogus'])).code, 2);
});

test('check-config accepts config.example.toml', async () => {
  const r = await runCli(['check-config', '-c', join(repoRoot, 'config.example.toml')]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /ok/);
});

test('schema prints a JSON Schema', async () => {
  const r = await runCli(['schema']);
  assert.equal(r.code, 0);
  const schema = JSON.parse(r.stdout) as { properties: Record<string, unknown> };
  assert.ok(schema.properties.journal && schema.properties.mqtt && schema.properties.sink);
});

test('the example config runs with no MQTT broker, no Kafka and no serial device: it waits, and Ctrl-C stops it cleanly', async () => {
  // The example's own file, with its broker ports moved to ones nothing listens on.
  const text = readFileSync(join(repoRoot, 'config.example.toml'), 'utf8')
    .replace('127.0.0.1:1883', `127.0.0.1:${await freePort()}`)
    .replace('127.0.0.1:9092', `127.0.0.1:${await freePort()}`);
  const config = join(tmp.path, 'sluice.toml');
  writeFileSync(config, text);
  const daemon = Daemon.run(config).start();
  await daemon.waitForLog(/sluice ready/);
  await daemon.waitForLog(/MQTT broker not reachable; waiting for it/);
  await daemon.waitForLog(/serial port lost; reopening with backoff/); // the example's GPS is not plugged in
  await daemon.waitForLog(/modbus link lost; reopening with backoff/); // nor its energy meter
  await new Promise((r) => setTimeout(r, 1500));
  assert.ok(daemon.running, 'still running while it waits');
  daemon.signal('SIGINT');
  await daemon.wait();
  assert.equal(daemon.exitCode, 0);
  // Beside the config; what it holds is the meter's polls, each saying the link is down (errors are data).
  const db = new Database(join(tmp.path, 'data/journal.db'), { readonly: true, fileMustExist: true });
  try {
    const rows = db.prepare('SELECT first_seq, count, data FROM batches').all() as { first_seq: number; count: number; data: Buffer }[];
    const records = rows.flatMap((r) => decodeRecords(r.data, r.first_seq, r.count));
    assert.ok(records.every((r) => r.source === 'modbus:switchboard' && JSON.parse(r.payload.toString()).ok === false), records.map((r) => `${r.source} ${r.payload.toString().slice(0, 80)}`).join('\n'));
  } finally {
    db.close();
  }
});

test('journal.path naming what is not a sluice journal (a hosts file, the config itself, a directory): run exits 6 with one clear line and touches nothing', async () => {
  const d = tempDir();
  try {
    const hosts = join(d.path, 'hosts');
    writeFileSync(hosts, '127.0.0.1 localhost\n::1 localhost ip6-localhost\n');
    const configPath = join(d.path, 'sluice.toml');
    for (const target of [hosts, configPath, d.path]) {
      writeFileSync(configPath, `[journal]\npath = ${JSON.stringify(target)}\n[http]\nenabled = false\n[health]\nenabled = false\n`);
      const before = new Map([hosts, configPath].map((f) => [f, readFileSync(f, 'utf8')]));
      const listing = readdirSync(d.path).sort();
      const r = await runCli(['run', '-c', configPath]);
      assert.equal(r.code, 6, r.stderr);
      assert.match(r.stderr, new RegExp(`journal\\.path: ${target.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} (is not a sluice journal \\(no SQLite header\\)|is a directory, not a sluice journal); refusing to touch it`));
      assert.doesNotMatch(r.stderr + r.stdout, /\n\s+at /, 'no stack trace');
      for (const [f, text] of before) assert.equal(readFileSync(f, 'utf8'), text, `${f} unchanged`);
      assert.deepEqual(readdirSync(d.path).sort(), listing, 'nothing renamed or created beside it');
    }
  } finally {
    d.cleanup();
  }
});
