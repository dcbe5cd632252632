import { readFileSync } from 'node:fs';
import { Kafka, logLevel, Partitioners, type KafkaConfig, type Producer, type SASLOptions } from 'kafkajs';
import type { Logger } from 'pino';
import type { SinkConfig } from '../config/load.js';

/** One batch as the sink hands it to a Kafka client: per topic, messages in journal order. */
export interface OutgoingBatch {
  topicMessages: {
    topic: string;
    messages: { key: string | null; value: Buffer; timestamp: string; headers: Record<string, string> }[];
  }[];
}

/**
 * The little the sink needs from a Kafka client. kafkajs sits behind it so another client
 * (e.g. @confluentinc/kafka-javascript, KafkaJS-compatible) could take its place.
 */
export interface KafkaProducerClient {
  connect(): Promise<void>;
  /** Resolves only when the broker confirmed every message with acks=all. */
  send(batch: OutgoingBatch, timeoutMs: number): Promise<void>;
  disconnect(): Promise<void>;
}

export type KafkaClientFactory = (cfg: SinkConfig, clientId: string, logger: Logger) => KafkaProducerClient;

export const createKafkajsClient: KafkaClientFactory = (cfg, clientId, logger) => {
  const tls = cfg.tls;
  const config: KafkaConfig = {
    clientId,
    brokers: cfg.brokers,
    connectionTimeout: cfg.connectionTimeoutMs,
    requestTimeout: cfg.requestTimeoutMs,
    enforceRequestTimeout: true,
    // A few quick retries inside kafkajs ride out leader changes; the sink's own loop retries forever.
    retry: { retries: 2, initialRetryTime: 300, maxRetryTime: 3000 },
    ssl: tls.enabled
      ? {
          ca: tls.caFile ? [readFileSync(tls.caFile, 'utf8')] : undefined,
          cert: tls.certFile ? readFileSync(tls.certFile, 'utf8') : undefined,
          key: tls.keyFile ? readFileSync(tls.keyFile, 'utf8') : undefined,
          rejectUnauthorized: tls.rejectUnauthorized,
        }
      : undefined,
    sasl: cfg.sasl ? ({ mechanism: cfg.sasl.mechanism, username: cfg.sasl.username, password: cfg.sasl.password?.reveal() ?? '' } as SASLOptions) : undefined,
    // kafkajs logs every retry at error level; the sink logs state changes itself.
    logLevel: logLevel.WARN,
    logCreator: () => (entry) => {
      const { message, ...rest } = entry.log;
      logger.debug({ kafkajs: entry.namespace, ...rest }, message);
    },
  };
  const kafka = new Kafka(config);
  const producer: Producer = kafka.producer({
    allowAutoTopicCreation: true,
    idempotent: false,
    // One request at a time keeps order per partition across retries.
    maxInFlightRequests: 1,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  return {
    connect: () => producer.connect(),
    async send(batch, timeoutMs) {
      await producer.sendBatch({ topicMessages: batch.topicMessages, acks: -1, timeout: timeoutMs });
    },
    disconnect: () => producer.disconnect(),
  };
};
