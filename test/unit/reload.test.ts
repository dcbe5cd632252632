import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { pino } from 'pino';
import { parseConfig } from '../../src/config/load.js';
import { Gateway } from '../../src/gateway.js';
import type { KafkaProducerClient, OutgoingBatch } from '../../src/sinks/kafka-client.js';
import { metadataOf } from '../../src/sinks/record-metadata.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait-for.js';

const logger = pino({ level: 'silent' });

function config(dir: string, topic: string, extra = 'batch_max_records = 10'): ReturnType<typeof parseConfig> {
  return parseConfig(
    `
[gateway]
id = "gw"
[http]
enabled = false
[health]
enabled = false
[journal]
path = "${join(dir, 'journal.db')}"
durability = "crash"
[[sink]]
name = "k"
brokers = ["127.0.0.1:1"]
linger_ms = 0
${extra}
[[sink.route]]
match = "a/#"
topic = "${topic}"
`,
    { hostname: 'x' },
  );
}

test('reload with a batch in flight: the old sink finishes it before the new one starts from the cursor; every record sent once, the rest by the new route', async () => {
  const tmp = tempDir();
  const sent: { topic: string; seq: string }[] = [];
  let inflight = 0;
  let maxInflight = 0;
  let release: (() => void) | null = null;
  let sends = 0;
  const createKafkaClient = (): KafkaProducerClient => ({
    connect: async () => undefined,
    disconnect: async () => undefined,
    async send(batch: OutgoingBatch) {
      inflight++;
      maxInflight = Math.max(maxInflight, inflight);
      sends++;
      // The first batch hangs until the test lets it through, during the reload.
      if (sends === 1) await new Promise<void>((r) => (release = r));
      for (const t of batch.topicMessages) for (const m of t.messages) sent.push({ topic: t.topic, seq: String(metadataOf(m.headers)!.seq) });
      inflight--;
    },
  });
  const gw = new Gateway(config(tmp.path, 'old'), { logger, createKafkaClient });
  try {
    await gw.start();
    for (let i = 0; i < 100; i++) gw.journal.append({ time: Date.now(), source: 'mqtt:x', topic: `a/${i}`, key: null, payload: Buffer.from(String(i)), headers: null });
    gw.journal.flush();
    await waitFor(() => release !== null, { what: 'first batch in flight' });
    const reloading = gw.reload(config(tmp.path, 'new', 'batch_max_records = 25'));
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(sent.length, 0, 'the new sink has not sent while the old batch is unconfirmed');
    release!();
    const outcome = await reloading;
    assert.deepEqual(outcome.changed, ['sink:k']);
    await waitFor(() => gw.journal.cursor('k') === 100, { what: 'all 100 confirmed' });
    assert.equal(maxInflight, 1, 'never two batches in flight');
    assert.equal(sent.length, 100, 'each record sent once');
    assert.equal(new Set(sent.map((s) => s.seq)).size, 100);
    assert.deepEqual(sent.slice(0, 10).map((s) => s.topic), Array(10).fill('old'));
    assert.ok(sent.slice(10).every((s) => s.topic === 'new'));
  } finally {
    await gw.stop();
    tmp.cleanup();
  }
});

test('reload: a [[serial]] port a downlink writes through is kept as it runs, and the reload says a restart is needed; another [[serial]] is replaced', async () => {
  const tmp = tempDir();
  const serial = (baud: number): string => `
[[serial]]
name = "meter"
path = "${join(tmp.path, 'no-such-meter')}"
baud_rate = ${baud}
[[serial]]
name = "other"
path = "${join(tmp.path, 'no-such-other')}"
baud_rate = ${baud}
[[downlink]]
sink = "k"
retry_min_ms = 100
retry_max_ms = 1000
[[downlink.route]]
target = "meter"
serial = "meter"
`;
  const createKafkaClient = (): KafkaProducerClient => ({ connect: async () => undefined, disconnect: async () => undefined, send: async () => undefined });
  const gw = new Gateway(config(tmp.path, 't', `batch_max_records = 10\n${serial(9600)}`), { logger, createKafkaClient });
  try {
    await gw.start();
    const outcome = await gw.reload(config(tmp.path, 't', `batch_max_records = 10\n${serial(19200)}`));
    assert.ok(outcome.needRestart.includes('serial.meter (a [[downlink]] writes through it)'), JSON.stringify(outcome));
    assert.ok(!outcome.needRestart.some((n) => n.includes('serial.other')), JSON.stringify(outcome));
    assert.ok(outcome.changed.some((c) => c.includes('other')), `the other port is replaced: ${JSON.stringify(outcome)}`);
    assert.ok(!outcome.changed.some((c) => c.includes('meter')), `the downlink's port is kept: ${JSON.stringify(outcome)}`);
  } finally {
    await gw.stop();
    tmp.cleanup();
  }
});
