import type { Logger } from 'pino';
import type { Component } from '../component.js';
import type { ReportGap } from '../journal/gaps.js';
import type { Metrics } from '../metrics.js';
import type { Clock } from '../util/clock.js';

/**
 * What a component owes, and whether it moves: `busy` says what it should be doing now (null when
 * it has nothing to do), `token` changes whenever it makes progress. Busy with the same token for
 * longer than the stall time is a stall.
 */
export interface ProgressProbe {
  readonly name: string;
  /** Kind of part, for the alarm: "source" or "sink". */
  readonly kind: 'source' | 'sink';
  progress(): { busy: string | null; token: number };
  /** A stall time longer than the monitor's (e.g. health records, which come every interval). */
  readonly minStallMs?: number;
}

/** A component that is stalled now. */
export interface Stall {
  name: string;
  kind: 'source' | 'sink';
  reason: string;
  /** Since when it made no progress, ms since the epoch. */
  since: number;
}

interface Track {
  token: number;
  since: number;
  stall: Stall | null;
}

/**
 * Watches every source and sink for work that does not move: a source paused (or holding
 * acknowledgements nothing commits), a serial port whose bytes never become frames, health records
 * that stopped, a sink with lag that ships nothing while Kafka answers. A stall is said once when it
 * starts (log, `sluice_stalled{component}` = 1, a `stalled` alarm gap record, /readyz degraded) and
 * once when it ends. The systemd watchdog is not used for this: a restart would not fix a full disk.
 */
export class StallMonitor implements Component {
  readonly name = 'stall-monitor';
  private timer: NodeJS.Timeout | null = null;
  private readonly tracks = new Map<string, Track>();

  constructor(
    private readonly opts: { stallAfterMs: number; intervalMs?: number },
    private readonly deps: { probes: () => readonly ProgressProbe[]; metrics: Metrics; logger: Logger; clock: Clock; reportGap: ReportGap },
  ) {}

  async start(): Promise<void> {
    if (this.timer) return;
    this.timer = setInterval(() => this.check(), this.opts.intervalMs ?? 1000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  state(): 'running' | 'stopped' {
    return this.timer ? 'running' : 'stopped';
  }

  /** The stalls now. */
  stalls(): Stall[] {
    return [...this.tracks.values()].flatMap((t) => (t.stall ? [t.stall] : []));
  }

  /** One look at every probe. */
  check(): void {
    const now = this.deps.clock.now();
    const seen = new Set<string>();
    for (const probe of this.deps.probes()) {
      seen.add(probe.name);
      let p: { busy: string | null; token: number };
      try {
        p = probe.progress();
      } catch (err) {
        this.deps.logger.debug({ err, component: probe.name }, 'stall probe failed');
        continue;
      }
      let t = this.tracks.get(probe.name);
      if (!t || t.token !== p.token || p.busy === null) {
        if (t?.stall) this.ended(t.stall, now);
        t = { token: p.token, since: now, stall: null };
        this.tracks.set(probe.name, t);
        continue;
      }
      const after = Math.max(this.opts.stallAfterMs, probe.minStallMs ?? 0);
      if (!t.stall && now - t.since >= after) {
        t.stall = { name: probe.name, kind: probe.kind, reason: p.busy, since: t.since };
        this.started(t.stall, now);
      } else if (t.stall) t.stall.reason = p.busy;
    }
    for (const [name, t] of this.tracks) {
      if (seen.has(name)) continue;
      if (t.stall) this.ended(t.stall, now);
      this.tracks.delete(name);
    }
  }

  private started(s: Stall, now: number): void {
    const forS = Math.round((now - s.since) / 1000);
    this.deps.metrics.set('sluice_stalled', { component: s.name }, 1);
    this.deps.logger.error({ component: s.name, reason: s.reason, forS }, `stalled: ${s.kind} ${s.name} has made no progress for ${forS} s (${s.reason}); /readyz reports degraded until it moves`);
    this.deps.reportGap({ reason: 'stalled', source: s.name, firstTime: s.since, lastTime: now, count: 0, bytes: 0, detail: `alarm: ${s.kind} ${s.name} made no progress for ${forS} s: ${s.reason}` });
  }

  private ended(s: Stall, now: number): void {
    this.deps.metrics.set('sluice_stalled', { component: s.name }, 0);
    this.deps.logger.info({ component: s.name, stalledForS: Math.round((now - s.since) / 1000) }, `no longer stalled: ${s.name} moves again`);
  }
}
