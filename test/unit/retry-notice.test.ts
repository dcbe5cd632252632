import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { ProduceRetryNotice } from '../../src/sinks/retry-notice.js';

function capture(): { lines: { level: number; msg: string; reason?: string }[]; logger: pino.Logger } {
  const lines: { level: number; msg: string; reason?: string }[] = [];
  const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  return { lines, logger };
}

test('ProduceRetryNotice: one warning per incident naming the reason, one line when a send goes through', () => {
  const { lines, logger } = capture();
  let now = 1000;
  const n = new ProduceRetryNotice(logger, { now: () => now });
  n.sent();
  assert.equal(lines.length, 0, 'no incident, no line');
  n.kafkajsError('Producer', 'Failed to send messages: This server is not the leader for that topic-partition');
  n.kafkajsError('Producer', 'Failed to send messages: This server is not the leader for that topic-partition');
  n.kafkajsError('Connection', 'Response Produce(key: 0, version: 7)');
  n.kafkajsError('Producer', 'The request included a message larger than the max message size the server will accept');
  now = 1500;
  n.sent();
  assert.equal(lines.length, 2);
  assert.equal(lines[0]!.level, 40);
  assert.equal(lines[0]!.reason, 'This server is not the leader for that topic-partition');
  assert.match(lines[0]!.msg, /Kafka send failed \(a partition leader moved/);
  assert.match(lines[1]!.msg, /Kafka confirmed the send after retrying it/);
  assert.equal((lines[1] as unknown as { retries: number }).retries, 2);
  assert.equal((lines[1] as unknown as { afterMs: number }).afterMs, 500);
});

test('ProduceRetryNotice: an incident that ends in a failed send stays open across clients, and the sink logs its end', () => {
  const { lines, logger } = capture();
  const n = new ProduceRetryNotice(logger, { now: () => 0 });
  for (let i = 0; i < 5; i++) {
    n.kafkajsError('Producer', 'Failed to send messages: Connection error: connect ECONNREFUSED 127.0.0.1:9');
    n.failed();
  }
  n.sent();
  assert.equal(lines.length, 1, 'one warning for the whole outage; "Kafka reachable again" is the sink\'s');
  n.kafkajsError('Producer', 'Failed to send messages: Connection error: connect ECONNREFUSED 127.0.0.1:9');
  assert.equal(lines.length, 2, 'a new incident after a confirmed send');
});
