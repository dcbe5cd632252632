/**
 * The bytes of the frame in progress, never more than `maxBytes`. When a frame outgrows it, the
 * bytes held are released, `onOversizeStart` is told, and everything up to the end of that frame
 * is only counted (discarding), so a sensor that never sends a delimiter cannot grow memory. When
 * the discarded frame ends (`take`, or `clear` when the port closed), `onOversize` gets all of its
 * bytes: the dropped frame is accounted for in full, not just the part seen before the limit.
 */
export class BoundedFrame {
  private buf: Buffer;
  private len = 0;
  private discarding = false;
  private discarded = 0;
  /** The last byte added to this frame (held or discarded), -1 for none. */
  private last = -1;

  constructor(
    private readonly maxBytes: number,
    /** Called once per oversized frame when it ends, with all its bytes. */
    private readonly onOversize: (bytes: number) => void,
    /** Called once per oversized frame when it passes the limit, with the bytes seen so far. */
    private readonly onOversizeStart: (bytesSoFar: number) => void = () => undefined,
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

  /** The frame's last byte so far (-1 when empty). */
  get lastByte(): number {
    return this.last;
  }

  addByte(b: number): void {
    this.last = b;
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
    this.last = src[to - 1]!;
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
   * Ends the frame: returns a copy of its bytes (without the last `trim` of them: a line's "\r"),
   * or null when it was discarded (oversized, reported now with all its bytes) — either way the
   * next frame starts empty.
   */
  take(trim = 0): Buffer | null {
    this.last = -1;
    if (this.discarding) {
      const bytes = this.discarded - trim;
      this.discarding = false;
      this.discarded = 0;
      this.onOversize(bytes);
      return null;
    }
    const out = Buffer.from(this.buf.subarray(0, Math.max(0, this.len - trim)));
    this.len = 0;
    return out;
  }

  /**
   * Forgets the frame in progress (the port closed); returns how many bytes it held. An oversized
   * frame being discarded is reported as such (all its bytes) and 0 returned: no byte counts twice.
   */
  clear(): number {
    this.last = -1;
    if (this.discarding) {
      this.take();
      return 0;
    }
    const had = this.len;
    this.len = 0;
    return had;
  }

  private startDiscarding(extra: number): void {
    this.discarded = this.len + extra;
    this.len = 0;
    this.discarding = true;
    this.onOversizeStart(this.discarded);
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
