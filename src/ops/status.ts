import type { DownlinkStatus } from '../downlink/downlink.js';
import type { Journal } from '../journal/journal.js';
import type { Metrics } from '../metrics.js';
import type { LoggedProblem, LogTap } from '../util/log-tap.js';
import { samples, sum, sumBy } from './metric-keys.js';
import type { ProgressTracker } from './progress.js';
import type { ClockState } from '../time/clock-watch.js';
import type { Stall } from './stall-monitor.js';

/** What the status and metrics endpoints read from the running gateway. Read-only. */
export interface OpsView {
  readonly gatewayId: string;
  /** When the daemon started, ms since the epoch. */
  readonly startedAt: number;
  readonly version: string;
  readonly configPath: string | null;
  readonly journal: Journal;
  readonly journalOpen: boolean;
  readonly journalPath: string;
  readonly durability: 'power' | 'crash';
  readonly logLevel: string;
  readonly metrics: Metrics;
  readonly tap: LogTap;
  /** A sink failing for longer than this (ms) makes the gateway "degraded". */
  readonly degradedAfterMs: number;
  /** Sources now running, with their connection state. */
  sourceStates(): { name: string; state: string }[];
  /** Names of the configured sinks (their cursor names). */
  sinkNames(): string[];
  /** Sources and sinks that have work and make no progress (see StallMonitor). */
  stalls(): Stall[];
  /** Bytes sluice wrote to storage since it started (/proc/self/io), or null where unknown. */
  bytesWritten(): number | null;
  /** The system clock, when watched. */
  clockState?(): ClockState;
  /** The [[downlink]] sections' state and counts. */
  downlinkStatus?(): DownlinkStatus[];
  readonly reloads: { count: number; last: { time: number; ok: boolean; errors: string[]; changed: string[] } | null };
}

export type GatewayState = 'ready' | 'degraded' | 'not_ready';

