import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { brokersForFile } from '../helpers/brokers.js';
import { Daemon, writeConfig } from '../helpers/daemon.js';
import { kafkaLibs } from '../helpers/kafka.js';
import { consumeOrEmpty } from '../helpers/kcat.js';
import { Publisher } from '../helpers/publisher.js';
import { checkDelivery, expectedReadings } from '../helpers/verify.js';
import { waitFor } from '../helpers/wait-for.js';

const { dir: base, mosquitto, kafka } = brokersForFile();

/** The compression codecs of the record batches Kafka stored for a topic, read with Kafka's DumpLogSegments. */
function storedCodecs(topic: string): Set<string> {
  const dataDir = join(base, 'kafka', 'data');
  const libs = kafkaLibs();
  const codecs = new Set<string>();
  const files = readdirSync(dataDir)
    .filter((d) => d.startsWith(`${topic}-`))
    .flatMap((d) => readdirSync(join(dataDir, d)).filter((f) => f.endsWith('.log')).map((f) => join(dataDir, d, f)));
  // One JVM for all partitions: each start costs seconds on this machine.
  const out = execFileSync('java', ['-cp', `${libs}/*`, 'kafka.tools.DumpLogSegments', '--files', files.join(',')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  for (const m of out.matchAll(/compresscodec: (\w+)/g)) codecs.add(m[1]!);
  assert.ok(files.length > 0 && out.includes('baseOffset'), `DumpLogSegments read ${files.length} segment file(s)`);
  return codecs;
}

for (const codec of ['none', 'gzip', 'snappy', 'lz4', 'zstd']) {
  test(`compression "${codec}": records round-trip through the real broker, stored with that codec, and read back intact by kcat`, async () => {
    const dir = join(base, `gw-${codec}`);
    const topic = `readings-${codec}`;
    const config = writeConfig({ dir, mqttUrl: mosquitto.url, brokers: [kafka.bootstrap], clientId: `sluice-${codec}`, routes: [{ match: 'dev/+device/#', topic, key: '{device}' }], sinkExtra: `compression = "${codec}"\n` });
    const daemon = Daemon.run(config).start();
    try {
      await daemon.waitForLog(/subscribed/);
      const pub = new Publisher(mosquitto.url);
      await pub.connect();
      assert.equal(await pub.publishMany(10, 50), 500);
      await pub.close();
      const messages = await waitFor(
        async () => {
          const m = await consumeOrEmpty(kafka.bootstrap, topic);
          return m.length >= 500 ? m : null;
        },
        { timeoutMs: 60000, intervalMs: 500, what: `500 ${codec} messages` },
      );
      const r = checkDelivery(messages, expectedReadings(10, 50));
      assert.deepEqual(r.missing, []);
      assert.equal(r.duplicates, 0);
      assert.deepEqual(r.outOfOrder, []);
      // DumpLogSegments prints the codec of every stored batch: all of them, and only, this one.
      assert.deepEqual([...storedCodecs(topic)].map((c) => c.toLowerCase()), [codec]);
    } finally {
      assert.equal(await daemon.stop(), 0);
    }
  });
}
