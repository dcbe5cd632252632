import { join } from 'node:path';
import { after, before } from 'node:test';
import { KafkaBroker, type KafkaBrokerOptions } from './kafka.js';
import { MosquittoBroker } from './mosquitto.js';
import { TcpProxy } from './tcp-proxy.js';
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

/**
 * Like brokersForFile, with Kafka behind a TcpProxy that clients are told to use: `proxy.refuse()`
 * takes Kafka away and `proxy.release()` brings it back at once, without restarting the broker.
 */
export function brokersBehindProxyForFile(): { dir: string; mosquitto: MosquittoBroker; kafka: KafkaBroker; proxy: TcpProxy; bootstrap: () => string } {
  const tmp = tempDir();
  const mosquitto = new MosquittoBroker(join(tmp.path, 'mosquitto'));
  const proxy = new TcpProxy(() => ({ host: '127.0.0.1', port: kafka.port }));
  // The broker reads its options at start(), once the proxy's port is known.
  const opts: KafkaBrokerOptions = {};
  const kafka = new KafkaBroker(join(tmp.path, 'kafka'), opts);
  before(async () => {
    await mosquitto.start();
    await proxy.start();
    opts.advertisedPort = proxy.port;
    await kafka.start();
  });
  after(async () => {
    await proxy.stop();
    await kafka.stop();
    await mosquitto.stop();
    tmp.cleanup();
  });
  return { dir: tmp.path, mosquitto, kafka, proxy, bootstrap: () => `127.0.0.1:${proxy.port}` };
}
