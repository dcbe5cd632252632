/**
 * Baseline: a bare kafkajs producer sending the drain scenario's records (same payloads, keys and
 * headers) with the same batch size, acks=all and compression (none), one batch in flight.
 * argv: brokers topic n batch. Prints "done <ms>".
 */
import { Kafka, logLevel, Partitioners } from 'kafkajs';
import { benchRecord } from './records.js';

const [brokers, topic, nArg, batchArg] = process.argv.slice(2);
const n = Number(nArg);
const batch = Number(batchArg);
const kafka = new Kafka({ clientId: 'bare-producer', brokers: brokers!.split(','), logLevel: logLevel.NOTHING });
const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: true, maxInFlightRequests: 1 });
await producer.connect();
const t0 = Date.now();
for (let i = 0; i < n; i += batch) {
  const messages = [];
  for (let j = i; j < Math.min(n, i + batch); j++) {
    const r = benchRecord(j);
    messages.push({ key: r.key, value: r.payload, timestamp: String(r.time), headers: { 'sluice.gateway': 'bench', 'sluice.seq': String(j + 1), 'sluice.source': r.source, 'sluice.topic': r.topic, 'sluice.time': String(r.time) } });
  }
  await producer.send({ topic: topic!, acks: -1, messages });
}
process.stdout.write(`done ${Date.now() - t0}\n`);
await producer.disconnect();
