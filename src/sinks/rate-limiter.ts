import type { Clock } from '../util/clock.js';

/**
 * A token bucket over bytes: `bytesPerSecond` on average, bursts up to a quarter second's worth
 * (a burst after idle time must not break the cap measured over a drain).
 * Used to keep a drain within a metered link's budget.
 */
export class RateLimiter {
  private tokens: number;
  private last: number;

  constructor(
    private readonly bytesPerSecond: number,
    private readonly clock: Clock,
  ) {
    this.tokens = 0;
    this.last = clock.now();
  }

  /** Takes `bytes` from the bucket (it may go negative) and returns how long to wait before sending them, ms. */
  take(bytes: number): number {
    const now = this.clock.now();
    this.tokens = Math.min(this.bytesPerSecond / 4, this.tokens + ((now - this.last) * this.bytesPerSecond) / 1000);
    this.last = now;
    this.tokens -= bytes;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens * 1000) / this.bytesPerSecond);
  }

  /** Gives back what a send that failed had taken: nothing went over the link. */
  refund(bytes: number): void {
    this.tokens = Math.min(this.bytesPerSecond / 4, this.tokens + bytes);
  }
}

/** What a record costs on a metered link, roughly: payload, key and headers. */
export function wireBytes(msg: { key: Buffer | string | null; value: Buffer; headers: Record<string, string | Buffer> }): number {
  let n = msg.value.length + (msg.key === null ? 0 : typeof msg.key === 'string' ? Buffer.byteLength(msg.key) : msg.key.length);
  for (const k in msg.headers) n += k.length + msg.headers[k]!.length;
  return n;
}
