import { randomUUID } from 'node:crypto';
import { Kafka, type Admin, type Consumer } from './kafkajs.js';
import type { Logger } from 'pino';
import type { SinkConfig } from '../config/load.js';
import { SluiceError } from '../errors.js';
import type { Journal } from '../journal/journal.js';
import { compressionType, registerCodec } from './compression.js';
import { installFastProduceEncoding } from './kafkajs-fast-encode.js';
import { PartitionCoverage } from './partition-coverage.js';
import { metadataOf } from './record-metadata.js';
import { kafkajsConfig, retryNoticeFor } from './kafkajs-config.js';
import type { CommittedCursor, KafkaClientContext, KafkaProducerClient, OutgoingBatch } from './kafka-producer-client.js';

/** Transactional id of a sink: stable across restarts, so a restarted gateway fences its old producer. */
export function transactionalIdFor(gatewayId: string, sinkName: string): string {
  return `sluice-${gatewayId}-${sinkName}`;
}

/** Key of a sink's cursor record in the cursor topic. */
export function cursorKeyFor(gatewayId: string, sinkName: string): string {
  return `${gatewayId}/${sinkName}`;
}

/**
 * Kafka's answers to a producer whose epoch is no longer current: INVALID_PRODUCER_EPOCH (47, what
 * brokers send kafkajs's request versions) and PRODUCER_FENCED (90, newer request versions).
 */
const FENCED_TYPES = new Set(['INVALID_PRODUCER_EPOCH', 'PRODUCER_FENCED']);
const FENCED_CODES = new Set([47, 90]);

/**
 * True when `err` (or an error it wraps: kafkajs wraps protocol errors in `cause`) says a newer
 * producer with the same transactional id took over. Such a producer can never commit again.
 */
export function isProducerFenced(err: unknown): boolean {
  for (let e = err as { type?: unknown; code?: unknown; cause?: unknown } | undefined, depth = 0; e && typeof e === 'object' && depth < 5; e = e.cause as typeof e, depth++) {
    if (typeof e.type === 'string' && FENCED_TYPES.has(e.type)) return true;
    if (typeof e.code === 'number' && FENCED_CODES.has(e.code) && e.type !== undefined) return true;
  }
  return false;
}

/** The value of a cursor record (JSON). */
interface CursorValue {
  seq: number;
  gateway: string;
  sink: string;
  time: string;
  last?: CommittedCursor['last'];
}

/**
 * seq, time and topic of the highest-seq message of a batch, from its metadata header (compact or
 * legacy: `metadata_headers` may change between runs). The cursor record keeps the shape earlier
 * versions wrote, so a cursor topic written before an upgrade is read back the same.
 */
export function lastShipped(batch: OutgoingBatch): CommittedCursor['last'] {
  let last: CommittedCursor['last'];
  // Messages of a topic are in journal order: only each topic's last can be the highest.
  for (const t of batch.topicMessages) {
    const m = t.messages[t.messages.length - 1];
    const meta = m ? metadataOf(m.headers) : null;
    if (meta && (!last || meta.seq > last.seq)) last = { seq: meta.seq, time: meta.time, topic: meta.topic };
  }
  return last;
}

/**
 * Exactly-once producer: every batch and the sink's cursor record (topic `cursor_topic`, key
 * "<gateway>/<sink>") go in one Kafka transaction, the way Kafka Connect's exactly-once source
 * tasks commit source offsets. `connect` initialises the transactional id, which fences an older
 * producer of the same sink and aborts its open transaction; `committedCursor` then reads back,
 * read_committed, the last cursor that made it.
 */
export function createTransactionalClient(cfg: SinkConfig, clientId: string, logger: Logger, ctx?: KafkaClientContext): KafkaProducerClient {
  const gatewayId = ctx?.gatewayId ?? clientId;
  const notice = retryNoticeFor(cfg, logger, ctx?.clock);
  const coverage = new PartitionCoverage(logger);
  installFastProduceEncoding();
  const kafka = new Kafka(kafkajsConfig(cfg, clientId, logger, ctx?.clock, notice));
  const transactionalId = transactionalIdFor(gatewayId, cfg.name);
  const producer = kafka.producer({
    transactionalId,
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: true,
    // A partition kafkajs skipped after a leader change must fail the transaction, not commit without it.
    createPartitioner: coverage.createPartitioner,
    transactionTimeout: Math.max(60000, cfg.requestTimeoutMs * 2),
  });
  const compression = compressionType(cfg.compression);
  const key = cursorKeyFor(gatewayId, cfg.name);
  // Carried over to cursor-only commits (a record dropped with a gap record), which ship no message.
  let last: CommittedCursor['last'];
  return {
    async connect() {
      await registerCodec(cfg.compression);
      await producer.connect();
      await ensureCursorTopic(kafka, cfg.cursorTopic, logger);
      // The first transaction initialises the producer id: this is where an older instance is fenced.
      const fence = await producer.transaction();
      await fence.abort();
    },
    async send(batch, timeoutMs, lastSeq) {
      if (lastSeq === undefined) throw new SluiceError('SLUICE_KAFKA_CURSOR', 'exactly-once send without a cursor', { retriable: false });
      const shipped = lastShipped(batch) ?? last;
      const value: CursorValue = { seq: lastSeq, gateway: gatewayId, sink: cfg.name, time: new Date().toISOString(), last: shipped };
      const txn = await producer.transaction();
      const topicMessages = [...batch.topicMessages, { topic: cfg.cursorTopic, messages: [{ key, value: JSON.stringify(value) }] }];
      coverage.begin(topicMessages);
      try {
        coverage.check(await txn.sendBatch({ topicMessages, acks: -1, timeout: timeoutMs, compression }));
        await txn.commit();
        last = shipped;
      } catch (err) {
        notice.failed();
        // Unknown outcome is fine: the sink drops this client, the next one fences and reads the cursor back.
        await txn.abort().catch(() => undefined);
        if (isProducerFenced(err)) {
          // Not retriable: a new producer would fence the newer instance in turn, and the two would
          // take turns sending. (A transaction the broker expired gives the same answer, but the sink
          // gives up on a send long before transaction_timeout, so here it means another instance.)
          throw new SluiceError(
            'SLUICE_KAFKA_FENCED',
            `fenced: a newer producer with transactional id "${transactionalId}" took over (another instance of gateway "${gatewayId}", sink "${cfg.name}", is running); this one can no longer commit`,
            { retriable: false, cause: err },
          );
        }
        throw err;
      }
      notice.sent();
    },
    disconnect: () => producer.disconnect(),
    async committedCursor() {
      const c = await readCommittedCursor(kafka, cfg.cursorTopic, key, cfg.requestTimeoutMs * 2);
      last = c?.last;
      return c;
    },
  };
}

