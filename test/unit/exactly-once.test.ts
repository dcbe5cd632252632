import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import kafkajs from 'kafkajs';
import { pino } from 'pino';
import { SqliteJournal } from '../../src/journal/sqlite-journal.js';
import { adoptCommittedCursor, cursorKeyFor, isProducerFenced, transactionalIdFor } from '../../src/sinks/exactly-once.js';
import { systemClock } from '../../src/util/clock.js';
import { tempDir } from '../helpers/tmp.js';

const tmp = tempDir();
after(() => tmp.cleanup());
const logger = pino({ level: 'silent' });

async function journalWith(name: string, n: number, t0: number) {
  const journal = new SqliteJournal({ path: join(tmp.path, `${name}.db`), durability: 'crash', commitDelayMs: 0, commitMaxRecords: 1000, logger, clock: systemClock });
  await journal.start();
  journal.registerSinks(['k']);
  for (let i = 0; i < n; i++) journal.append({ time: t0 + i, source: 'mqtt:x', topic: `dev/d${i}`, key: null, payload: Buffer.from(String(i)), headers: null });
  journal.flush();
  return journal;
}

test('transactional id and cursor key come from the gateway id and the sink name', () => {
  assert.equal(transactionalIdFor('pi-7', 'cloud'), 'sluice-pi-7-cloud');
  assert.equal(cursorKeyFor('pi-7', 'cloud'), 'pi-7/cloud');
});

test('a Kafka cursor whose last record matches this journal is adopted: those records are not sent again', async () => {
  const j = await journalWith('same', 10, 1_700_000_000_000);
  adoptCommittedCursor(j, 'k', { seq: 7, last: { seq: 6, time: String(1_700_000_000_005), topic: 'dev/d5' } }, logger);
  assert.equal(j.cursor('k'), 7);
  adoptCommittedCursor(j, 'k', { seq: 5 }, logger);
  assert.equal(j.cursor('k'), 7, 'never moves back');
  await j.stop();
});

test('a Kafka cursor from a replaced journal (same seq, other record) or past every record is ignored', async () => {
  const j = await journalWith('replaced', 10, 1_800_000_000_000);
  adoptCommittedCursor(j, 'k', { seq: 7, last: { seq: 6, time: String(1_700_000_000_005), topic: 'dev/d5' } }, logger);
  assert.equal(j.cursor('k'), 0);
  adoptCommittedCursor(j, 'k', { seq: 600 }, logger);
  assert.equal(j.cursor('k'), 0);
  await j.stop();
});

const { KafkaJSNonRetriableError, KafkaJSProtocolError } = kafkajs;

/** A kafkajs protocol error as the broker's answer code makes it (protocol/error.js createErrorFromCode). */
const protocolError = (type: string, code: number) => new KafkaJSProtocolError(Object.assign(new Error(`${type} message`), { type, code, retriable: false }));

test('a fenced producer is recognised from the broker\'s answer, also wrapped by kafkajs\'s retrier; other errors are not', () => {
  const epoch = protocolError('INVALID_PRODUCER_EPOCH', 47);
  assert.equal(isProducerFenced(epoch), true);
  // kafkajs 2.2.4 has no name for code 90 (PRODUCER_FENCED): it becomes KAFKA_UNKNOWN_ERROR with the code.
  assert.equal(isProducerFenced(protocolError('KAFKA_UNKNOWN_ERROR', 90)), true);
  // retry/index.js: new KafkaJSNonRetriableError(e, { cause: e.cause || e })
  const wrapped = new (KafkaJSNonRetriableError as unknown as new (e: Error, o: { cause: Error }) => Error)(epoch, { cause: epoch });
  assert.equal(isProducerFenced(wrapped), true);
  assert.equal(isProducerFenced(protocolError('CONCURRENT_TRANSACTIONS', 51)), false);
  assert.equal(isProducerFenced(protocolError('MESSAGE_TOO_LARGE', 10)), false);
  assert.equal(isProducerFenced(Object.assign(new Error('x'), { code: 47 })), false, 'a bare numeric code without a Kafka error type');
  assert.equal(isProducerFenced(new Error('Producer attempted an operation with an old epoch')), false);
  assert.equal(isProducerFenced(undefined), false);
});
