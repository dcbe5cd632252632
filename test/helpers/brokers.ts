import { join } from 'node:path';
import { after, before } from 'node:test';
import { KafkaBroker } from './kafka.js';
import { MosquittoBroker } from './mosquitto.js';
import { tempDir } from './tmp.js';

/**
 * A real Mosquitto and a real Kafka for the current test file: started before its tests, stopped
 * and removed after. `kafkaAway` starts Kafka once (to fix its port) and stops it again;
 * `whileUp` runs before that (e.g. creating topics), saving a restart of Kafka later.
 */
export function brokersForFile(opts: { kafkaAway?: boolean; whileUp?: (kafka: KafkaBroker) => Promise<void> } = {}): { dir: string; mosquitto: MosquittoBroker; kafka: KafkaBroker } {
  const tmp = tempDir();
  const mosquitto = new MosquittoBroker(join(tmp.path, 'mosquitto'));
  const kafka = new KafkaBroker(join(tmp.path, 'kafka'));
  before(async () => {
    await mosquitto.start();
    await kafka.start();
    await opts.whileUp?.(kafka);
    if (opts.kafkaAway) await kafka.stop();
  });
  after(async () => {
    await kafka.stop();
    await mosquitto.stop();
    tmp.cleanup();
  });
  return { dir: tmp.path, mosquitto, kafka };
}
