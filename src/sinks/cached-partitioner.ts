import { Partitioners, type ICustomPartitioner } from './kafkajs.js';

/** Per topic, the partition of each key stops growing here and starts again. */
const CACHE_LIMIT = 10000;

/**
 * kafkajs's default (Java-compatible murmur2) partitioner, its answer for each key remembered.
 *
 * Why: kafkajs hashes every keyed message anew with 64-bit `Long` arithmetic and filters the
 * partition list per message; measured, that was several µs per record of a drain. The answer is
 * the inner partitioner's own, asked once per key and partition count, so placement (and order
 * per key) is exactly what kafkajs, and a Java producer, would choose. The sink hands the same
 * Buffer object for a key string every time (`KeyBuffers`), so the cache is keyed by identity;
 * string keys work too. Messages without a key, or with an explicit partition, go to the inner
 * partitioner every time.
 */
export const cachedDefaultPartitioner: ICustomPartitioner = () => {
  const inner = Partitioners.DefaultPartitioner();
  const byTopic = new Map<string, { count: number; partitions: Map<unknown, number> }>();
  return (args) => {
    const { message, topic, partitionMetadata } = args;
    const key = message.key;
    if (key === null || key === undefined || (message.partition !== null && message.partition !== undefined)) return inner(args);
    let t = byTopic.get(topic);
    if (!t || t.count !== partitionMetadata.length) byTopic.set(topic, (t = { count: partitionMetadata.length, partitions: new Map() }));
    let p = t.partitions.get(key);
    if (p === undefined) {
      if (t.partitions.size >= CACHE_LIMIT) t.partitions.clear();
      p = inner(args);
      t.partitions.set(key, p);
    }
    return p;
  };
};

/** One Buffer per key string, made once: kafkajs would encode the string anew per message and per hash. */
export class KeyBuffers {
  private readonly map = new Map<string, Buffer>();

  get(key: string | null): Buffer | null {
    if (key === null) return null;
    let b = this.map.get(key);
    if (!b) {
      if (this.map.size >= CACHE_LIMIT) this.map.clear();
      this.map.set(key, (b = Buffer.from(key, 'utf8')));
    }
    return b;
  }
}
