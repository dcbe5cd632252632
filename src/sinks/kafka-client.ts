import { Kafka, logLevel, type KafkaConfig, type Producer } from './kafkajs.js';
import type { Logger } from 'pino';
import type { SinkConfig } from '../config/load.js';
import { systemClock, type Clock } from '../util/clock.js';
import { compressionType, registerCodec } from './compression.js';
import { kafkajsSecurity, tokenSourceFor } from './kafka-security.js';
import { PartitionCoverage } from './partition-coverage.js';
import { ProduceRetryNotice } from './retry-notice.js';
import type { TokenSource } from './oauth-token.js';
import { kafkajsBrokers } from './bootstrap-brokers.js';
import { installFastProduceEncoding } from './kafkajs-fast-encode.js';
import type { HeaderValue } from './record-metadata.js';

/** One batch as the sink hands it to a Kafka client: per topic, messages in journal order. */
export interface OutgoingBatch {
  topicMessages: {
    topic: string;
    messages: { key: Buffer | string | null; value: Buffer; timestamp: string; headers: Record<string, HeaderValue> }[];
  }[];
}

/**
 * The little the sink needs from a Kafka client. kafkajs sits behind it so another client
 * (e.g. @confluentinc/kafka-javascript, KafkaJS-compatible) could take its place.
 */
export interface KafkaProducerClient {
  connect(): Promise<void>;
  /**
   * Resolves only when the broker confirmed every message with acks=all. `lastSeq` is the
   * journal seq the batch ends at: an exactly-once client commits it as the cursor in the same
   * transaction (a batch may then be empty: a cursor-only commit).
   */
  send(batch: OutgoingBatch, timeoutMs: number, lastSeq?: number): Promise<void>;
  disconnect(): Promise<void>;
  /**
   * Exactly-once clients only: the cursor last committed to Kafka with a batch, read after
   * `connect` (which fenced any older producer of this sink), or null when there is none.
   */
  committedCursor?(): Promise<CommittedCursor | null>;
}

/** A cursor read back from Kafka, with what identifies the last record shipped under it. */
export interface CommittedCursor {
  seq: number;
  /**
   * seq, capture time and source topic of the last record that went to Kafka with it (from its
   * metadata header, compact or legacy): lets a journal that was replaced (seqs start again) be told from the one
   * that wrote the cursor.
   */
  last?: { seq: number; time: string; topic: string };
}

/** What a client factory may need besides the sink's config. */
export interface KafkaClientContext {
  gatewayId: string;
  clock?: Clock;
}

export type KafkaClientFactory = (cfg: SinkConfig, clientId: string, logger: Logger, ctx?: KafkaClientContext) => KafkaProducerClient;

/** One retry notice per sink (its config), not per producer: an incident spans the clients made during it. */
const retryNotices = new WeakMap<SinkConfig, ProduceRetryNotice>();

/** The sink's notice of kafkajs's internal send retries. */
export function retryNoticeFor(cfg: SinkConfig, logger: Logger, clock: Clock = systemClock): ProduceRetryNotice {
  let n = retryNotices.get(cfg);
  if (!n) retryNotices.set(cfg, (n = new ProduceRetryNotice(logger, clock)));
  return n;
}

/** Token sources live as long as their sink's config, not one producer: a reconnect reuses a valid token. */
const tokenSources = new WeakMap<SinkConfig, TokenSource | undefined>();

/** The kafkajs client options shared by the plain and the transactional producer. */
export function kafkajsConfig(cfg: SinkConfig, clientId: string, logger: Logger, clock: Clock = systemClock, notice?: ProduceRetryNotice): KafkaConfig {
  if (!tokenSources.has(cfg)) tokenSources.set(cfg, tokenSourceFor(cfg, clock));
  return {
    clientId,
    ...kafkajsBrokers(cfg.brokers),
    connectionTimeout: cfg.connectionTimeoutMs,
    requestTimeout: cfg.requestTimeoutMs,
    enforceRequestTimeout: true,
    // A few quick retries inside kafkajs ride out leader changes; the sink's own loop retries forever.
    retry: { retries: 2, initialRetryTime: 300, maxRetryTime: 3000 },
    ...kafkajsSecurity(cfg, clock, tokenSources.get(cfg)),
    // kafkajs logs every retry at error level; the sink logs state changes itself.
    logLevel: logLevel.WARN,
    logCreator: () => (entry) => {
      const { message, ...rest } = entry.log;
      logger.debug({ kafkajs: entry.namespace, ...rest }, message);
      if (entry.level === logLevel.ERROR) notice?.kafkajsError(entry.namespace, message);
    },
  };
}

/** Plain (at-least-once) producer: acks=all, one request in flight. */
export const createKafkajsClient: KafkaClientFactory = (cfg, clientId, logger, ctx) => {
  if (cfg.delivery === 'exactly_once') return createTransactionalClientLazily(cfg, clientId, logger, ctx);
  const notice = retryNoticeFor(cfg, logger, ctx?.clock);
  const coverage = new PartitionCoverage(logger);
  // One Buffer per partition batch instead of kafkajs's per-record encoders (the drain's CPU).
  installFastProduceEncoding();
  const kafka = new Kafka(kafkajsConfig(cfg, clientId, logger, ctx?.clock, notice));
  const producer: Producer = kafka.producer({
    allowAutoTopicCreation: true,
    idempotent: false,
    // One request at a time keeps order per partition across retries.
    maxInFlightRequests: 1,
    // kafkajs's default partitioner, its choices recorded to check every partition was confirmed.
    createPartitioner: coverage.createPartitioner,
  });
  const compression = compressionType(cfg.compression);
  return {
    async connect() {
      await registerCodec(cfg.compression);
      await producer.connect();
    },
    async send(batch, timeoutMs) {
      if (batch.topicMessages.length === 0) return;
      coverage.begin(batch.topicMessages);
      try {
        coverage.check(await producer.sendBatch({ topicMessages: batch.topicMessages, acks: -1, timeout: timeoutMs, compression }));
      } catch (err) {
        notice.failed();
        throw err;
      }
      notice.sent();
    },
    disconnect: () => producer.disconnect(),
  };
};

/** exactly-once.ts imports this file's helpers; load it on first use to keep the import graph acyclic. */
function createTransactionalClientLazily(cfg: SinkConfig, clientId: string, logger: Logger, ctx?: KafkaClientContext): KafkaProducerClient {
  let inner: KafkaProducerClient | null = null;
  const load = async (): Promise<KafkaProducerClient> => {
    if (!inner) {
      const { createTransactionalClient } = await import('./exactly-once.js');
      inner = createTransactionalClient(cfg, clientId, logger, ctx);
    }
    return inner;
  };
  return {
    connect: async () => (await load()).connect(),
    send: async (batch, timeoutMs, lastSeq) => (await load()).send(batch, timeoutMs, lastSeq),
    disconnect: async () => inner?.disconnect(),
    committedCursor: async () => (await load()).committedCursor!(),
  };
}
