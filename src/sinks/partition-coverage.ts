import { type ICustomPartitioner, type Message, type RecordMetadata } from 'kafkajs';
import type { Logger } from 'pino';
import { SluiceError } from '../errors.js';
import type { OutgoingBatch } from './kafka-producer-client.js';
import { cachedDefaultPartitioner } from './cached-partitioner.js';

/**
 * Checks that Kafka confirmed every partition a batch went to.
 *
 * Why: kafkajs (2.2.4, issue tulios/kafkajs#1303) keeps the answers of one `sendBatch` per broker
 * across its internal retries. When a broker fails mid-send and its partitions move to a broker
 * that already answered for others (a leader change), the retry skips that broker and
 * `sendBatch` resolves although the moved partitions' messages were never written. The
 * partitioner sees every message of every attempt, so this records which partitions the last
 * attempt chose; a chosen partition with no confirmation fails the send (retriable), and the sink
 * sends the whole batch again with a fresh `sendBatch`: duplicates at worst, never a loss.
 */
export class PartitionCoverage {
  /** The first message of the batch in flight: the partitioner sees it first in every attempt. */
  private first: Message | null = null;
  private readonly chosen = new Set<string>();

  /** `logger`: a caught partial confirmation is rare and worth a line of its own. */
  constructor(private readonly logger?: Logger) {}

  /** A kafkajs partitioner factory: kafkajs's default partitioner (answers cached per key), its choices recorded. */
  readonly createPartitioner: ICustomPartitioner = () => {
    const inner = cachedDefaultPartitioner();
    return (args) => {
      // A new attempt re-partitions from the first message: forget the last attempt's choices.
      if (args.message === this.first) this.chosen.clear();
      const partition = inner(args);
      this.chosen.add(keyOf(args.topic, partition));
      return partition;
    };
  };

  /** Call before each `sendBatch` with the topic list exactly as it is handed to kafkajs. */
  begin(topicMessages: OutgoingBatch['topicMessages'] | { topic: string; messages: Message[] }[]): void {
    this.chosen.clear();
    this.first = (topicMessages.find((t) => t.messages.length > 0)?.messages[0] as Message | undefined) ?? null;
  }

  /** Throws a retriable error naming the partitions the broker answers in `confirmed` leave out. */
  check(confirmed: RecordMetadata[]): void {
    const answered = new Set(confirmed.map((m) => keyOf(m.topicName, m.partition)));
    const missing = [...this.chosen].filter((k) => !answered.has(k));
    this.first = null;
    this.chosen.clear();
    if (missing.length === 0) return;
    const names = missing.map((k) => k.replace('\0', '/')).sort();
    this.logger?.warn({ unconfirmed: names }, 'Kafka confirmed only part of the batch (kafkajs lost track of a partition whose leader moved); sending the whole batch again');
    throw new SluiceError('SLUICE_KAFKA_PARTIAL', `Kafka confirmed only part of the batch: no answer for ${names.join(', ')} (kafkajs lost track of a partition whose leader moved); sending the whole batch again`, { retriable: true });
  }
}

function keyOf(topic: string, partition: number): string {
  return `${topic}\0${partition}`;
}
