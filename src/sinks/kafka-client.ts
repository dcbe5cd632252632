import { Kafka, type Producer } from './kafkajs.js';
import { compressionType, registerCodec } from './compression.js';
import { createTransactionalClient } from './exactly-once.js';
import { kafkajsConfig, retryNoticeFor } from './kafkajs-config.js';
import { installFastProduceEncoding } from './kafkajs-fast-encode.js';
import type { KafkaClientFactory } from './kafka-producer-client.js';
import { PartitionCoverage } from './partition-coverage.js';

// The client interface and kafkajs's options have files of their own (so exactly-once.ts can use
// them without a circle through this one); they are re-exported for the sink and the tests.
export type { CommittedCursor, KafkaClientContext, KafkaClientFactory, KafkaProducerClient, OutgoingBatch } from './kafka-producer-client.js';
export { kafkajsConfig, retryNoticeFor } from './kafkajs-config.js';

/** Plain (at-least-once) producer: acks=all, one request in flight. */
export const createKafkajsClient: KafkaClientFactory = (cfg, clientId, logger, ctx) => {
  if (cfg.delivery === 'exactly_once') return createTransactionalClient(cfg, clientId, logger, ctx);
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
