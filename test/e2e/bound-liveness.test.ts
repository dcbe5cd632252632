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

// The journal's own bounds: max_bytes, and min_free_bytes on a real small filesystem (tmpfs).
// Each way out of "full" must bring the paused MQTT source back by itself, and kcat must find
// every message the broker acknowledged (or a gap record naming it). Kafka is away while its
// proxy refuses every connection.
const { dir: base, mosquitto, proxy, bootstrap } = brokersBehindProxyForFile();
const disks = new SmallDisks(base);

interface Run {
  daemon: Daemon;
  pub: StreamPublisher;
  config: (journal: string) => string;
}

function start(name: string, dir: string, journal: string, mqtt?: string): Run {
  const config = (j: string): string =>
    writeConfig({
      dir,
      mqttUrl: mosquitto.url,
      brokers: [bootstrap()],
      clientId: `bound${name}`,
      journalExtra: j,
      mqttExtra: mqtt,
      subscribe: `${name}/#`,
      sinkExtra: `gap_topic = "gaps-bound${name}"`,
      routes: [{ match: `${name}/+device/#`, topic: `readings-bound${name}`, key: '{device}' }],
    });
  return { daemon: Daemon.run(config(journal)).start(), pub: new StreamPublisher(mosquitto.url, 20, 2000, name), config };
}

async function finalAccounting(name: string, acked: Map<string, number[]>): Promise<ReturnType<typeof accountReadings>> {
  const read = async (): Promise<{ readings: KafkaMessage[]; gaps: KafkaMessage[] } | null> => {
    const readings = await consumeOrEmpty(bootstrap(), `readings-bound${name}`);
    const gaps = await consumeOrEmpty(bootstrap(), `gaps-bound${name}`);
    const evicted = gaps.map((g) => JSON.parse(g.payload ?? '{}') as { reason: string; count: number }).filter((g) => g.reason.startsWith('evicted_')).reduce((n, g) => n + g.count, 0);
    return checkDelivery(readings, acked).missing.length <= evicted ? { readings, gaps } : null;
  };
  const { readings, gaps } = await waitFor(read, { timeoutMs: 90000, intervalMs: 1000, what: `every acknowledged reading of ${name} in Kafka or evicted` });
  return accountReadings(readings, gaps, acked, name);
}

async function stopRun(run: Run): Promise<void> {
  proxy.release();
  await run.pub.stop();
  const code = await run.daemon.stop();
  if (code !== 0) console.log(run.daemon.lines.slice(-40).map((l) => l.slice(0, 300)).join('\n'));
  disks.unmountAll();
  assert.equal(code, 0);
}

/** Streams until the source pauses for the full journal, a second more, then stops publishing. */
async function fillUntilPaused(run: Run, reason: string): Promise<Map<string, number[]>> {
  await run.daemon.waitForLog(/subscribed/);
  await run.pub.start();
  await waitForEvent(run.daemon, SOURCE_PAUSED, { timeoutMs: 60000 });
  await delay(1000);
  const acked = await run.pub.stop();
  assert.ok(logEvents(run.daemon, /^journal full: sources/).some((e) => e.fields.reason === reason), `the journal was full by ${reason}`);
  return acked;
}

test('max_bytes full, then Kafka back: the sink drains, the source resumes by itself; every acknowledged reading arrives once', async () => {
  proxy.refuse();
  const run = start('mbdrain', `${base}/mbdrain`, 'max_bytes = 1048576');
  try {
    const acked = await fillUntilPaused(run, 'max_bytes');
    const backAt = Date.now();
    proxy.release();
    const resumed = await waitForEvent(run.daemon, SOURCE_RESUMED, { since: backAt });
    const back = firstEventAfter(run.daemon, KAFKA_BACK, backAt)!;
    const room = firstEventAfter(run.daemon, JOURNAL_ROOM, backAt)!;
    printTiming('max_bytes / sink drains: Kafka back -> first batch confirmed', backAt, back.time);
    printTiming('max_bytes / sink drains: first batch confirmed -> journal takes records again', back.time, room.time);
    printTiming('max_bytes / sink drains: journal takes records again -> source reconnects', room.time, resumed.time);
    const acc = await finalAccounting('mbdrain', acked);
    assert.equal(acc.evicted, 0);
    await waitForEveryPauseEnded(run.daemon);
  } finally {
    await stopRun(run);
  }
});

