import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { brokersForFile } from '../helpers/brokers.js';
import { Daemon, runCli, writeConfig } from '../helpers/daemon.js';
import { consumeOrEmpty } from '../helpers/kcat.js';
import { freePort } from '../helpers/net.js';
import { httpGet, metricValue, NotifySocket } from '../helpers/notify-socket.js';
import { Publisher } from '../helpers/publisher.js';
import { checkDelivery, expectedReadings } from '../helpers/verify.js';
import { waitFor } from '../helpers/wait-for.js';

const { dir: base, mosquitto, kafka } = brokersForFile();

test('sd_notify, metrics and status: READY=1 after start, WATCHDOG=1 at half WatchdogSec, counters match what was sent and what Kafka holds, STOPPING=1 on SIGTERM', async () => {
  const dir = join(base, 'metrics');
  const port = await freePort();
  const config = writeConfig({ dir, mqttUrl: mosquitto.url, brokers: [kafka.bootstrap], httpPort: port, clientId: 'sluice-metrics' });
  const notify = new NotifySocket(base);
  await notify.start();
  // WatchdogSec=1: pings every 500 ms.
  const daemon = Daemon.run(config, { NOTIFY_SOCKET: notify.path, WATCHDOG_USEC: '1000000' }).start();
  try {
    await notify.waitFor('READY=1');
    // READY=1 comes only once the journal is open and sources and sinks are started.
    assert.ok(daemon.lines.some((l) => /sluice ready/.test(l)), 'READY=1 before "sluice ready"');
    await daemon.waitForLog(/subscribed/);
    assert.equal((await httpGet(port, '/healthz')).status, 200);

    const pub = new Publisher(mosquitto.url);
    await pub.connect();
    // One payload over max_payload_bytes (default 256 KiB): rejected, counted, named in a gap record.
    await pub.publish('dev/d0/reading', Buffer.alloc(300 * 1024, 'x'));
    assert.equal(await pub.publishMany(10, 100), 1000);
    await pub.close();
    const messages = await waitFor(
      async () => {
        const m = await consumeOrEmpty(kafka.bootstrap, 'readings');
        return m.length >= 1000 ? m : null;
      },
      { timeoutMs: 60000, intervalMs: 500, what: '1,000 messages in Kafka' },
    );
    const delivery = checkDelivery(messages, expectedReadings(10, 100));
    assert.deepEqual(delivery.missing, []);
    assert.equal(delivery.duplicates, 0);

    // Counters, scraped while it runs, agree with what was sent and what Kafka received.
    // Lag 0 once the gap record of the oversized payload has shipped too (it is coalesced for a
    // moment before it is journaled). A CI run once scraped 1000 received here: if that recurs,
    // the failure shows the source's counters and the daemon's log.
    let last = '';
    const metrics = await waitFor(
      async () => {
        last = (await httpGet(port, '/metrics')).body;
        const done = metricValue(last, 'sluice_sink_lag_records{sink="kafka"}') === 0 && metricValue(last, 'sluice_journal_last_seq') === 1001;
        return done ? last : null;
      },
      {
        timeoutMs: 30000,
        what: () => `sink lag 0 with 1001 records journaled; the metrics:\n${last.split('\n').filter((l) => /^sluice_(source|gap|dropped|journal_last|sink_lag)/.test(l)).join('\n')}\nthe log:\n${daemon.lines.slice(-40).join('\n')}`,
      },
    );
    const series = metrics.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.slice(0, l.lastIndexOf(' ')));
    assert.deepEqual(series.filter((x, i) => series.indexOf(x) !== i), [], 'each series once (Prometheus refuses a scrape with a duplicate)');
    assert.equal(metricValue(metrics, 'sluice_source_received_total{source="mqtt:local"}'), 1001);
    assert.equal(metricValue(metrics, 'sluice_source_rejected_total{reason="payload_too_large",source="mqtt:local"}'), 1);
    assert.equal(metricValue(metrics, 'sluice_dropped_records_total{reason="payload_too_large",source="mqtt:local"}'), 1);
    assert.equal(metricValue(metrics, 'sluice_gap_records_total{reason="payload_too_large"}'), 1);
    // The readings plus that gap record (to the default gap topic).
    // (CI runs scraped 1000 here while the sink's drain progress kept a stale second lag series at 0.)
    assert.equal(metricValue(metrics, 'sluice_sink_shipped_total{sink="kafka"}'), messages.length + 1, `the sink's metrics:\n${metrics.split('\n').filter((l) => /^sluice_(sink|gap|journal_last)/.test(l)).join('\n')}\nthe log:\n${daemon.lines.filter((l) => /sink|gap|refus|dead/i.test(l)).slice(-40).join('\n')}`);
    assert.equal(metricValue(metrics, 'sluice_sink_errors_total{sink="kafka"}') ?? 0, 0);
    assert.equal(metricValue(metrics, 'sluice_journal_backlog_records'), 0);
    assert.equal(metricValue(metrics, 'sluice_journal_last_seq'), 1001);
    assert.equal(metricValue(metrics, 'sluice_sink_cursor{sink="kafka"}'), 1001);
    assert.ok(metricValue(metrics, 'sluice_journal_bytes')! > 0, 'journal file size');
    assert.equal(metricValue(metrics, 'sluice_journal_oldest_age_seconds'), 0, 'nothing journaled once drained');
    assert.ok([0, -1].includes(metricValue(metrics, 'sluice_sink_eta_seconds{sink="kafka"}')!), 'ETA: caught up');
    assert.equal(metricValue(metrics, 'sluice_sink_failing_seconds{sink="kafka"}'), 0);
    assert.ok(metricValue(metrics, 'sluice_journal_commits_total')! > 0);
    assert.equal(metricValue(metrics, 'sluice_journal_fsyncs_total'), metricValue(metrics, 'sluice_journal_commits_total'));
    assert.ok(metricValue(metrics, 'sluice_journal_bytes_written_total')! > 200 * 1000, 'journal wrote at least the payload bytes');
    assert.ok(metricValue(metrics, 'sluice_sink_last_success_seconds{sink="kafka"}')! > Date.now() / 1000 - 120);
    assert.equal(metricValue(metrics, 'sluice_ready'), 1);
    assert.match(metrics, /# TYPE sluice_sink_shipped_total counter/);
    assert.match(metrics, /# TYPE sluice_journal_backlog_records gauge/);
    const ready = await httpGet(port, '/readyz');
    assert.equal(ready.status, 200, ready.body);

    // sluice status, JSON and text, against the running daemon.
    const json = await runCli(['status', '-c', config, '--json']);
    assert.equal(json.code, 0, json.stderr);
    const report = JSON.parse(json.stdout) as { state: string; gateway: string; sources: { name: string; state: string; received: number }[]; sinks: { name: string; state: string; shipped: number; lag_records: number; eta_s: number }[]; journal: { backlog_records: number } };
    assert.equal(report.state, 'ready');
    assert.equal(report.gateway, 'test-gw');
    assert.deepEqual(report.sources.map((s) => [s.name, s.state, s.received]), [['mqtt:local', 'connected', 1001]]);
    assert.deepEqual(report.sinks.map((s) => [s.name, s.state, s.shipped, s.lag_records, s.eta_s]), [['kafka', 'caught_up', 1001, 0, 0]]);
    assert.equal(report.journal.backlog_records, 0);
    const text = await runCli(['status', '--url', `http://127.0.0.1:${port}`]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^sluice \S+ on test-gw: ready/);
    assert.match(text.stdout, /mqtt:local\s+connected\s+1,001 received/);
    assert.match(text.stdout, /kafka\s+caught up\s+lag 0/);

    await notify.waitFor('WATCHDOG=1', 3);
  } finally {
    assert.equal(await daemon.stop(), 0);
    notify.stop();
  }
  assert.equal(notify.count('STOPPING=1'), 1, JSON.stringify(notify.messages));
  const stoppingAt = notify.messages.findIndex((m) => m.includes('STOPPING=1'));
  assert.ok(stoppingAt > notify.messages.findIndex((m) => m.includes('READY=1')));
});

test('no daemon answering: sluice status says so, exit 4; endpoint disabled in the config: says that, exit 4', async () => {
  const port = await freePort();
  const none = await runCli(['status', '--url', `http://127.0.0.1:${port}`]);
  assert.equal(none.code, 4);
  assert.match(none.stderr, /no sluice daemon answers at http:\/\/127\.0\.0\.1:\d+/);
  const off = writeConfig({ dir: join(base, 'off'), mqttUrl: mosquitto.url, brokers: [kafka.bootstrap] });
  const disabled = await runCli(['status', '-c', off]);
  assert.equal(disabled.code, 4);
  assert.match(disabled.stderr, /disabled/);
});

test('a sink failing longer than degraded_after_s: /readyz 503 "degraded", status exit 5 naming the sink and its last error', async () => {
  const dir = join(base, 'degraded');
  const port = await freePort();
  const deadKafka = `127.0.0.1:${await freePort()}`;
  const config = writeConfig({ dir, mqttUrl: mosquitto.url, brokers: [deadKafka], httpPort: port, httpExtra: 'degraded_after_s = 1', clientId: 'sluice-degraded' });
  const daemon = Daemon.run(config).start();
  try {
    await daemon.waitForLog(/cannot ship to Kafka/);
    const ready = await waitFor(
      async () => {
        const r = await httpGet(port, '/readyz');
        return r.status === 503 ? r : null;
      },
      { what: '/readyz 503' },
    );
    assert.match(ready.body, /^degraded: sink kafka failing for \d+ s/);
    const st = await runCli(['status', '-c', config]);
    assert.equal(st.code, 5, st.stderr);
    assert.match(st.stdout, /DEGRADED: sink kafka failing/);
    assert.match(st.stdout, /kafka\s+failing since/);
    assert.match(st.stdout, /last problem .*cannot ship to Kafka.*ECONNREFUSED/);
    const metrics = (await httpGet(port, '/metrics')).body;
    assert.equal(metricValue(metrics, 'sluice_degraded'), 1);
    assert.ok(metricValue(metrics, 'sluice_sink_failing_seconds{sink="kafka"}')! > 0);
  } finally {
    assert.equal(await daemon.stop(), 0);
  }
});

test('health records: journaled every interval with source sluice:health and shipped to the routed Kafka topic', async () => {
  const dir = join(base, 'health');
  const config = writeConfig({
    dir,
    mqttUrl: mosquitto.url,
    brokers: [kafka.bootstrap],
    healthIntervalS: 1,
    clientId: 'sluice-health',
    routes: [
      { match: 'dev/+device/#', topic: 'readings', key: '{device}' },
      { match: 'sluice/+kind', topic: 'sluice.{kind}' },
    ],
  });
  const daemon = Daemon.run(config).start();
  try {
    const records = await waitFor(
      async () => {
        const m = await consumeOrEmpty(kafka.bootstrap, 'sluice.health');
        return m.length >= 2 ? m : null;
      },
      { timeoutMs: 60000, intervalMs: 500, what: 'two health records in Kafka' },
    );
    const r = records[0]!;
    assert.equal(r.key, 'test-gw');
    assert.equal(r.headers['sluice.source'], 'sluice:health');
    assert.equal(r.headers['sluice.topic'], 'sluice/health');
    const h = JSON.parse(r.payload!) as Record<string, unknown>;
    assert.equal(h.type, 'health');
    assert.equal(h.gateway, 'test-gw');
    for (const k of ['load_1m', 'cpu_count', 'mem_total_bytes', 'mem_available_bytes', 'process_rss_bytes', 'disk_total_bytes', 'disk_free_bytes', 'system_uptime_s', 'process_uptime_s', 'net_rx_bytes', 'net_tx_bytes', 'journal_backlog_records', 'journal_used_bytes']) {
      assert.equal(typeof h[k], 'number', `${k} is a number: ${JSON.stringify(h)}`);
    }
    assert.ok((h.disk_free_bytes as number) > 0);
    assert.equal(h.disk_path, dir);
    assert.ok('cpu_temp_c' in h && 'cpu_busy_pct' in h && 'journal_oldest_age_s' in h);
    const second = JSON.parse(records[1]!.payload!) as { cpu_busy_pct: unknown };
    assert.equal(typeof second.cpu_busy_pct, 'number');
  } finally {
    assert.equal(await daemon.stop(), 0);
  }
});
