/** What the tracker samples: counters that only grow, read from the journal and `Metrics`. */
export interface ProgressInputs {
  /** Highest seq handed out by the journal. */
  lastSeq: number;
  /** Each sink's cursor. */
  cursors: Record<string, number>;
  /** `sluice_source_received_total` per source. */
  received: Record<string, number>;
  /** Per sink: `sluice_sink_errors_total` and `sluice_sink_last_success_seconds` (0 = never). */
  sinks: Record<string, { errors: number; lastSuccessS: number }>;
}

interface Point {
  t: number;
  inputs: ProgressInputs;
}

/**
 * Turns growing counters into rates over a sliding window, and notices when a sink is failing:
 * errors counted after its last confirmed batch. Fed by a timer and by every status request.
 */
export class ProgressTracker {
  private points: Point[] = [];
  private readonly failing = new Map<string, { errorsAtSuccess: number; lastSuccessS: number; since: number | null }>();

  constructor(private readonly windowMs = 60000) {}

  observe(now: number, inputs: ProgressInputs): void {
    for (const [sink, s] of Object.entries(inputs.sinks)) {
      let f = this.failing.get(sink);
      if (!f) this.failing.set(sink, (f = { errorsAtSuccess: 0, lastSuccessS: 0, since: null }));
      if (s.lastSuccessS !== f.lastSuccessS) {
        f.lastSuccessS = s.lastSuccessS;
        f.errorsAtSuccess = s.errors;
        f.since = null;
      } else if (s.errors > f.errorsAtSuccess && f.since === null) {
        f.since = now;
      }
    }
    const last = this.points[this.points.length - 1];
    if (last && now - last.t < 1000) this.points[this.points.length - 1] = { t: now, inputs };
    else this.points.push({ t: now, inputs });
    // Keep one point older than the window, so a rate always spans the whole window once it can.
    while (this.points.length > 2 && now - this.points[1]!.t > this.windowMs) this.points.shift();
  }

  /** Since when a sink has been failing (ms), or null if its last attempt succeeded. */
  failingSince(sink: string): number | null {
    return this.failing.get(sink)?.since ?? null;
  }

  /** Per-second rate of a counter over the window, or null until two points a second apart exist. */
  private rate(pick: (i: ProgressInputs) => number | undefined): number | null {
    const first = this.points[0];
    const last = this.points[this.points.length - 1];
    if (!first || !last || last.t - first.t < 1000) return null;
    const a = pick(first.inputs);
    const b = pick(last.inputs);
    if (a === undefined || b === undefined) return null;
    return Math.max(0, ((b - a) * 1000) / (last.t - first.t));
  }

  receivedRate(source: string): number | null {
    return this.rate((i) => i.received[source]);
  }

  appendRate(): number | null {
    return this.rate((i) => i.lastSeq);
  }

  /** Records per second the sink's cursor moves. */
  drainRate(sink: string): number | null {
    return this.rate((i) => i.cursors[sink]);
  }

  /**
   * Seconds until the sink has caught up at the current rates: lag / (drain rate − append rate).
   * 0 when caught up; null when it is not catching up (or nothing is known yet).
   */
  eta(sink: string, lag: number): number | null {
    if (lag <= 0) return 0;
    const drain = this.drainRate(sink);
    const append = this.appendRate();
    if (drain === null || append === null) return null;
    const net = drain - append;
    return net > 0 ? lag / net : null;
  }
}
