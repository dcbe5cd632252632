import type { Logger } from 'pino';
import type { SinkConfig } from '../config/load.js';
import type { Clock } from '../util/clock.js';
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