test('max_bytes full under drop_oldest with Kafka away: the oldest are evicted to stay within the bound, the source never stays paused; every acknowledged reading is delivered or named by a gap record', async () => {
  proxy.refuse();
  const run = start('mbevict', `${base}/mbevict`, 'max_bytes = 1048576', 'overflow = "drop_oldest"');
  try {
    await run.daemon.waitForLog(/subscribed/);
    await run.pub.start();
    await waitForEvent(run.daemon, EVICTED, { timeoutMs: 60000 });
    await delay(3000);
    const acked = await run.pub.stop();
    const { pauses, resumes } = await waitForEveryPauseEnded(run.daemon, { mustPause: false });
    for (let i = 0; i < pauses.length; i++) printTiming(`max_bytes / eviction: pause ${i} -> source reconnects`, pauses[i]!.time, resumes[i]!.time);
    console.log(`max_bytes / eviction: source paused ${pauses.length} time(s)`);
    proxy.release();
    const acc = await finalAccounting('mbevict', acked);
    assert.ok(acc.evicted > 0);
    assert.ok(logEvents(run.daemon, EVICTED).every((e) => e.fields.reason === 'evicted_max_bytes'), 'every eviction names the bound');
  } finally {
    await stopRun(run);
  }
});

test('max_bytes full, then max_age_s = 5 evicts what waited too long with Kafka away: the source resumes by itself; every acknowledged reading is delivered or named by a gap record', async () => {
  proxy.refuse();
  const run = start('mbaged', `${base}/mbaged`, 'max_bytes = 1048576\nmax_age_s = 5');
  try {
    const acked = await fillUntilPaused(run, 'max_bytes');
    const paused = logEvents(run.daemon, SOURCE_PAUSED)[0]!;
    const resumed = await waitForEvent(run.daemon, SOURCE_RESUMED, { since: paused.time });
    const aged = logEvents(run.daemon, EVICTED).find((e) => e.fields.reason === 'evicted_max_age');
    assert.ok(aged, 'max_age evicted while the journal was full');
    printTiming('max_bytes / max_age: records aged out (eviction logged) -> source reconnects', aged.time, resumed.time);
    await delay(2000);
    proxy.release();
    const acc = await finalAccounting('mbaged', acked);
    assert.ok(acc.evicted > 0);
    await waitForEveryPauseEnded(run.daemon);
  } finally {
    await stopRun(run);
  }
});

test('max_bytes full, then a reload (SIGHUP) raises journal.max_bytes with Kafka away: the source resumes by itself; everything arrives once Kafka is back', async () => {
  proxy.refuse();
  const run = start('mbraise', `${base}/mbraise`, 'max_bytes = 1048576');
  try {
    const acked = await fillUntilPaused(run, 'max_bytes');
    run.config('max_bytes = 67108864');
    const hupAt = Date.now();
    run.daemon.signal('SIGHUP');
    await run.daemon.waitForLog(/config reloaded/);
    const resumed = await waitForEvent(run.daemon, SOURCE_RESUMED, { since: hupAt, timeoutMs: 20000 }).catch((err: Error) => {
      const restart = run.daemon.lines.find((l) => /take effect only after a restart/.test(l));
      throw new Error(`the source did not resume after journal.max_bytes was raised by a reload${restart ? ` (the reload said: ${restart.slice(0, 300)})` : ''}: ${err.message.slice(0, 300)}`);
    });
    const room = firstEventAfter(run.daemon, JOURNAL_ROOM, hupAt)!;
    printTiming('max_bytes / bound raised by reload: SIGHUP -> journal takes records again', hupAt, room.time);
    printTiming('max_bytes / bound raised by reload: journal takes records again -> source reconnects', room.time, resumed.time);
    await delay(2000);
    proxy.release();
    const acc = await finalAccounting('mbraise', acked);
    assert.equal(acc.evicted, 0);
    await waitForEveryPauseEnded(run.daemon);
  } finally {
    await stopRun(run);
  }
});

test('min_free_bytes reached (8 MiB tmpfs), then Kafka back: the sink drains, the source resumes by itself; every acknowledged reading arrives once', async () => {
  proxy.refuse();
  const disk = disks.mount('mfdrain', 8);
  const run = start('mfdrain', disk, `min_free_bytes = ${freeBytes(disk) - 1536 * 1024}`);
  try {
    const acked = await fillUntilPaused(run, 'min_free_bytes');
    const backAt = Date.now();
    proxy.release();
    const resumed = await waitForEvent(run.daemon, SOURCE_RESUMED, { since: backAt });
    const back = firstEventAfter(run.daemon, KAFKA_BACK, backAt)!;
    const room = firstEventAfter(run.daemon, JOURNAL_ROOM, backAt)!;
    printTiming('min_free_bytes / sink drains: Kafka back -> first batch confirmed', backAt, back.time);
    printTiming('min_free_bytes / sink drains: first batch confirmed -> journal takes records again', back.time, room.time);
    printTiming('min_free_bytes / sink drains: journal takes records again -> source reconnects', room.time, resumed.time);
    const acc = await finalAccounting('mfdrain', acked);
    assert.equal(acc.evicted, 0);
    await waitForEveryPauseEnded(run.daemon);
  } finally {
    await stopRun(run);
  }
});

