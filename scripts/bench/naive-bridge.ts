/**
 * Baseline: the hand-written bridge sluice replaces — MQTT.js subscriber → kafkajs producer, no
 * journal. Messages are acknowledged at once and sent in batches (up to 2,000, or every 20 ms),
 * acks=all, one batch in flight. argv: url brokers topic [clientId]: with a clientId, a persistent
 * session (the broker queues for it while it is away), as sluice keeps one.
 */
import { Kafka, logLevel, Partitioners } from 'kafkajs';
import mqtt from 'mqtt';

const [url, brokers, topic, sessionId] = process.argv.slice(2);
const kafka = new Kafka({ clientId: 'naive-bridge', brokers: brokers!.split(','), logLevel: logLevel.NOTHING });
const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: true });
await producer.connect();
let buffer: { key: string; value: Buffer }[] = [];
let sending = false;
const flush = async (): Promise<void> => {
  if (sending || buffer.length === 0) return;
  sending = true;
  const batch = buffer.splice(0, 2000);
  try {
    await producer.send({ topic: topic!, acks: -1, messages: batch });
  } finally {
    sending = false;
  }
  if (buffer.length) void flush();
};
setInterval(() => void flush(), 20);
const client = mqtt.connect(url!, { clientId: sessionId ?? `naive-${process.pid}`, clean: !sessionId, protocolVersion: 5, properties: { receiveMaximum: 1000, ...(sessionId ? { sessionExpiryInterval: 3600 } : {}) } });
// Before the connection is up: a resumed session's queued messages follow the CONNACK at once.
client.on('message', (t, payload) => {
  buffer.push({ key: t.split('/')[1]!, value: payload });
  if (buffer.length >= 2000) void flush();
});
await new Promise<void>((resolve, reject) => {
  client.once('connect', () => resolve());
  client.once('error', reject);
});
await client.subscribeAsync('bench/#', { qos: 1 });
process.stdout.write('ready\n');
