import assert from 'node:assert/strict';
import { existsSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { brokersForFile } from '../helpers/brokers.js';
import { Daemon, writeConfig } from '../helpers/daemon.js';
import { accountSeqs, gapPayloads } from '../helpers/gaps.js';
import { journalCounts } from '../helpers/journal-file.js';
import { consumeOrEmpty, type KafkaMessage, consumeUntil } from '../helpers/kcat.js';
import { Publisher } from '../helpers/publisher.js';
import { fillDisk, freeBytes, SmallDisks } from '../helpers/small-disk.js';
import { checkDelivery, expectedReadings } from '../helpers/verify.js';
import { waitFor } from '../helpers/wait-for.js';

// A real full filesystem: the journal lives on an 8 MiB tmpfs, min_free_bytes = 0 so sluice's
// own guard does not stop it first, and a filler file takes most of the space.
const { dir: base, mosquitto, kafka } = brokersForFile({ kafkaAway: true });
const disks = new SmallDisks(base);

const kafkaUntil = (topic: string, done: (m: KafkaMessage[]) => boolean, what: string, timeoutMs?: number): Promise<KafkaMessage[]> =>
  consumeUntil(() => kafka.bootstrap, topic, done, what, timeoutMs);

/**
 * A daemon whose journal is on a fresh 8 MiB tmpfs with ~3.5 MiB left: room to start and to take a
 * good part of the readings, not all 8000 (~1.8 MB of payload, ~2 MB of journal plus its WAL, and
 * the ~1.5 MiB the journal keeps free on a full disk: its reserve and room for a checkpoint).
 */
function onFullDisk(name: string, mqttExtra?: string): { disk: string; filler: string; daemon: Daemon } {
  const disk = disks.mount(name, 8);
  const filler = fillDisk(disk, 3584 * 1024);
  const config = writeConfig({
    dir: disk,
    mqttUrl: mosquitto.url,
    brokers: [kafka.bootstrap],
    clientId: `disk${name}`,
    journalExtra: 'min_free_bytes = 0',
    mqttExtra,
    sinkExtra: `gap_topic = "gaps-disk${name}"`,
    routes: [{ match: 'dev/+device/#', topic: `readings-disk${name}`, key: '{device}' }],
  });
  return { disk, filler, daemon: Daemon.run(config).start() };
}

test('disk full under backpressure (real 8 MiB tmpfs): no crash, alarm, the data kept; takes records again when space returns; everything arrives', async () => {
  await kafka.stop();
  const { disk, filler, daemon } = onFullDisk('bp');
  try {
    await daemon.waitForLog(/subscribed/);
    const pub = new Publisher(mosquitto.url);
    await pub.connect();
    assert.equal(await pub.publishMany(20, 400), 8000, 'the local broker took every reading');
    await pub.close();
    await daemon.waitForLog(/journal full/, 60000);
    await daemon.waitForLog(/disk_full|SQLITE_FULL/, 60000);
    const held = journalCounts(join(disk, 'journal.db')).records;
    console.log(`journal held ${held} of 8000 readings with the disk full; free ${freeBytes(disk)} bytes`);
    assert.ok(held > 0 && held < 8000, `the journal kept what it had and stopped (${held})`);
    await new Promise((r) => setTimeout(r, 3000));
    assert.ok(daemon.running, 'the daemon did not crash on a full disk');
    assert.ok(journalCounts(join(disk, 'journal.db')).records >= held, 'nothing it held was dropped');

    unlinkSync(filler);
    await waitFor(() => (journalCounts(join(disk, 'journal.db')).records >= 8000 ? true : null), { timeoutMs: 90000, intervalMs: 500, what: 'every reading journaled once space returned' });

    await kafka.start();
    const all = expectedReadings(20, 400);
    const messages = await kafkaUntil('readings-diskbp', (m) => checkDelivery(m, all).missing.length === 0, 'all 8000 in Kafka');
    const r = checkDelivery(messages, all);
    assert.deepEqual(r.missing, []);
    assert.deepEqual(r.outOfOrder, []);
    assert.ok(!daemon.lines.some((l) => /records lost/.test(l)), 'backpressure lost nothing');
    const gaps = gapPayloads(await kafkaUntil('gaps-diskbp', (m) => gapPayloads(m).some((g) => /disk_full/.test(g.reason)), 'disk-full alarm in Kafka'));
    assert.ok(gaps.every((g) => g.count === 0), `alarms only, no loss: ${JSON.stringify(gaps.map((g) => g.reason))}`);
    assert.ok(daemon.running);
  } finally {
    const code = await daemon.stop();
    console.log(daemon.lines.filter((l) => /journal|MQTT|disk/.test(l)).slice(0, 40).map((l) => l.slice(0, 300)).join('\n'));
    if (existsSync(filler)) unlinkSync(filler);
    disks.unmountAll();
    assert.equal(code, 0);
  }
});

test('disk full under drop_oldest (real 8 MiB tmpfs): the oldest are evicted with gap records (or, with no room even to delete, the broker is held back), no crash; every seq is delivered or named by a gap record', async () => {
  await kafka.stop();
  const { disk, filler, daemon } = onFullDisk('drop', 'overflow = "drop_oldest"');
  try {
    await daemon.waitForLog(/subscribed/);
    const pub = new Publisher(mosquitto.url);
    await pub.connect();
    assert.equal(await pub.publishMany(20, 400), 8000, 'drop_oldest never holds the broker back');
    await pub.close();
    await daemon.waitForLog(/disk_full/, 60000);
    // Evicting writes the WAL too: when not even that fits, sluice holds the MQTT broker back
    // (nothing lost) and evicts on a later retry once a delete fits. Either or both may happen,
    // depending on how full the WAL got; the accounting below must hold in every case.
    await daemon.waitForLog(/journal evicted records|disconnecting from the MQTT broker/, 60000);
    await new Promise((r) => setTimeout(r, 3000));
    assert.ok(daemon.running, 'the daemon did not crash on a full disk');
    unlinkSync(filler);
    await kafka.start();
    const done = async (): Promise<{ readings: KafkaMessage[]; gaps: KafkaMessage[] } | null> => {
      const readings = await consumeOrEmpty(kafka.bootstrap, 'readings-diskdrop');
      const gaps = await consumeOrEmpty(kafka.bootstrap, 'gaps-diskdrop');
      const acc = accountSeqs(readings, gaps);
      return acc.unaccounted.length === 0 && acc.delivered + acc.evicted >= 8000 ? { readings, gaps } : null;
    };
    const { readings, gaps } = await waitFor(done, { timeoutMs: 120000, intervalMs: 1000, what: 'every reading delivered or evicted with a gap record' });
    const acc = accountSeqs(readings, gaps);
    console.log(`disk full, drop_oldest: delivered ${acc.delivered}, evicted ${acc.evicted}, gap records ${gaps.length}`);
    assert.deepEqual(acc.unaccounted, []);
    assert.deepEqual(acc.both, []);
    const evictions = gapPayloads(gaps).filter((g) => g.count > 0);
    const heldBack = daemon.lines.some((l) => /disconnecting from the MQTT broker/.test(l));
    console.log(`disk full, drop_oldest: ${acc.evicted > 0 ? 'evicted the oldest' : 'evicted nothing'}${heldBack ? ', held the broker back while not even a delete fitted' : ''}`);
    if (acc.evicted > 0) {
      assert.ok(evictions.every((g) => g.reason === 'evicted_disk_full'), `every loss says the disk was full: ${JSON.stringify(evictions.map((g) => g.reason))}`);
      assert.ok(daemon.lines.some((l) => /journal evicted records/.test(l)), 'the eviction was logged');
    } else {
      assert.ok(heldBack, 'with nothing evicted, the broker must have been held back');
      assert.deepEqual(evictions, [], 'nothing evicted, no loss reported');
      assert.ok(!daemon.lines.some((l) => /records lost/.test(l)), 'held back, nothing lost');
    }
    // Evicting ahead of the full disk keeps the journal taking records (no alarm then); held back, it raised one.
    assert.ok(acc.evicted > 0 || gapPayloads(gaps).some((g) => g.reason === 'journal_full_disk_full'), 'the oldest were evicted, or the disk-full alarm reached Kafka');
    assert.ok(daemon.running);
  } finally {
    const code = await daemon.stop();
    if (existsSync(filler)) unlinkSync(filler);
    disks.unmountAll();
    assert.equal(code, 0);
  }
});