async function ensureCursorTopic(kafka: Kafka, topic: string, logger: Logger): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    // One partition: the cursor records of a gateway sit in order in one log.
    await admin.createTopics({ topics: [{ topic, numPartitions: 1, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }], waitForLeaders: true });
  } catch (err) {
    // E.g. no CREATE permission: the topic may exist already (or be auto-created); reading it will tell.
    logger.debug({ err: String(err), topic }, 'could not create the cursor topic');
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/**
 * Reads the cursor topic from the beginning, read_committed, up to its current end, and returns
 * the latest seq recorded under `key` (null if none). A throw-away consumer group with no
 * committed offsets is used: the read never commits anything.
 */
export async function readCommittedCursor(kafka: Kafka, topic: string, key: string, timeoutMs: number): Promise<CommittedCursor | null> {
  const admin: Admin = kafka.admin();
  await admin.connect();
  let ends: Map<number, number>;
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    ends = new Map(offsets.filter((o) => Number(o.high) > Number(o.low)).map((o) => [o.partition, Number(o.high)]));
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
  if (ends.size === 0) return null;
  const consumer: Consumer = kafka.consumer({ groupId: `sluice-cursor-${key.replace(/[^A-Za-z0-9._-]/g, '_')}-${randomUUID().slice(0, 8)}`, maxWaitTimeInMs: 250, readUncommitted: false });
  let latest: { cursor: CommittedCursor; ts: number } | null = null;
  const remaining = new Set(ends.keys());
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    const done = new Promise<void>((resolve) => {
      // Fired for every fetched batch, also one holding only transaction markers (kafkajs #1256).
      consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
        const end = ends.get(payload.partition);
        if (end !== undefined && Number(payload.lastOffset) >= end - 1) remaining.delete(payload.partition);
        if (remaining.size === 0) resolve();
      });
    });
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ message }) => {
        if (message.key?.toString() !== key || !message.value) return;
        try {
          const v = JSON.parse(message.value.toString()) as CursorValue;
          const ts = Number(message.timestamp);
          if (typeof v.seq === 'number' && (!latest || ts >= latest.ts)) latest = { cursor: { seq: v.seq, last: v.last }, ts };
        } catch {
          // Not ours: ignore.
        }
      },
    });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new SluiceError('SLUICE_KAFKA_CURSOR', `could not read the cursor topic "${topic}" to its end within ${timeoutMs} ms`, { retriable: true })), timeoutMs);
    });
    await Promise.race([done, timeout]).finally(() => clearTimeout(timer));
  } finally {
    await consumer.disconnect().catch(() => undefined);
  }
  return (latest as { cursor: CommittedCursor } | null)?.cursor ?? null;
}

/**
 * Moves the journal cursor up to the cursor Kafka has committed: those records are in Kafka
 * already (a crash came between Kafka's commit and the local cursor update) and must not be sent
 * again. The cursor is adopted only if it belongs to this journal: the last record shipped under
 * it must be in the journal with the same seq, capture time and topic. A journal that was
 * replaced (its seqs start again) fails that check; its records are all new and are sent.
 */
export function adoptCommittedCursor(journal: Journal, sink: string, kafka: CommittedCursor | null, log: Logger): void {
  if (kafka === null) return;
  const local = journal.cursor(sink);
  if (kafka.seq <= local) return;
  const ignore = (why: string): void => log.warn({ kafkaCursor: kafka.seq, localCursor: local, lastSeq: journal.lastAssignedSeq }, `the cursor in Kafka is not this journal's (${why}; journal replaced?); ignoring it`);
  if (kafka.seq > journal.committedSeq) return ignore('past every committed record');
  const last = kafka.last;
  if (last && last.seq > local) {
    const r = journal.read(last.seq - 1, 1, Number.MAX_SAFE_INTEGER)[0];
    if (!r || r.seq !== last.seq || String(r.time) !== last.time || r.topic !== last.topic) return ignore(`record ${last.seq} differs`);
  }
  log.info({ kafkaCursor: kafka.seq, localCursor: local }, 'records already committed to Kafka by an earlier run; moving the cursor instead of sending them again');
  journal.ack(sink, kafka.seq);
}
