/** Exponential backoff with full jitter; the one retry-delay policy used everywhere. */
export interface BackoffOptions {
  /** First delay, in milliseconds. */
  initialMs: number;
  /** Upper bound of any delay, in milliseconds. */
  maxMs: number;
  /** Growth factor per attempt. Default 2. */
  factor?: number;
  /** Source of randomness in [0, 1); injectable for tests. Default Math.random. */
  random?: () => number;
}

export class Backoff {
  private attempt = 0;
  constructor(private readonly opts: BackoffOptions) {}

  /** Delay before the next attempt: uniformly random in [base/2, base], base growing per attempt. */
  next(): number {
    const factor = this.opts.factor ?? 2;
    const random = this.opts.random ?? Math.random;
    const base = Math.min(this.opts.maxMs, this.opts.initialMs * factor ** this.attempt);
    if (base < this.opts.maxMs) this.attempt++;
    return Math.round(base / 2 + (random() * base) / 2);
  }

  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}
