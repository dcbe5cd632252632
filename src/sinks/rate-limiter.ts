import type { Clock } from '../util/clock.js';

/**
 * A token bucket over bytes: `bytesPerSecond` on average, bursts up to one second's worth.
 * Used to keep a drain within a metered link's budget.
 */
export class RateLimiter {
  private tokens: number;
  private last: number;

  constructor(
    private readonly bytesPerSecond: number,
    private readonly clock: Clock,
  ) {
    this.tokens = bytesPerSecond;
    this.last = clock.now();
  }

  /** Takes `bytes` from the bucket (it may go negative) and returns how long to wait before sending them, ms. */
  take(bytes: number): number {
    const now = this.clock.now();
    this.tokens = Math.min(this.bytesPerSecond, this.tokens + ((now - this.last) * this.bytesPerSecond) / 1000);
    this.last = now;
    this.tokens -= bytes;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens * 1000) / this.bytesPerSecond);
  }
}

/** What a record costs on a metered link, roughly: payload, key and headers. */
export function wireBytes(msg: { key: string | null; value: Buffer; headers: Record<string, string> }): number {
  let n = msg.value.length + (msg.key ? Buffer.byteLength(msg.key) : 0);
  for (const k in msg.headers) n += k.length + msg.headers[k]!.length;
  return n;
}