test('min_free_bytes reached (8 MiB tmpfs), then the filesystem gets space back (a filler deleted) with Kafka away: the source resumes by itself; everything arrives once Kafka is back', async () => {
  proxy.refuse();
  const disk = disks.mount('mffreed', 8);
  const filler = fillDisk(disk, 4 * 1024 * 1024);
  const run = start('mffreed', disk, `min_free_bytes = ${freeBytes(disk) - 1536 * 1024}`);
  try {
    const acked = await fillUntilPaused(run, 'min_free_bytes');
    const freedAt = Date.now();
    unlinkSync(filler);
    const resumed = await waitForEvent(run.daemon, SOURCE_RESUMED, { since: freedAt });
    const room = firstEventAfter(run.daemon, JOURNAL_ROOM, freedAt)!;
    printTiming('min_free_bytes / filesystem space back: filler deleted -> journal takes records again', freedAt, room.time);
    printTiming('min_free_bytes / filesystem space back: journal takes records again -> source reconnects', room.time, resumed.time);
    await delay(2000);
    proxy.release();
    const acc = await finalAccounting('mffreed', acked);
    assert.equal(acc.evicted, 0);
    await waitForEveryPauseEnded(run.daemon);
  } finally {
    await stopRun(run);
  }
});

test('min_free_bytes reached (8 MiB tmpfs) under drop_oldest with Kafka away: the oldest are evicted to keep the space free, the source never stays paused; every acknowledged reading is delivered or named by a gap record', async () => {
  proxy.refuse();
  const disk = disks.mount('mfevict', 8);
  const run = start('mfevict', disk, `min_free_bytes = ${freeBytes(disk) - 1536 * 1024}`, 'overflow = "drop_oldest"');
  try {
    await run.daemon.waitForLog(/subscribed/);
    await run.pub.start();
    await waitForEvent(run.daemon, EVICTED, { timeoutMs: 60000 });
    await delay(3000);
    const acked = await run.pub.stop();
    const { pauses, resumes } = await waitForEveryPauseEnded(run.daemon, { mustPause: false });
    for (let i = 0; i < pauses.length; i++) printTiming(`min_free_bytes / eviction: pause ${i} -> source reconnects`, pauses[i]!.time, resumes[i]!.time);
    proxy.release();
    const acc = await finalAccounting('mfevict', acked);
    assert.ok(acc.evicted > 0);
    assert.ok(logEvents(run.daemon, EVICTED).every((e) => e.fields.reason === 'evicted_min_free_bytes'), 'every eviction names the bound');
  } finally {
    await stopRun(run);
  }
});

test('min_free_bytes reached (8 MiB tmpfs), then max_age_s = 5 evicts what waited too long with Kafka away: the source resumes by itself; every acknowledged reading is delivered or named by a gap record', async () => {
  proxy.refuse();
  const disk = disks.mount('mfaged', 8);
  const run = start('mfaged', disk, `min_free_bytes = ${freeBytes(disk) - 1536 * 1024}\nmax_age_s = 5`);
  try {
    const acked = await fillUntilPaused(run, 'min_free_bytes');
    const paused = logEvents(run.daemon, SOURCE_PAUSED)[0]!;
    const resumed = await waitForEvent(run.daemon, SOURCE_RESUMED, { since: paused.time });
    const aged = logEvents(run.daemon, EVICTED).find((e) => e.fields.reason === 'evicted_max_age');
    assert.ok(aged, 'max_age evicted while the journal was full');
    printTiming('min_free_bytes / max_age: records aged out (eviction logged) -> source reconnects', aged.time, resumed.time);
    await delay(2000);
    proxy.release();
    const acc = await finalAccounting('mfaged', acked);
    assert.ok(acc.evicted > 0);
    await waitForEveryPauseEnded(run.daemon);
  } finally {
    await stopRun(run);
  }
});

test('min_free_bytes reached (8 MiB tmpfs), then a reload (SIGHUP) lowers journal.min_free_bytes with Kafka away: the source resumes by itself; everything arrives once Kafka is back', async () => {
  proxy.refuse();
  const disk = disks.mount('mflower', 8);
  const run = start('mflower', disk, `min_free_bytes = ${freeBytes(disk) - 1536 * 1024}`);
  try {
    const acked = await fillUntilPaused(run, 'min_free_bytes');
    run.config('min_free_bytes = 0');
    const hupAt = Date.now();
    run.daemon.signal('SIGHUP');
    await run.daemon.waitForLog(/config reloaded/);
    const resumed = await waitForEvent(run.daemon, SOURCE_RESUMED, { since: hupAt, timeoutMs: 20000 });
    const room = firstEventAfter(run.daemon, JOURNAL_ROOM, hupAt)!;
    printTiming('min_free_bytes / bound lowered by reload: SIGHUP -> journal takes records again', hupAt, room.time);
    printTiming('min_free_bytes / bound lowered by reload: journal takes records again -> source reconnects', room.time, resumed.time);
    await delay(2000);
    proxy.release();
    const acc = await finalAccounting('mflower', acked);
    assert.equal(acc.evicted, 0);
    await waitForEveryPauseEnded(run.daemon);
  } finally {
    await stopRun(run);
  }
});
