import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import type { GapReport } from '../../src/journal/gaps.js';
import { Metrics } from '../../src/metrics.js';
import { neverAcceptedReason, RejectHandler } from '../../src/sinks/dead-letter.js';
import type { OutgoingBatch } from '../../src/sinks/kafka-client.js';

const rec = (seq: number, size = 10) => ({ seq, time: 1000 + seq, source: 'mqtt:x', topic: 'dev/a', key: null, payload: Buffer.alloc(size, 97), headers: null });
const tooLarge = (): Error => Object.assign(new Error('The request included a message larger than the max message size the server will accept'), { type: 'MESSAGE_TOO_LARGE', retriable: false });

function harness(opts: { deadLetterTopic?: string; refuse: (b: OutgoingBatch) => boolean }) {
  const sent: { topic: string; seqs: string[]; lastSeq: number }[] = [];
  const gaps: GapReport[] = [];
  const metrics = new Metrics();
  const handler = new RejectHandler({
    sinkName: 's',
    deadLetterTopic: opts.deadLetterTopic,
    logger: pino({ level: 'silent' }),
    metrics,
    reportGap: (g) => gaps.push(g),
    toBatch: (records) => ({ topicMessages: [{ topic: 't', messages: records.map((r) => ({ key: null, value: r.payload, timestamp: String(r.time), headers: { 'sluice.seq': String(r.seq) } })) }] }),
    send: async (b, lastSeq) => {
      if (opts.refuse(b)) throw tooLarge();
      for (const t of b.topicMessages) sent.push({ topic: t.topic, seqs: t.messages.map((m) => String(m.headers['sluice.seq']!)), lastSeq });
      if (b.topicMessages.length === 0) sent.push({ topic: '(cursor only)', seqs: [], lastSeq });
    },
  });
  return { handler, sent, gaps, metrics };
}

test('neverAcceptedReason looks through kafkajs wrappers; other errors are not refusals', () => {
  assert.equal(neverAcceptedReason(tooLarge()), 'record_too_large');
  assert.equal(neverAcceptedReason({ message: 'x', cause: { type: 'INVALID_TOPIC_EXCEPTION' } }), 'invalid_topic');
  assert.equal(neverAcceptedReason(new Error('Connection error')), null);
  assert.equal(neverAcceptedReason({ type: 'NOT_LEADER_FOR_PARTITION' }), null);
});

test('halving isolates the refused record; the others ship in order; it goes to the dead-letter topic', async () => {
  const big = (b: OutgoingBatch): boolean => b.topicMessages.some((t) => t.topic === 't' && t.messages.some((m) => m.value.length > 100));
  const { handler, sent, gaps, metrics } = harness({ deadLetterTopic: 'dlq', refuse: big });
  await handler.isolate([rec(1), rec(2), rec(3, 500), rec(4), rec(5)]);
  const shipped = sent.filter((s) => s.topic === 't').flatMap((s) => s.seqs);
  assert.deepEqual(shipped, ['1', '2', '4', '5']);
  assert.deepEqual(sent.filter((s) => s.topic === 'dlq').map((s) => [s.seqs, s.lastSeq]), [[['3'], 3]]);
  assert.equal(sent.at(-1)!.lastSeq, 5, 'the cursor ends past the batch');
  assert.equal(gaps.length, 0);
  assert.equal(metrics.get('sluice_sink_rejected_total', { sink: 's', reason: 'record_too_large', action: 'dead_letter' }), 1);
});

test('without a dead-letter topic (or when it refuses too) the record is dropped with a gap report and the cursor moves past it', async () => {
  const { handler, sent, gaps } = harness({ refuse: (b) => b.topicMessages.some((t) => t.messages.some((m) => m.value.length > 100)) });
  await handler.isolate([rec(1), rec(2, 500)]);
  assert.deepEqual(sent.map((s) => [s.topic, s.lastSeq]), [['t', 1], ['(cursor only)', 2]]);
  assert.equal(gaps.length, 1);
  assert.deepEqual({ reason: gaps[0]!.reason, firstSeq: gaps[0]!.firstSeq, count: gaps[0]!.count, bytes: gaps[0]!.bytes, sink: gaps[0]!.sink }, { reason: 'kafka_record_too_large', firstSeq: 2, count: 1, bytes: 500, sink: 's' });
});

test('a retriable error while isolating is thrown to the sink (which backs off and re-reads)', async () => {
  const { handler } = harness({ refuse: () => false });
  const h2 = new RejectHandler({ ...(handler as unknown as { deps: ConstructorParameters<typeof RejectHandler>[0] }).deps, send: async () => { throw new Error('Connection error'); } });
  await assert.rejects(h2.isolate([rec(1)]), /Connection error/);
});
