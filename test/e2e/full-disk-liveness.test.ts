import assert from 'node:assert/strict';
import { unlinkSync } from 'node:fs';
import { test } from 'node:test';
import { brokersBehindProxyForFile } from '../helpers/brokers.js';
import { Daemon, writeConfig } from '../helpers/daemon.js';
import { consumeOrEmpty, type KafkaMessage } from '../helpers/kcat.js';
import { accountReadings, EVICTED, firstEventAfter, JOURNAL_ROOM, KAFKA_BACK, logEvents, printTiming, SOURCE_PAUSED, SOURCE_RESUMED, waitForEvent, waitForEveryPauseEnded } from '../helpers/liveness.js';
import { StreamPublisher } from '../helpers/publisher.js';
import { fillDisk, freeBytes, SmallDisks } from '../helpers/small-disk.js';
import { checkDelivery } from '../helpers/verify.js';
import { delay, waitFor } from '../helpers/wait-for.js';

// The journal on a real small filesystem (tmpfs) with min_free_bytes = 0, filled by a QoS 1
// stream until it is full: each way out of "full" must bring the paused MQTT source back by
// itself, and kcat must find every message the broker acknowledged (or a gap record naming it).
// Kafka is away while its proxy refuses every connection (as if stopped, without the restart time).
const { dir: base, mosquitto, proxy, bootstrap } = brokersBehindProxyForFile();
const disks = new SmallDisks(base);

interface Run {
  disk: string;
  daemon: Daemon;
  pub: StreamPublisher;
}

/** A daemon with its journal on a fresh tmpfs of `sizeMb`, `leaveBytes` left free by a filler (kept unless `filler` is false). */
function start(name: string, sizeMb: number, leaveBytes: number | null, extra: { journal?: string; mqtt?: string } = {}): Run & { filler: string | null } {
  const disk = disks.mount(name, sizeMb);
  const filler = leaveBytes === null ? null : fillDisk(disk, leaveBytes);
  const config = writeConfig({
    dir: disk,
    mqttUrl: mosquitto.url,
    brokers: [bootstrap()],
    clientId: `live${name}`,
    journalExtra: `min_free_bytes = 0\n${extra.journal ?? ''}`,
    mqttExtra: extra.mqtt,
    subscribe: `${name}/#`,
    sinkExtra: `gap_topic = "gaps-live${name}"`,
    routes: [{ match: `${name}/+device/#`, topic: `readings-live${name}`, key: '{device}' }],
  });
  return { disk, filler, daemon: Daemon.run(config).start(), pub: new StreamPublisher(mosquitto.url, 20, 3000, name) };
}

/** kcat reads both topics until every acknowledged reading is delivered or counted as evicted. */
async function finalAccounting(name: string, acked: Map<string, number[]>, daemon: Daemon): Promise<ReturnType<typeof accountReadings>> {
  let last = '';
  const read = async (): Promise<{ readings: KafkaMessage[]; gaps: KafkaMessage[] } | null> => {
    const readings = await consumeOrEmpty(bootstrap(), `readings-live${name}`);
    const gaps = await consumeOrEmpty(bootstrap(), `gaps-live${name}`);
    const evicted = gaps.map((g) => JSON.parse(g.payload ?? '{}') as { reason: string; count: number }).filter((g) => g.reason.startsWith('evicted_')).reduce((n, g) => n + g.count, 0);
    const missing = checkDelivery(readings, acked).missing.length;
    last = `${readings.length} readings in Kafka, ${missing} acknowledged missing, ${evicted} named evicted by ${gaps.length} gap records`;
    return missing <= evicted ? { readings, gaps } : null;
  };
  try {
    const { readings, gaps } = await waitFor(read, { timeoutMs: 120000, intervalMs: 1000, what: `every acknowledged reading of ${name} in Kafka or evicted` });
    return accountReadings(readings, gaps, acked, name);
  } catch (err) {
    // A stuck drain is the failure this file exists to catch: show what the daemon was doing.
    console.log(`${name}: ${last}\n${daemon.lines.slice(-60).map((l) => l.slice(0, 400)).join('\n')}`);
    throw err;
  }
}