/** The JSON `/status` returns and `sluice status` prints (snake_case, like the config). */
export interface StatusReport {
  gateway: string;
  version: string;
  pid: number;
  started_at: string;
  uptime_s: number;
  state: GatewayState;
  /** Why the state is not "ready". */
  reasons: string[];
  log_level: string;
  config: { path: string | null; reloads: number; last_reload: { time: string; ok: boolean; errors: string[]; changed: string[] } | null };
  journal: {
    path: string;
    durability: string;
    open: boolean;
    backlog_records: number;
    used_bytes: number;
    oldest_time: string | null;
    oldest_age_s: number | null;
    committed_seq: number;
    last_seq: number;
    commits: number;
    /** Estimated fsyncs: one per commit with durability "power" (checkpoints add a few). */
    fsyncs: number;
    /** Bytes sluice wrote to storage since it started (/proc/self/io), or null where unknown. */
    bytes_written: number | null;
  };
  sources: {
    name: string;
    state: string;
    received: number;
    rate_per_s: number | null;
    rejected: number;
    dropped: number;
    last_error: LoggedProblem | null;
  }[];
  sinks: {
    name: string;
    state: 'starting' | 'shipping' | 'caught_up' | 'failing' | 'stopped';
    cursor: number | null;
    lag_records: number;
    shipped: number;
    rate_per_s: number | null;
    eta_s: number | null;
    errors: number;
    last_success: string | null;
    failing_since: string | null;
    last_error: LoggedProblem | null;
  }[];
  /** Sources and sinks stalled now: work waiting, no progress for longer than gateway.stall_after_s. */
  stalls: { component: string; kind: string; reason: string; since: string; for_s: number }[];
  /** The system clock: sync state, jumps, the unsynced alarm (null when not watched). */
  clock?: (Omit<ClockState, 'synced_since'> & { synced_since: string | null }) | null;
  /** [[downlink]]: commands from Kafka to devices. */
  downlinks?: DownlinkStatus[];
  /** Gap records written, per reason. */
  gaps: Record<string, number>;
  /** Records dropped (and reported as gaps), per source. */
  dropped: Record<string, number>;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** Feeds the tracker from the gateway's counters. */
export function observeProgress(view: OpsView, tracker: ProgressTracker, now: number): void {
  const all = samples(view.metrics.snapshot());
  const cursors: Record<string, number> = {};
  const sinks: Record<string, { errors: number; lastSuccessS: number }> = {};
  for (const name of view.sinkNames()) {
    if (view.journalOpen) {
      try {
        cursors[name] = view.journal.cursor(name);
      } catch {
        // not registered yet (during start or reload)
      }
    }
    sinks[name] = { errors: sum(all, 'sluice_sink_errors_total', { sink: name }), lastSuccessS: sum(all, 'sluice_sink_last_success_seconds', { sink: name }) };
  }
  tracker.observe(now, {
    lastSeq: view.journalOpen ? view.journal.lastAssignedSeq : 0,
    cursors,
    received: sumBy(all, 'sluice_source_received_total', 'source'),
    sinks,
  });
}

/** Builds the status report; observes the counters first so rates and states are current. */
export function buildStatus(view: OpsView, tracker: ProgressTracker, now: number): StatusReport {
  observeProgress(view, tracker, now);
  const all = samples(view.metrics.snapshot());
  const reasons: string[] = [];
  let degraded = false;

  const open = view.journalOpen;
  const stats = open ? view.journal.stats() : null;
  const lastSeq = open ? view.journal.lastAssignedSeq : 0;
  if (!open) reasons.push('journal is not open');

  const sinkNames = view.sinkNames();
  if (sinkNames.length === 0) reasons.push('no sink configured');
  const sinks = sinkNames.map((name): StatusReport['sinks'][number] => {
    let cursor: number | null = null;
    if (open) {
      try {
        cursor = view.journal.cursor(name);
      } catch {
        cursor = null;
      }
    }
    const lag = cursor === null ? 0 : Math.max(0, lastSeq - cursor);
    const lastSuccessS = sum(all, 'sluice_sink_last_success_seconds', { sink: name });
    const lastError = view.tap.lastProblem(`sink:${name}`);
    // The tracker notices a failure at its next sample; the sink logged it when it happened.
    let failingSince = tracker.failingSince(name);
    const loggedAt = lastError ? Date.parse(lastError.time) : NaN;
    if (failingSince !== null && loggedAt >= lastSuccessS * 1000 && loggedAt < failingSince) failingSince = loggedAt;
    let state: StatusReport['sinks'][number]['state'];
    if (lastError?.level === 'fatal' && Date.parse(lastError.time) >= lastSuccessS * 1000) state = 'stopped';
    else if (failingSince !== null) state = 'failing';
    else if (lag === 0) state = 'caught_up';
    else if (lastSuccessS === 0) state = 'starting';
    else state = 'shipping';
    if (state === 'stopped') {
      degraded = true;
      reasons.push(`sink ${name} stopped: ${lastError?.message ?? ''}`);
    } else if (failingSince !== null && now - failingSince > view.degradedAfterMs) {
      degraded = true;
      reasons.push(`sink ${name} failing for ${Math.round((now - failingSince) / 1000)} s`);
    }
    return {
      name,
      state,
      cursor,
      lag_records: lag,
      shipped: sum(all, 'sluice_sink_shipped_total', { sink: name }),
      rate_per_s: tracker.drainRate(name),
      eta_s: tracker.eta(name, lag),
      errors: sum(all, 'sluice_sink_errors_total', { sink: name }),
      last_success: lastSuccessS > 0 ? iso(lastSuccessS * 1000) : null,
      failing_since: iso(failingSince),
      last_error: lastError,
    };
  });

  const sources = view.sourceStates().map(({ name, state }) => ({
    name,
    state,
    received: sum(all, 'sluice_source_received_total', { source: name }),
    rate_per_s: tracker.receivedRate(name),
    rejected: sum(all, 'sluice_source_rejected_total', { source: name }),
    dropped: sum(all, 'sluice_dropped_records_total', { source: name }),
    last_error: view.tap.lastProblem(name),
  }));

  const stalls = view.stalls().map((st) => ({ component: st.name, kind: st.kind, reason: st.reason, since: new Date(st.since).toISOString(), for_s: Math.round((now - st.since) / 1000) }));
  for (const st of stalls) {
    degraded = true;
    reasons.push(`stalled: ${st.component} made no progress for ${st.for_s} s: ${st.reason}`);
  }

  const clockState = view.clockState?.() ?? null;
  if (clockState?.alarm) {
    degraded = true;
    reasons.push(`clock not synchronised for ${clockState.unsynced_for_s} s (${clockState.state}: ${clockState.via}): capture times are guesses`);
  }

  const state: GatewayState = reasons.length === 0 ? 'ready' : degraded && open && sinkNames.length > 0 ? 'degraded' : 'not_ready';
  const last = view.reloads.last;
  return {
    gateway: view.gatewayId,
    version: view.version,
    pid: process.pid,
    started_at: new Date(view.startedAt).toISOString(),
    uptime_s: Math.round((now - view.startedAt) / 1000),
    state,
    reasons,
    log_level: view.logLevel,
    config: { path: view.configPath, reloads: view.reloads.count, last_reload: last ? { time: new Date(last.time).toISOString(), ok: last.ok, errors: last.errors, changed: last.changed } : null },
    journal: {
      path: view.journalPath,
      durability: view.durability,
      open,
      backlog_records: stats?.backlogRecords ?? 0,
      used_bytes: stats?.usedBytes ?? 0,
      oldest_time: iso(stats?.oldestTime ?? null),
      oldest_age_s: stats?.oldestTime != null ? Math.max(0, (now - stats.oldestTime) / 1000) : null,
      committed_seq: stats?.committedSeq ?? 0,
      last_seq: lastSeq,
      commits: stats?.commits ?? 0,
      fsyncs: view.durability === 'power' ? (stats?.commits ?? 0) : 0,
      bytes_written: view.bytesWritten(),
    },
    sources,
    sinks,
    stalls,
    clock: clockState ? { ...clockState, synced_since: iso(clockState.synced_since) } : null,
    downlinks: view.downlinkStatus?.() ?? [],
    gaps: sumBy(all, 'sluice_gap_records_total', 'reason'),
    dropped: sumBy(all, 'sluice_dropped_records_total', 'source'),
  };
}
