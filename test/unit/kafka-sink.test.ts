import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { pino } from 'pino';
import { parseConfig } from '../../src/config/load.js';
import { SqliteJournal } from '../../src/journal/sqlite-journal.js';
import { Metrics } from '../../src/metrics.js';
import type { KafkaProducerClient, OutgoingBatch } from '../../src/sinks/kafka-client.js';
import { KafkaSink } from '../../src/sinks/kafka-sink.js';
import { SluiceError } from '../../src/errors.js';
import { systemClock } from '../../src/util/clock.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait-for.js';

const tmp = tempDir();
after(() => tmp.cleanup());

async function setup(name: string, send: (b: OutgoingBatch) => Promise<void>, logger = pino({ level: 'silent' })) {
  const config = parseConfig(`
[journal]
path = "${join(tmp.path, name, 'journal.db')}"
[[sink]]
brokers = ["127.0.0.1:1"]
linger_ms = 0
retry_min_ms = 10
retry_max_ms = 20
[[sink.route]]
match = "dev/+d/#"
topic = "t"
key = "{d}"
`);
  const journal = new SqliteJournal({ ...config.journal, logger, clock: systemClock });
  await journal.start();
  journal.registerSinks(['kafka']);
  let connects = 0;
  let clients = 0;
  const client: KafkaProducerClient = { connect: async () => void connects++, send: (b) => send(b), disconnect: async () => undefined };
  const metrics = new Metrics();
  const sink = new KafkaSink(config.sink[0]!, {
    journal,
    logger,
    metrics,
    clock: systemClock,
    gatewayId: 'gw',
    createClient: () => {
      clients++;
      return client;
    },
  });
  return { journal, sink, metrics, connects: () => connects, clients: () => clients };
}

const rec = (i: number) => ({ time: 1700000000000 + i, source: 'mqtt:x', topic: `dev/d${i % 2}/r`, key: null, payload: Buffer.from(String(i)), headers: null });

test('the cursor moves only after a confirmed send; failures retry the same batch with a new client', async () => {
  let failures = 2;
  const sent: string[][] = [];
  const { journal, sink, metrics, connects } = await setup('retry', async (b) => {
    if (failures-- > 0) throw new Error('broker away');
    sent.push(b.topicMessages.flatMap((t) => t.messages.map((m) => m.value.toString())));
  });
  for (let i = 0; i < 5; i++) journal.append(rec(i));
  journal.flush();
  await sink.start();
  await waitFor(() => journal.cursor('kafka') === 5, { what: 'cursor at 5' });
  assert.deepEqual(sent, [['0', '1', '2', '3', '4']]);
  assert.equal(metrics.get('sluice_sink_errors_total', { sink: 'kafka' }), 2);
  assert.ok(connects() >= 3, 'a new client after each failure');
  await sink.stop();
  await journal.stop();
});

test('a programming error stops the sink instead of retrying it; the records stay journaled', async () => {
  let calls = 0;
  const { journal, sink } = await setup('bug', async () => {
    calls++;
    throw new TypeError('cannot read properties of undefined');
  });
  journal.append(rec(1));
  journal.flush();
  await sink.start();
  await waitFor(() => calls > 0, { what: 'a send' });
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(calls, 1, 'not retried');
  assert.equal(journal.cursor('kafka'), 0);
  assert.equal(journal.read(0, 10, 1 << 20).length, 1);
  await sink.stop();
  await journal.stop();
});

test('an outage logs one warn line, and one more only when the failure needs another fix (an ACL refusal, with a hint); not one per retry', async () => {
  const lines: { msg: string; err?: string; hint?: string }[] = [];
  const logger = pino({ level: 'warn' }, { write: (l: string) => void lines.push(JSON.parse(l) as { msg: string }) });
  const failures = [
    new Error('Connection error: connect ECONNREFUSED'),
    Object.assign(new Error('no answer from Kafka within 30000 ms'), { code: 'SLUICE_KAFKA_TIMEOUT' }),
    new Error('Connection error: connect ECONNREFUSED'),
    Object.assign(new Error('Not authorized to access topics: [Topic authorization failed]'), { type: 'TOPIC_AUTHORIZATION_FAILED' }),
    Object.assign(new Error('Not authorized to access topics: [Topic authorization failed]'), { type: 'TOPIC_AUTHORIZATION_FAILED' }),
    Object.assign(new Error('Not authorized to access topics: [Topic authorization failed]'), { type: 'TOPIC_AUTHORIZATION_FAILED' }),
  ];
  const { journal, sink } = await setup('kinds', async () => {
    const err = failures.shift();
    if (err) throw err;
  }, logger);
  journal.append(rec(1));
  journal.flush();
  await sink.start();
  await waitFor(() => journal.cursor('kafka') === 1, { what: 'shipped after six failures' });
  const warns = lines.filter((l) => /cannot ship to Kafka/.test(l.msg));
  assert.equal(warns.length, 2, JSON.stringify(warns));
  assert.match(warns[0]!.err!, /ECONNREFUSED/);
  assert.match(warns[1]!.hint!, /grant the sink's principal WRITE/);
  await sink.stop();
  await journal.stop();
});

test('a fenced sink stops shipping for good: no new producer (it would fence the newer instance back), the cursor stays, the records stay journaled', async () => {
  let calls = 0;
  const { journal, sink, metrics, clients } = await setup('fenced', async () => {
    calls++;
    throw new SluiceError('SLUICE_KAFKA_FENCED', 'fenced: a newer producer took over', { retriable: false });
  });
  for (let i = 0; i < 3; i++) journal.append(rec(i));
  journal.flush();
  await sink.start();
  await waitFor(() => metrics.get('sluice_sink_fenced_total', { sink: 'kafka' }) === 1, { what: 'fenced counted' });
  // More records: a sink still running would try them (retry_min_ms is 10 ms).
  journal.append(rec(3));
  journal.flush();
  await sink.stop();
  assert.equal(calls, 1, 'one attempt, never retried');
  assert.equal(clients(), 1, 'no second producer');
  assert.equal(journal.cursor('kafka'), 0);
  assert.equal(journal.read(0, 10, 1 << 20).length, 4);
  assert.equal(metrics.get('sluice_sink_errors_total', { sink: 'kafka' }), 1);
  await journal.stop();
});
