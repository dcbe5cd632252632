import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { formatStatus } from '../../src/cli/status.js';
import { Metrics } from '../../src/metrics.js';
import { ProgressTracker } from '../../src/ops/progress.js';
import { renderPrometheus } from '../../src/ops/prometheus.js';
import { SdNotifier } from '../../src/ops/sd-notify.js';
import { OpsServer } from '../../src/ops/ops-server.js';
import type { OpsView, StatusReport } from '../../src/ops/status.js';
import { LogTap } from '../../src/util/log-tap.js';
import { httpGet } from '../helpers/notify-socket.js';
import { createLogSetup } from '../../src/util/logger.js';
import { prettyLine } from '../../src/util/pretty-log.js';

const silent = pino({ level: 'silent' });

function report(over: Partial<StatusReport> = {}): StatusReport {
  return {
    gateway: 'gw', version: '1.2.3', pid: 42, started_at: '2026-01-01T00:00:00.000Z', uptime_s: 3700, state: 'ready', reasons: [], log_level: 'info',
    config: { path: '/etc/sluice/sluice.toml', reloads: 0, last_reload: null },
    journal: { path: '/var/lib/sluice/journal.db', durability: 'power', open: true, backlog_records: 12345, used_bytes: 3_200_000, oldest_time: null, oldest_age_s: 302, committed_seq: 5, last_seq: 5, commits: 10, fsyncs: 10, bytes_written: 45_600_000 },
    sources: [{ name: 'mqtt:local', state: 'connected', received: 1234, rate_per_s: 20, rejected: 1, dropped: 0, last_error: null }],
    sinks: [{ name: 'cloud', state: 'failing', cursor: 3, lag_records: 12345, shipped: 1000, rate_per_s: 0, eta_s: null, errors: 45, last_success: '2026-01-01T00:10:00.000Z', failing_since: '2026-01-01T00:40:01.000Z', last_error: { time: '2026-01-01T00:49:55.000Z', level: 'warn', message: 'cannot ship to Kafka', err: 'connect ECONNREFUSED' } }],
    stalls: [], gaps: {}, dropped: {},
    ...over,
  };
}

