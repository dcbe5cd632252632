/**
 * The bytes of the frame in progress, never more than `maxBytes`. When a frame outgrows it, the
 * bytes held are released, `onOversize` is told once, and everything up to the end of that frame
 * is only counted (discarding), so a sensor that never sends a delimiter cannot grow memory.
 */
export class BoundedFrame {
  private buf: Buffer;
  private len = 0;
  private discarding = false;
  private discarded = 0;

  constructor(
    private readonly maxBytes: number,
    /** Called once per oversized frame, when it passes the limit, with the bytes seen so far. */
    private readonly onOversize: (bytesSoFar: number) => void,
  ) {
    // Grows by doubling up to maxBytes: a port with a large limit and short frames stays small.
    this.buf = Buffer.allocUnsafe(Math.min(maxBytes, 256));
  }

  /** Bytes held for the frame in progress. */
  get length(): number {
    return this.len;
  }

  /** Bytes the buffer has allocated (bounded by maxBytes). */
  get capacity(): number {
    return this.buf.length;
  }

  get isDiscarding(): boolean {
    return this.discarding;
  }

  addByte(b: number): void {
    if (this.discarding) {
      this.discarded++;
      return;
    }
    if (this.len >= this.maxBytes) return this.startDiscarding(1);
    this.ensure(this.len + 1);
    this.buf[this.len++] = b;
  }

  addRange(src: Buffer, from: number, to: number): void {
    const n = to - from;
    if (n <= 0) return;
    if (this.discarding) {
      this.discarded += n;
      return;
    }
    if (this.len + n > this.maxBytes) return this.startDiscarding(n);
    this.ensure(this.len + n);
    src.copy(this.buf, this.len, from, to);
    this.len += n;
  }

  /**
   * Ends the frame: returns a copy of its bytes, or null when it was discarded (oversized) —
   * either way the next frame starts empty.
   */
  take(): Buffer | null {
    if (this.discarding) {
      this.discarding = false;
      this.discarded = 0;
      return null;
    }
    const out = Buffer.from(this.buf.subarray(0, this.len));
    this.len = 0;
    return out;
  }

  /** Forgets the frame in progress; returns how many bytes it had (held or discarded). */
  clear(): number {
    const had = this.discarding ? this.discarded : this.len;
    this.len = 0;
    this.discarding = false;
    this.discarded = 0;
    return had;
  }

  private startDiscarding(extra: number): void {
    this.discarded = this.len + extra;
    this.len = 0;
    this.discarding = true;
    this.onOversize(this.discarded);
  }

  private ensure(size: number): void {
    if (size <= this.buf.length) return;
    let cap = this.buf.length;
    while (cap < size) cap *= 2;
    const next = Buffer.allocUnsafe(Math.min(cap, this.maxBytes));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }
}
