import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import Database from 'better-sqlite3';
import { decodeRecords } from '../../src/journal/record-codec.js';
import { Daemon, writeConfig } from '../helpers/daemon.js';
import { MosquittoBroker } from '../helpers/mosquitto.js';
import { freePort } from '../helpers/net.js';
import { Publisher } from '../helpers/publisher.js';
import { tempDir } from '../helpers/tmp.js';
import { peakRssBytes, unitEnvironment, unitMemoryMaxBytes } from '../helpers/unit-env.js';
import { waitFor } from '../helpers/wait-for.js';

// The defaults: receive_maximum 1000, max_payload_bytes 262144.
const RECEIVE_MAXIMUM = 1000;
const MAX_PAYLOAD_BYTES = 262144;

const tmp = tempDir();
// No broker persistence: a 256 MiB queue snapshotted every second would only load the machine.
const mosquitto = new MosquittoBroker(join(tmp.path, 'mosquitto'), { persistence: false });
before(() => mosquitto.start());
after(async () => {
  await mosquitto.stop();
  tmp.cleanup();
});

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

test('a burst of receive_maximum × max_payload_bytes (1000 × 256 KiB) in flight, under the systemd unit\'s NODE_OPTIONS: no crash, every payload journaled intact, RSS under the unit\'s MemoryMax', async (t) => {
  const dir = join(tmp.path, 'burst');
  // Kafka absent: everything acknowledged must stay journaled.
  const config = writeConfig({ dir, mqttUrl: mosquitto.url, brokers: [`127.0.0.1:${await freePort()}`], clientId: 'burst' });
  const env = unitEnvironment();
  // First run: the persistent session and its subscription exist; then sluice is away.
  const first = Daemon.run(config, env).start();
  await first.waitForLog(/subscribed/);
  assert.equal(await first.stop(), 0);

  // The broker queues the burst for the absent session, so it arrives all at once on reconnect:
  // receive_maximum publishes of max_payload_bytes each, unacknowledged, in flight to sluice.
  const pub = new Publisher(mosquitto.url);
  await pub.connect();
  const sent = new Map<string, number>();
  const inflight = new Set<Promise<void>>();
  for (let i = 0; i < RECEIVE_MAXIMUM; i++) {
    const payload = randomBytes(MAX_PAYLOAD_BYTES);
    sent.set(sha(payload), (sent.get(sha(payload)) ?? 0) + 1);
    const p = pub.publish(`dev/d${i % 10}/blob`, payload).then(() => void inflight.delete(p));
    inflight.add(p);
    if (inflight.size >= 50) await Promise.race(inflight);
  }
  await Promise.all(inflight);
  await pub.close();

  const daemon = Daemon.run(config, env).start();
  const journal = join(dir, 'journal.db');
  let peak = 0;
  try {
    await daemon.waitForLog(/sluice ready/);
    await waitFor(
      () => {
        peak = Math.max(peak, peakRssBytes(daemon.pid!));
        const db = new Database(journal, { readonly: true, fileMustExist: true });
        try {
          return (db.prepare("SELECT coalesce(sum(count), 0) FROM batches").pluck().get() as number) >= RECEIVE_MAXIMUM;
        } finally {
          db.close();
        }
      },
      { timeoutMs: 180000, intervalMs: 100, what: 'the whole burst journaled' },
    );
    peak = Math.max(peak, peakRssBytes(daemon.pid!));
    assert.equal(daemon.exitCode, null, 'still running');
  } finally {
    assert.equal(await daemon.stop(), 0, 'clean stop after the burst');
  }
  t.diagnostic(`peak RSS ${(peak / 1e6).toFixed(1)} MB for ${((RECEIVE_MAXIMUM * MAX_PAYLOAD_BYTES) / 1e6).toFixed(0)} MB of payload in flight`);
  assert.ok(!daemon.lines.some((l) => /payload_too_large|heap out of memory|FATAL/.test(l)), 'nothing refused, no out-of-memory');
  // The kernel would have killed it above the unit's hard cap.
  assert.ok(peak < unitMemoryMaxBytes(), `peak RSS ${peak} stays below the unit's MemoryMax ${unitMemoryMaxBytes()}`);

  const db = new Database(journal, { readonly: true, fileMustExist: true });
  const got = new Map<string, number>();
  try {
    for (const row of db.prepare('SELECT first_seq, count, data FROM batches ORDER BY first_seq').iterate() as IterableIterator<{ first_seq: number; count: number; data: Buffer }>) {
      for (const r of decodeRecords(row.data, row.first_seq, row.count)) {
        if (r.source !== 'mqtt:local') continue;
        got.set(sha(r.payload), (got.get(sha(r.payload)) ?? 0) + 1);
      }
    }
  } finally {
    db.close();
  }
  assert.deepEqual(got, sent, 'every payload of the burst is journaled, intact, exactly once');
});
