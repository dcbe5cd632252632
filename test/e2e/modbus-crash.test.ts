import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import Database from 'better-sqlite3';
import { Daemon } from '../helpers/daemon.js';
import { KafkaBroker } from '../helpers/kafka.js';
import { consumeOrEmpty, LIVE_TOPIC, type KafkaMessage } from '../helpers/kcat.js';
import { deviceToml, fullMap, sameValue, serverSpec } from '../helpers/modbus-map.js';
import { ModbusServer } from '../helpers/modbus-server.js';
import { freePort } from '../helpers/net.js';
import { tempDir } from '../helpers/tmp.js';
import { randomMs } from '../helpers/verify.js';
import { delay, waitFor } from '../helpers/wait-for.js';

/*
 * kill -9 of a daemon polling Modbus TCP (pymodbus) every 50 ms, once while it ships and once
 * while Kafka is away and a backlog of polls sits in the journal: every poll committed to the
 * journal before a kill is in Kafka after the restart, each with the values the server holds.
 */

const tmp = tempDir();
const kafka = new KafkaBroker(join(tmp.path, 'kafka'));
before(() => kafka.start());
after(async () => {
  await kafka.stop();
  tmp.cleanup();
});

/** Highest seq durably in the journal file (still journaled, or shipped and deleted). */
function committedSeq(path: string): number {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const journaled = (db.prepare('SELECT coalesce(max(last_seq), 0) FROM batches').pluck().get() as number) ?? 0;
    const shipped = (db.prepare('SELECT coalesce(max(seq), 0) FROM cursors').pluck().get() as number) ?? 0;
    return Math.max(journaled, shipped);
  } finally {
    db.close();
  }
}

const seqsOf = (messages: KafkaMessage[]): Set<number> => new Set(messages.map((m) => Number(m.headers['sluice.seq'])));

test('kill -9 while shipping and while Kafka is away: every poll journaled before a kill reaches Kafka after the restart', async () => {
  const plc = fullMap()[0]!;
  const port = await freePort();
  const server = new ModbusServer(tmp.path, serverSpec([plc]), { tcpPort: port });
  await server.start();
  const dir = join(tmp.path, 'gw');
  mkdirSync(dir, { recursive: true });
  const journal = join(dir, 'journal.db');
  const config = join(dir, 'sluice.toml');
  writeFileSync(
    config,
    `
[log]
format = "json"
[http]
enabled = false
[health]
enabled = false
[journal]
path = "${journal}"

[[modbus]]
name = "lan"
transport = "tcp"
address = "127.0.0.1:${port}"
reopen_min_ms = 100
reopen_max_ms = 500

${deviceToml([plc], 50).replace('timeout_ms = 300', 'timeout_ms = 40')}

[[sink]]
name = "kafka"
brokers = ["${kafka.bootstrap}"]
request_timeout_ms = 5000
connection_timeout_ms = 2000
retry_min_ms = 200
retry_max_ms = 1000

[[sink.route]]
match = "modbus/+bus/+device"
topic = "modbus.crash"
key = "{device}"
`,
  );
  let daemon = Daemon.run(config).start();
  const journaledAtKill: number[] = [];
  const kill = async (): Promise<void> => {
    await daemon.kill9();
    assert.equal(daemon.exitSignal, 'SIGKILL');
    journaledAtKill.push(committedSeq(journal));
  };
  try {
    await daemon.waitForLog(/modbus link open/);
    await waitFor(async () => (await consumeOrEmpty(kafka.bootstrap, 'modbus.crash', LIVE_TOPIC)).length >= 20, { timeoutMs: 60000, intervalMs: 300, what: '20 polls in Kafka' });
    // 1: in the middle of polling and shipping.
    await delay(randomMs(100, 800));
    await kill();
    daemon = Daemon.run(config).start();
    await daemon.waitForLog(/modbus link open/);
    // 2: Kafka away, the polls pile up in the journal.
    await kafka.stop();
    await delay(randomMs(1500, 2500));
    await kill();
    const inKafkaBefore = journaledAtKill[0]!;
    assert.ok(journaledAtKill[1]! > inKafkaBefore + 10, `a backlog was journaled while Kafka was away (seq ${inKafkaBefore} → ${journaledAtKill[1]})`);
    await kafka.start();
    daemon = Daemon.run(config).start();
    const want = Math.max(...journaledAtKill);
    const messages = await waitFor(
      async () => {
        const m = await consumeOrEmpty(kafka.bootstrap, 'modbus.crash', LIVE_TOPIC);
        const seqs = seqsOf(m);
        for (let s = 1; s <= want; s++) if (!seqs.has(s)) return null;
        return m;
      },
      { timeoutMs: 90000, intervalMs: 1000, what: `every seq up to ${want} in Kafka` },
    );
    const seqs = seqsOf(messages);
    const missing = Array.from({ length: want }, (_, i) => i + 1).filter((s) => !seqs.has(s));
    console.log(`modbus crash: 2 kill -9, ${want} polls journaled before the last kill, ${messages.length} records in Kafka (${messages.length - seqs.size} sent twice), ${missing.length} missing`);
    assert.deepEqual(missing, []);
    for (const m of messages) {
      const p = JSON.parse(m.payload!) as { device: string; ok: boolean; values: Record<string, { value: unknown; quality: string }> };
      assert.equal(p.device, 'plc');
      // A poll cut by the kill is never half-journaled: it is whole, or absent.
      if (!p.ok) continue;
      for (const v of plc.values) assert.ok(sameValue(v, p.values[v.name]!.value), `${v.name}: ${JSON.stringify(p.values[v.name])}`);
    }
    assert.ok(messages.filter((m) => (JSON.parse(m.payload!) as { ok: boolean }).ok).length >= want * 0.9, 'nearly all polls good (the server was up throughout)');
  } finally {
    assert.equal(await daemon.stop(), 0);
    await server.stop();
  }
});