test('Prometheus text: one HELP and TYPE per family, counters end in _total, labels kept, status gauges added', () => {
  const m = new Metrics();
  m.inc('sluice_sink_shipped_total', { sink: 'cloud' }, 7);
  m.inc('sluice_source_rejected_total', { source: 'mqtt:a', reason: 'payload_too_large' });
  m.inc('sluice_source_rejected_total', { source: 'mqtt:b', reason: 'payload_too_large' }, 2);
  const text = renderPrometheus(m, report(), 3);
  assert.match(text, /^# HELP sluice_sink_shipped_total .+\n# TYPE sluice_sink_shipped_total counter\nsluice_sink_shipped_total\{sink="cloud"\} 7$/m);
  assert.equal(text.match(/# TYPE sluice_source_rejected_total/g)?.length, 1);
  assert.match(text, /^sluice_source_rejected_total\{reason="payload_too_large",source="mqtt:b"\} 2$/m);
  assert.match(text, /^# TYPE sluice_sink_lag_records gauge\nsluice_sink_lag_records\{sink="cloud"\} 12345$/m);
  assert.match(text, /^sluice_sink_eta_seconds\{sink="cloud"\} -1$/m);
  assert.match(text, /^sluice_journal_bytes_written_total 45600000$/m);
  assert.match(text, /^sluice_config_reloads_total 3$/m);
  for (const line of text.trim().split('\n')) assert.match(line, /^(# (HELP|TYPE) \w+ .+|\w+(\{[^}]*\})? -?[\d.e+]+)$/, line);
});

test('Prometheus text: each series once; a gauge the registry also holds comes from the status report', () => {
  const m = new Metrics();
  // A stale copy in the registry (as the sink's drain progress once set it) must not make a second series.
  m.set('sluice_sink_lag_records', { sink: 'cloud' }, 0);
  m.set('sluice_sink_eta_seconds', { sink: 'cloud' }, 0);
  m.set('sluice_sink_lag_records', { sink: 'other' }, 4);
  const text = renderPrometheus(m, report(), 0);
  assert.deepEqual(text.split('\n').filter((l) => l.startsWith('sluice_sink_lag_records')).sort(), ['sluice_sink_lag_records{sink="cloud"} 12345', 'sluice_sink_lag_records{sink="other"} 4']);
  assert.deepEqual(text.split('\n').filter((l) => l.startsWith('sluice_sink_eta_seconds')), ['sluice_sink_eta_seconds{sink="cloud"} -1']);
  const series = text.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.slice(0, l.lastIndexOf(' ')));
  assert.equal(new Set(series).size, series.length, 'no series twice');
});

test('progress: rates over the window, ETA from drain minus append rate, failing from errors after the last success', () => {
  const p = new ProgressTracker(60000);
  const at = (t: number, cursor: number, lastSeq: number, errors: number, lastSuccessS: number): void =>
    p.observe(t, { lastSeq, cursors: { k: cursor }, received: { 'mqtt:a': lastSeq }, sinks: { k: { errors, lastSuccessS } } });
  at(0, 0, 1000, 0, 0);
  assert.equal(p.drainRate('k'), null);
  at(10000, 500, 1100, 0, 10);
  assert.equal(p.drainRate('k'), 50);
  assert.equal(p.appendRate(), 10);
  assert.equal(p.receivedRate('mqtt:a'), 10);
  assert.equal(p.eta('k', 600), 15); // 600 / (50 - 10)
  assert.equal(p.eta('k', 0), 0);
  assert.equal(p.failingSince('k'), null);
  at(12000, 500, 1120, 3, 10);
  assert.equal(p.failingSince('k'), 12000);
  at(14000, 500, 1140, 5, 10);
  assert.equal(p.failingSince('k'), 12000, 'the outage started at the first error');
  at(20000, 600, 1150, 5, 20);
  assert.equal(p.failingSince('k'), null, 'a confirmed batch ends it');
  at(200000, 600, 1150, 5, 20);
  assert.equal(p.eta('k', 550), null, 'not draining: no ETA');
});

test('sd_notify: READY=1, WATCHDOG=1 at half of WATCHDOG_USEC only while alive, STOPPING=1; nothing without NOTIFY_SOCKET', async () => {
  const sent: string[][] = [];
  let alive = true;
  const n = new SdNotifier({ socket: '/run/x', watchdogUsec: '40000', logger: silent, send: async (f) => void sent.push(f), alive: () => alive });
  assert.equal(n.watchdogIntervalMs, 20);
  await n.ready('up');
  assert.deepEqual(sent[0], ['READY=1', 'STATUS=up']);
  await new Promise((r) => setTimeout(r, 120));
  const pings = sent.filter((f) => f[0] === 'WATCHDOG=1').length;
  assert.ok(pings >= 2, `pings: ${pings}`);
  alive = false;
  const before = sent.length;
  await new Promise((r) => setTimeout(r, 80));
  assert.equal(sent.length, before, 'no ping while not alive');
  await n.stopping();
  assert.deepEqual(sent.at(-1), ['STOPPING=1']);
  const other = new SdNotifier({ socket: '/run/x', watchdogUsec: '40000', watchdogPid: String(process.pid + 1), logger: silent, send: async () => undefined });
  assert.equal(other.watchdogIntervalMs, null, 'WATCHDOG_PID of another process');
  const off = new SdNotifier({ logger: silent });
  assert.equal(off.enabled, false);
  await off.ready();
});

test('logs: JSON lines by default, one readable line each when pretty, level changes reach existing children, last problem per component kept', () => {
  let out = '';
  const sink = new Writable({ write(c, _e, cb) { out += c.toString(); cb(); } });
  const logs = createLogSetup({ level: 'info', gatewayId: 'gw', destination: sink, format: 'json' });
  const child = logs.logger.child({ component: 'sink:cloud' });
  child.debug('hidden');
  logs.setLevel('debug');
  child.debug('shown');
  child.warn({ err: 'ECONNREFUSED' }, 'cannot ship');
  const lines = out.trim().split('\n').map((l) => JSON.parse(l) as { msg: string; level: string });
  assert.deepEqual(lines.map((l) => l.msg), ['shown', 'cannot ship']);
  assert.equal(logs.tap.lastProblem('sink:cloud')?.err, 'ECONNREFUSED');
  assert.equal(logs.tap.lastProblem('sink:cloud')?.message, 'cannot ship');
  const pretty = prettyLine('{"level":"warn","time":"2026-11-25T04:50:01.123Z","gateway":"gw","component":"sink:cloud","err":"connect refused","n":3,"msg":"cannot ship"}');
  assert.equal(pretty, '04:50:01.123 WARN  sink:cloud  cannot ship  err="connect refused" n=3\n');
  assert.equal(prettyLine('not json\n'), 'not json\n');
});

test('status text: compact summary with backlog, sink state, lag, ETA and last error', () => {
  const text = formatStatus(report({ state: 'degraded', reasons: ['sink cloud failing for 600 s'] }));
  assert.match(text, /^sluice 1\.2\.3 on gw: DEGRADED: sink cloud failing for 600 s {2}\(pid 42, up 1h 1m/);
  assert.match(text, /journal {2}backlog 12,345 records, 3\.2 MB, oldest 5m 2s ago/);
  assert.match(text, /cloud +failing since 00:40:01 lag 12,345 {2}ETA — {2}shipped 1,000/);
  assert.match(text, /last problem 00:49:55: cannot ship to Kafka \(connect ECONNREFUSED\)/);
  assert.match(text, /gaps {5}none/);
});

test('reload compares config sections with their secrets: a changed password is a change, an equal one is not', async () => {
  const { sameConfig } = await import('../../src/config/same.js');
  const { Secret } = await import('../../src/config/secret.js');
  assert.equal(sameConfig({ a: 1, password: new Secret('x') }, { a: 1, password: new Secret('x') }), true);
  assert.equal(sameConfig({ a: 1, password: new Secret('x') }, { a: 1, password: new Secret('y') }), false);
  assert.equal(sameConfig({ route: [{ match: 'a/#', topic: 't' }] }, { route: [{ match: 'a/#', topic: 'u' }] }), false);
  assert.equal(sameConfig(undefined, { a: 1 }), false);
});

test('/readyz answers 503 "not ready" with the reasons while the journal is closed and no sink is configured; /healthz still 200', async () => {
  const view: OpsView = {
    gatewayId: 'gw', startedAt: Date.now(), version: '0', configPath: null,
    journal: {} as OpsView['journal'], journalOpen: false, journalPath: '/nonexistent', durability: 'power', logLevel: 'info',
    metrics: new Metrics(), tap: new LogTap(), degradedAfterMs: 60000,
    sourceStates: () => [], sinkNames: () => [], stalls: () => [], bytesWritten: () => null, reloads: { count: 0, last: null },
  };
  const server = new OpsServer({ host: '127.0.0.1', port: 0 }, { view, logger: silent, clock: { now: () => Date.now() } });
  await server.start();
  try {
    const ready = await httpGet(server.port!, '/readyz');
    assert.equal(ready.status, 503);
    assert.equal(ready.body, 'not ready: journal is not open; no sink configured\n');
    assert.equal((await httpGet(server.port!, '/healthz')).status, 200);
    const metrics = (await httpGet(server.port!, '/metrics')).body;
    assert.match(metrics, /^sluice_ready 0$/m);
  } finally {
    await server.stop();
  }
});
