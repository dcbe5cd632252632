import type { ReportGap } from '../journal/gaps.js';

interface Pending {
  count: number;
  bytes: number;
  firstTime: number;
  lastTime: number;
  detail?: string;
}

/**
 * Turns a run of dropped frames into a few gap reports instead of one per frame: the first drop
 * of a reason opens a window of `windowMs`; when it closes, one gap with the true count, bytes and
 * time range is reported. A port that keeps dropping (journal full for an hour) thus makes one gap
 * record per window, not one per frame — which would only make the full journal fuller.
 */
export class DropCoalescer {
  private readonly pending = new Map<string, Pending>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly source: string,
    private readonly reportGap: ReportGap,
    private readonly windowMs = 1000,
  ) {}

  add(reason: string, bytes: number, time: number, detail?: string): void {
    const p = this.pending.get(reason);
    if (p) {
      p.count++;
      p.bytes += bytes;
      p.firstTime = Math.min(p.firstTime, time);
      p.lastTime = Math.max(p.lastTime, time);
    } else {
      this.pending.set(reason, { count: 1, bytes, firstTime: time, lastTime: time, detail });
    }
    if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.flush();
      }, this.windowMs);
      this.timer.unref?.();
    }
  }

  /** Reports everything pending now (also called at stop). */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const pending = [...this.pending];
    this.pending.clear();
    for (const [reason, p] of pending) {
      this.reportGap({ reason, source: this.source, firstTime: p.firstTime, lastTime: p.lastTime, count: p.count, bytes: p.bytes, detail: p.detail });
    }
  }
}
