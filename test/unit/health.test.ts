import assert from 'node:assert/strict';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { test } from 'node:test';
import { pino } from 'pino';
import { GapRecorder } from '../../src/journal/gaps.js';
import { SqliteJournal } from '../../src/journal/sqlite-journal.js';
import { Metrics } from '../../src/metrics.js';
import { HealthSource } from '../../src/ops/health-source.js';
import { parseNetDev, SystemStatsCollector } from '../../src/ops/system-stats.js';
import { systemClock } from '../../src/util/clock.js';
import { tempDir } from '../helpers/tmp.js';

const logger = pino({ level: 'silent' });

test('collecting health yields to the event loop: other work runs during every one of 50 collections (delay histogram as a diagnostic, not judged)', async (t) => {
  const tmp = tempDir();
  // durability "crash": the group commit's fsync (the journal's cost, paid by every reading alike)
  // is kept out of a measurement of what collecting health costs.
  const journal = new SqliteJournal({ path: join(tmp.path, 'j.db'), durability: 'crash', commitDelayMs: 5, commitMaxRecords: 2000, logger, clock: systemClock });
  await journal.start();
  try {
    journal.registerSinks(['k']);
    // A backlog, so the journal figures come from a journal with something in it.
    for (let i = 0; i < 10000; i++) journal.append({ time: Date.now(), source: 'mqtt:x', topic: 't', key: null, payload: Buffer.alloc(200), headers: null });
    journal.flush();
    const metrics = new Metrics();
    const gaps = new GapRecorder({ journal, metrics, logger, clock: systemClock, gatewayId: 'gw' });
    const health = new HealthSource({ intervalS: 3600, topic: 'sluice/health', journalPath: join(tmp.path, 'j.db') }, { journal, logger, metrics, clock: systemClock, gatewayId: 'gw', reportGap: gaps.report });
    await health.tick(); // warm up: module loading and the thermal-zone search happen once
    const h = monitorEventLoopDelay({ resolution: 1 });
    h.enable();
    // Judged by structure, not by milliseconds (this machine is noisy): a collection that did its
    // I/O synchronously would finish before a timer queued at its start could run.
    let turns = 0;
    let ticking = true;
    const spin = (): void => {
      turns++;
      if (ticking) setImmediate(spin);
    };
    setImmediate(spin);
    let collectionsThatYielded = 0;
    for (let i = 0; i < 50; i++) {
      const before = turns;
      const p = await health.tick();
      assert.ok(p);
      if (turns > before) collectionsThatYielded++;
    }
    ticking = false;
    h.disable();
    t.diagnostic(`event-loop delay while collecting: max ${(h.max / 1e6).toFixed(2)} ms, p99 ${(h.percentile(99) / 1e6).toFixed(2)} ms`);
    assert.equal(collectionsThatYielded, 50, 'every collection let other work run while it read');
    journal.flush();
    assert.equal(journal.stats().backlogRecords, 10051);
    assert.equal(metrics.get('sluice_source_received_total', { source: 'sluice:health' }), 51);
  } finally {
    await journal.stop();
    tmp.cleanup();
  }
});

test('health record: fields from /proc and /sys, CPU busy from the delta between samples, disk of the journal directory', async () => {
  const files: Record<string, string> = {
    '/proc/loadavg': '0.50 0.40 0.30 1/123 4567\n',
    '/proc/stat': 'cpu  100 0 100 800 0 0 0 0 0 0\n',
    '/proc/uptime': '12345.67 2345.00\n',
    '/proc/meminfo': 'MemTotal:        3884000 kB\nMemFree:          100000 kB\nMemAvailable:    2000000 kB\nBuffers:           10000 kB\n',
    '/proc/net/dev': 'Inter-|   Receive |  Transmit\n face |bytes packets|bytes\n    lo: 999 1 0 0 0 0 0 0 999 1 0 0 0 0 0 0\n  eth0: 1000 10 0 0 0 0 0 0 2000 20 0 0 0 0 0 0\n wlan0: 5 1 0 0 0 0 0 0 7 1 0 0 0 0 0 0\n',
  };
  const c = new SystemStatsCollector('/', async (p) => files[p] ?? null);
  const first = await c.collect();
  assert.equal(first.load_1m, 0.5);
  assert.equal(first.load_15m, 0.3);
  assert.equal(first.cpu_busy_pct, null);
  assert.equal(first.system_uptime_s, 12345.67);
  assert.equal(first.net_rx_bytes, 1005);
  assert.equal(first.net_tx_bytes, 2007);
  assert.equal(first.mem_total_bytes, 3884000 * 1024);
  assert.equal(first.mem_available_bytes, 2000000 * 1024);
  assert.ok(first.disk_free_bytes! > 0);
  files['/proc/stat'] = 'cpu  150 0 150 900 0 0 0 0 0 0\n'; // 100 busy of 200 jiffies
  assert.equal((await c.collect()).cpu_busy_pct, 50);
  assert.deepEqual(parseNetDev(null), null);
});

test('a health record the journal refuses becomes a gap record, not a crash', async () => {
  const metrics = new Metrics();
  const gaps: unknown[] = [];
  const full = Object.assign(new Error('full'), { code: 'SLUICE_JOURNAL_FULL' });
  const journal = { append: () => { throw full; }, stats: () => ({ backlogRecords: 1, oldestTime: null, committedSeq: 0, usedBytes: 0, commits: 0 }) } as unknown as SqliteJournal;
  const health = new HealthSource({ intervalS: 60, topic: 'sluice/health', journalPath: '/tmp/x.db' }, { journal, logger, metrics, clock: systemClock, gatewayId: 'gw', reportGap: (g) => gaps.push(g), collector: new SystemStatsCollector('/tmp', async () => null) });
  assert.ok(await health.tick());
  assert.equal(gaps.length, 1);
  assert.equal((gaps[0] as { reason: string; source: string }).reason, 'journal_full');
  assert.equal((gaps[0] as { source: string }).source, 'sluice:health');
});