async function stopRun(run: Run & { filler?: string | null }): Promise<void> {
  await run.pub.stop();
  const code = await run.daemon.stop();
  if (code !== 0) console.log(run.daemon.lines.slice(-40).map((l) => l.slice(0, 300)).join('\n'));
  disks.unmountAll();
  assert.equal(code, 0);
}

test('disk full (24 MiB tmpfs), then Kafka back while the filesystem stays full: only the journal frees pages; the source resumes by itself; every acknowledged message reaches Kafka once', async () => {
  proxy.refuse();
  // Half the tmpfs stays taken by a filler for the whole test (the filesystem never gets space
  // back), so filling and draining take half as long as with the journal alone.
  const run = start('drain', 24, 12 * 1024 * 1024);
  const { daemon, pub, disk } = run;
  try {
    await daemon.waitForLog(/subscribed/);
    await pub.start();
    await waitForEvent(daemon, SOURCE_PAUSED, { timeoutMs: 90000 });
    // Keep publishing a little while the source is away: the broker holds these in the session.
    await delay(2000);
    const acked = await pub.stop();
    const fullFree = freeBytes(disk);
    console.log(`disk full: ${pub.ackedCount} acknowledged by the broker, ${fullFree} bytes free on the tmpfs`);
    assert.ok(logEvents(daemon, /^journal full: sources/).some((e) => e.fields.reason === 'disk_full'), 'the journal saw the disk full');
    assert.ok(fullFree < 2 * 1024 * 1024, `the filesystem is full (${fullFree} bytes free)`);

    const kafkaAt = Date.now();
    proxy.release();
    const resumed = await waitForEvent(daemon, SOURCE_RESUMED, { since: kafkaAt });
    const freeAtResume = freeBytes(disk);
    const back = firstEventAfter(daemon, KAFKA_BACK, kafkaAt)!;
    const room = firstEventAfter(daemon, JOURNAL_ROOM, kafkaAt)!;
    console.log(`at resume: ${freeAtResume} bytes free on the tmpfs (was ${fullFree} when full)`);
    printTiming('disk full / sink drains (fs stays full): Kafka back -> first batch confirmed', kafkaAt, back.time);
    printTiming('disk full / sink drains (fs stays full): first batch confirmed -> journal takes records again', back.time, room.time);
    printTiming('disk full / sink drains (fs stays full): journal takes records again -> source reconnects', room.time, resumed.time);
    assert.ok(freeAtResume < 2 * 1024 * 1024, `room came from the journal's own pages, not the filesystem (${freeAtResume} bytes free)`);

    const acc = await finalAccounting('drain', acked, daemon);
    assert.equal(acc.evicted, 0, 'backpressure evicts nothing');
    const drained = logEvents(daemon, /^backlog drained$/).at(-1);
    if (drained) printTiming('disk full / sink drains: Kafka back -> backlog drained', kafkaAt, drained.time);
    const { pauses, fulls } = await waitForEveryPauseEnded(daemon);
    console.log(`disk full / sink drains: source paused ${pauses.length} time(s), journal full ${fulls.length} time(s); each ended by itself`);
    assert.ok(daemon.running);
  } finally {
    proxy.release();
    await stopRun(run);
  }
});

