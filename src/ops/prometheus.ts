import type { Metrics } from '../metrics.js';
import { samples, type Sample } from './metric-keys.js';
import type { StatusReport } from './status.js';

/** HELP text of the metrics sluice exports; others get a generic line. */
const HELP: Record<string, string> = {
  sluice_source_received_total: 'Messages a source received (before any check).',
  sluice_source_rejected_total: 'Messages a source refused to journal, by reason (acknowledged, counted, logged once).',
  sluice_source_errors_total: 'Connection errors seen by a source.',
  sluice_mqtt_client_errors_total: 'Requests sluice could not make of the MQTT client or the broker refused (CONNECT, SUBSCRIBE, UNSUBSCRIBE), by reason; logged once per reason.',
  sluice_uncaught_errors_total: 'Errors nothing caught, by kind (uncaughtException: sluice then stops cleanly and exits 70; unhandledRejection: it carries on).',
  sluice_dropped_records_total: 'Records lost, by source and reason; each loss is also a gap record.',
  sluice_dropped_bytes_total: 'Payload bytes lost, by source and reason.',
  sluice_gap_records_total: 'Gap records written, by reason.',
  sluice_gap_records_lost_total: 'Gap records that could not be journaled, by reason.',
  sluice_sink_shipped_total: 'Records a sink shipped and Kafka confirmed (acks=all).',
  sluice_sink_errors_total: 'Failed attempts to connect or ship, per sink.',
  sluice_sink_fenced_total: 'exactly_once: times a sink stopped because a newer producer with its transactional id fenced it (another instance of the same gateway and sink).',
  sluice_sink_unrouted_total: 'Records a sink skipped because no route matched and no default_topic is set.',
  sluice_sink_last_success_seconds: 'Unix time of the last batch Kafka confirmed, per sink.',
  sluice_sink_lag_records: 'Records journaled that the sink has not yet confirmed.',
  sluice_sink_cursor: "The sink's cursor: every seq at or below it is confirmed.",
  sluice_sink_drain_rate: 'Records per second the sink confirms (60 s window).',
  sluice_sink_eta_seconds: 'Seconds until the sink catches up at current rates; -1 when it is not catching up.',
  sluice_sink_failing_seconds: 'Seconds the sink has been failing; 0 when its last attempt succeeded.',
  sluice_journal_backlog_records: 'Records journaled and not yet confirmed by every sink.',
  sluice_journal_bytes: 'Bytes the journal database holds in use.',
  sluice_journal_oldest_age_seconds: 'Age of the oldest record still journaled (capture time); 0 when empty.',
  sluice_journal_last_seq: 'Highest seq handed out.',
  sluice_journal_commits_total: 'Group commits.',
  sluice_journal_fsyncs_total: 'Estimated fsyncs: one per group commit with durability "power", 0 with "crash" (WAL checkpoints add a few not counted).',
  sluice_journal_bytes_written_total: 'Bytes sluice wrote to storage since it started (/proc/self/io write_bytes; the journal is its only writer).',
  sluice_clock_synced: '1 while the system clock is known synchronised (time.sync_source), else 0; until then capture times are marked unsynced.',
  sluice_clock_unsynced_seconds: 'Seconds the system clock has not been known synchronised (since start or its last sync); 0 when synced.',
  sluice_clock_alarm: '1 while the clock has been unsynced for longer than time.unsynced_alarm_after_s.',
  sluice_clock_jumps_total: 'Jumps of the wall clock against the monotonic clock (steps by NTP or a person).',
  sluice_downlink_commands_total: 'Downlink commands by outcome: received (journaled, incl. rejected at once), delivered, expired, rejected, failed, duplicate (an id already known, ignored).',
  sluice_downlink_waiting: 'Downlink commands journaled and not yet finished (incl. in flight).',
  sluice_downlink_in_flight: 'Downlink commands sent and not yet acknowledged (at most one per target).',
  sluice_downlink_oldest_waiting_seconds: 'Age of the oldest waiting downlink command (since sluice received it); 0 when none waits.',
  sluice_up: '1 while the daemon runs.',
  sluice_ready: '1 when ready, 0 when not ready or degraded.',
  sluice_degraded: '1 when a sink has failed for longer than http.degraded_after_s.',
  sluice_uptime_seconds: 'Seconds since the daemon started.',
  sluice_config_reloads_total: 'Successful config reloads (SIGHUP).',
};

/**
 * Renders `Metrics` plus the status report's gauges in the Prometheus text format (0.0.4). A
 * series appears once: where the registry holds one the status report also computes, the report's
 * (read at this scrape) wins — Prometheus rejects a scrape with a duplicate series.
 */
export function renderPrometheus(metrics: Metrics, status: StatusReport, reloadsOk: number): string {
  const fromStatus: Sample[] = [];
  const g = (name: string, value: number, labels: Record<string, string> = {}): void => void fromStatus.push({ name, labels, value });
  g('sluice_up', 1);
  g('sluice_ready', status.state === 'ready' ? 1 : 0);
  g('sluice_degraded', status.state === 'degraded' ? 1 : 0);
  g('sluice_uptime_seconds', status.uptime_s);
  g('sluice_config_reloads_total', reloadsOk);
  const j = status.journal;
  g('sluice_journal_backlog_records', j.backlog_records);
  g('sluice_journal_bytes', j.used_bytes);
  g('sluice_journal_oldest_age_seconds', j.oldest_age_s ?? 0);
  g('sluice_journal_last_seq', j.last_seq);
  g('sluice_journal_commits_total', j.commits);
  g('sluice_journal_fsyncs_total', j.fsyncs);
  if (j.bytes_written !== null) g('sluice_journal_bytes_written_total', j.bytes_written);
  for (const s of status.sinks) {
    const l = { sink: s.name };
    g('sluice_sink_lag_records', s.lag_records, l);
    if (s.cursor !== null) g('sluice_sink_cursor', s.cursor, l);
    if (s.rate_per_s !== null) g('sluice_sink_drain_rate', s.rate_per_s, l);
    g('sluice_sink_eta_seconds', s.eta_s ?? -1, l);
    g('sluice_sink_failing_seconds', s.failing_since ? Math.max(0, (Date.now() - Date.parse(s.failing_since)) / 1000) : 0, l);
  }
  const computed = new Set(fromStatus.map((s) => s.name + labelText(s.labels)));
  const all = samples(metrics.snapshot()).filter((s) => !computed.has(s.name + labelText(s.labels)));
  all.push(...fromStatus);
  const families = new Map<string, Sample[]>();
  for (const s of all) {
    let f = families.get(s.name);
    if (!f) families.set(s.name, (f = []));
    f.push(s);
  }
  let out = '';
  for (const name of [...families.keys()].sort()) {
    out += `# HELP ${name} ${HELP[name] ?? name.replace(/_/g, ' ')}\n`;
    out += `# TYPE ${name} ${name.endsWith('_total') ? 'counter' : 'gauge'}\n`;
    for (const s of families.get(name)!) out += `${name}${labelText(s.labels)} ${formatValue(s.value)}\n`;
  }
  return out;
}

function labelText(labels: Record<string, string>): string {
  const keys = Object.keys(labels).sort();
  if (keys.length === 0) return '';
  return `{${keys.map((k) => `${k}="${escapeLabel(labels[k]!)}"`).join(',')}}`;
}

function escapeLabel(v: string): string {
  // Keys from Metrics are already in label syntax; unescape nothing, escape what a raw value may hold.
  return v.replace(/\\(?!["\\n])/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(Number.isInteger(v) ? v : Number(v.toFixed(3)));
}