test('disk full (8 MiB tmpfs), then the filesystem gets space back (a filler deleted) with Kafka still away: the source resumes by itself; everything arrives once Kafka is back', async () => {
  proxy.refuse();
  const run = start('freed', 8, 3 * 1024 * 1024);
  const { daemon, pub, filler } = run;
  try {
    await daemon.waitForLog(/subscribed/);
    await pub.start();
    await waitForEvent(daemon, SOURCE_PAUSED, { timeoutMs: 60000 });
    await delay(1000);
    const acked = await pub.stop();
    const freedAt = Date.now();
    unlinkSync(filler!);
    const resumed = await waitForEvent(daemon, SOURCE_RESUMED, { since: freedAt });
    const room = firstEventAfter(daemon, JOURNAL_ROOM, freedAt)!;
    printTiming('disk full / filesystem space back: filler deleted -> journal takes records again', freedAt, room.time);
    printTiming('disk full / filesystem space back: journal takes records again -> source reconnects', room.time, resumed.time);
    printTiming('disk full / filesystem space back: filler deleted -> source reconnects', freedAt, resumed.time);
    assert.equal(firstEventAfter(daemon, KAFKA_BACK, 0), undefined, 'Kafka was still away: the room came from the filesystem');
    // Let the session's backlog come in before Kafka returns.
    await delay(2000);
    proxy.release();
    const acc = await finalAccounting('freed', acked, daemon);
    assert.equal(acc.evicted, 0);
    await waitForEveryPauseEnded(daemon);
  } finally {
    proxy.release();
    await stopRun(run);
  }
});

test('disk full (8 MiB tmpfs) under drop_oldest with Kafka away: the oldest are evicted to make room, the source keeps taking (or resumes by itself); every acknowledged reading is delivered or named by a gap record', async () => {
  proxy.refuse();
  // 5 MiB left: on less, the WAL alone (1.5 MiB at this rate) can keep the journal below the room it needs to take records again.
  const run = start('evict', 8, 5 * 1024 * 1024, { mqtt: 'overflow = "drop_oldest"' });
  const { daemon, pub } = run;
  try {
    await daemon.waitForLog(/subscribed/);
    await pub.start();
    const evicted = await waitForEvent(daemon, EVICTED, { timeoutMs: 60000 });
    // Twice the free space again while evicting: room keeps coming from eviction alone.
    await delay(5000);
    const acked = await pub.stop();
    await delay(1500);
    const { pauses, resumes } = await waitForEveryPauseEnded(daemon, { mustPause: false });
    for (let i = 0; i < pauses.length; i++) printTiming(`disk full / eviction: pause ${i} -> source reconnects`, pauses[i]!.time, resumes[i]!.time);
    console.log(`disk full / eviction: first eviction at +${evicted.time - run.daemon.startedAt} ms; source paused ${pauses.length} time(s); evictions logged ${logEvents(daemon, EVICTED).length}`);
    proxy.release();
    const acc = await finalAccounting('evict', acked, daemon);
    assert.ok(acc.evicted > 0, 'the full disk made room by eviction');
    assert.ok(logEvents(daemon, EVICTED).every((e) => e.fields.reason === 'evicted_disk_full'), 'every eviction says the disk was full');
  } finally {
    proxy.release();
    await stopRun(run);
  }
});

test('disk full (8 MiB tmpfs), then max_age_s = 5 evicts what waited too long with Kafka away: the source resumes by itself; every acknowledged reading is delivered or named by a gap record', async () => {
  proxy.refuse();
  const run = start('aged', 8, 3 * 1024 * 1024, { journal: 'max_age_s = 5' });
  const { daemon, pub } = run;
  try {
    await daemon.waitForLog(/subscribed/);
    await pub.start();
    const paused = await waitForEvent(daemon, SOURCE_PAUSED, { timeoutMs: 60000 });
    const acked = await pub.stop();
    const resumed = await waitForEvent(daemon, SOURCE_RESUMED, { since: paused.time });
    const aged = logEvents(daemon, EVICTED).find((e) => e.time >= paused.time && e.fields.reason === 'evicted_max_age');
    assert.ok(aged, 'max_age evicted while the journal was full');
    printTiming('disk full / max_age: records aged out (eviction logged) -> source reconnects', aged.time, resumed.time);
    printTiming('disk full / max_age: source paused -> source reconnects', paused.time, resumed.time);
    await delay(2000);
    proxy.release();
    const acc = await finalAccounting('aged', acked, daemon);
    assert.ok(acc.evicted > 0);
    await waitForEveryPauseEnded(daemon);
  } finally {
    proxy.release();
    await stopRun(run);
  }
});
