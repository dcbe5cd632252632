import type { SerialConfig } from '../../config/load.js';
import { BoundedFrame } from './bounded-frame.js';

/*
 * Framers cut a serial byte stream into frames. They are our own rather than serialport's
 * Readline/Delimiter/Regex/SlipDecoder parsers because those grow their buffer without limit
 * while no delimiter comes (a noisy line or a wrong baud rate would eat the Pi's memory) and are
 * Transform streams whose backpressure a serial port cannot honour anyway. Every framer holds at
 * most `maxFrameBytes` for the frame in progress, reports an oversized frame once, and
 * resynchronises at the next frame boundary. Empty frames (blank lines, SLIP's leading END) are
 * skipped.
 */

export interface FramerEvents {
  /** A complete frame (a copy, safe to keep). */
  frame: (frame: Buffer) => void;
  /**
   * A frame longer than max_frame_bytes ended (at its boundary, or cut by `reset`): discarded,
   * with all its bytes (without the delimiter).
   */
  oversize: (bytes: number) => void;
  /** A frame just passed max_frame_bytes: from here on it is only counted, until it ends. */
  oversizeStarted?: (bytesSoFar: number) => void;
}

export interface Framer {
  push(chunk: Buffer): void;
  /** Bytes held for the frame in progress (never more than max_frame_bytes). */
  readonly bufferedBytes: number;
  /** Bytes allocated for the frame in progress (never more than max_frame_bytes). */
  readonly capacityBytes: number;
  /**
   * Forgets a partial frame (the port closed); returns its size in bytes. An oversized frame in
   * progress is reported through `oversize` instead (and 0 returned). Stops timers.
   */
  reset(): number;
}

/** The common part of the framers that collect bytes in a BoundedFrame. */
abstract class BoundedFramer implements Framer {
  protected readonly frameBuf: BoundedFrame;

  constructor(
    maxFrameBytes: number,
    protected readonly events: FramerEvents,
  ) {
    this.frameBuf = new BoundedFrame(maxFrameBytes, events.oversize, events.oversizeStarted);
  }

  get bufferedBytes(): number {
    return this.frameBuf.length;
  }

  get capacityBytes(): number {
    return this.frameBuf.capacity;
  }

  abstract push(chunk: Buffer): void;

  reset(): number {
    return this.frameBuf.clear();
  }
}

/** Ends a frame at a byte sequence (KMP matching, so the delimiter may straddle reads). */
export class DelimiterFramer extends BoundedFramer {
  private readonly fail: number[];
  /** Bytes of the delimiter matched so far; they are not in frameBuf. */
  private matched = 0;
  private readonly maxFrameBytes: number;

  constructor(
    private readonly delimiter: Buffer,
    maxFrameBytes: number,
    events: FramerEvents,
    /** Line mode: also strip one trailing "\r" (so "\n" and "\r\n" lines both work). */
    private readonly stripCr = false,
  ) {
    // Line mode holds one byte more: the "\r" of "\r\n" belongs to the delimiter, not to the limit.
    super(stripCr ? maxFrameBytes + 1 : maxFrameBytes, events);
    this.maxFrameBytes = maxFrameBytes;
    if (delimiter.length === 0) throw new RangeError('empty delimiter');
    this.fail = failureTable(delimiter);
  }

  push(chunk: Buffer): void {
    const d = this.delimiter;
    let i = 0;
    while (i < chunk.length) {
      if (this.matched === 0) {
        // Fast path: copy everything up to the next possible delimiter start in one go.
        const j = chunk.indexOf(d[0]!, i);
        if (j < 0) {
          this.frameBuf.addRange(chunk, i, chunk.length);
          return;
        }
        this.frameBuf.addRange(chunk, i, j);
        i = j;
      }
      const b = chunk[i]!;
      while (this.matched > 0 && b !== d[this.matched]) {
        // The partial match was frame content after all (all but its longest border).
        const k = this.fail[this.matched - 1]!;
        this.frameBuf.addRange(d, 0, this.matched - k);
        this.matched = k;
      }
      if (b === d[this.matched]) {
        this.matched++;
        if (this.matched === d.length) {
          this.matched = 0;
          this.complete();
        }
      } else {
        this.frameBuf.addByte(b);
      }
      i++;
    }
  }

  private complete(): void {
    const frame = this.frameBuf.take(this.stripCr && this.frameBuf.lastByte === 0x0d ? 1 : 0);
    if (!frame) return;
    if (frame.length > this.maxFrameBytes) {
      // Line mode: max_frame_bytes + 1 bytes before "\n" without a "\r" among them.
      this.events.oversizeStarted?.(frame.length);
      this.events.oversize(frame.length);
      return;
    }
    if (frame.length > 0) this.events.frame(frame);
  }

  override reset(): number {
    const had = super.reset() + this.matched;
    this.matched = 0;
    return had;
  }
}

function failureTable(d: Buffer): number[] {
  const fail = new Array<number>(d.length).fill(0);
  for (let i = 1, k = 0; i < d.length; i++) {
    while (k > 0 && d[i] !== d[k]) k = fail[k - 1]!;
    if (d[i] === d[k]) k++;
    fail[i] = k;
  }
  return fail;
}

/** Every `length` bytes make a frame. */
export class FixedLengthFramer extends BoundedFramer {
  constructor(
    private readonly length: number,
    events: FramerEvents,
  ) {
    super(length, events);
  }

  push(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      const n = Math.min(this.length - this.frameBuf.length, chunk.length - i);
      this.frameBuf.addRange(chunk, i, i + n);
      i += n;
      if (this.frameBuf.length === this.length) this.events.frame(this.frameBuf.take()!);
    }
  }
}

/** A frame ends when no byte has arrived for `timeoutMs` (serialport's InterByteTimeout, bounded). */
export class InterByteTimeoutFramer extends BoundedFramer {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly timeoutMs: number,
    maxFrameBytes: number,
    events: FramerEvents,
  ) {
    super(maxFrameBytes, events);
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.frameBuf.addRange(chunk, 0, chunk.length);
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      const frame = this.frameBuf.take();
      if (frame && frame.length > 0) this.events.frame(frame);
    }, this.timeoutMs);
  }

  override reset(): number {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    return super.reset();
  }
}

/**
 * A frame ends at a match of a regular expression (serialport's RegexParser, bounded). Bytes are
 * read as Latin-1 so every byte is one character and frames come back byte for byte.
 */
export class RegexFramer implements Framer {
  /** While discarding, keep this much text so a delimiter split across two reads is still found. */
  private static readonly resyncTail = 256;
  private readonly regex: RegExp;
  private text = '';
  private discarding = false;
  /** Bytes of the oversized frame in progress already let go (not in `text`). */
  private discarded = 0;

  constructor(
    source: string,
    private readonly maxFrameBytes: number,
    private readonly events: FramerEvents,
  ) {
    this.regex = new RegExp(source, 'g');
  }

  get bufferedBytes(): number {
    return this.text.length;
  }

  get capacityBytes(): number {
    return this.text.length;
  }

  push(chunk: Buffer): void {
    const text = this.text + chunk.toString('latin1');
    let start = 0;
    this.regex.lastIndex = 0;
    for (let m = this.regex.exec(text); m; m = this.regex.exec(text)) {
      if (m[0].length === 0) {
        this.regex.lastIndex++; // cannot happen with a validated config; never loop forever
        continue;
      }
      const piece = text.slice(start, m.index);
      start = m.index + m[0].length;
      if (this.discarding) {
        // Resynchronised: the oversized frame ends here, with every byte it had.
        this.discarding = false;
        this.events.oversize(this.discarded + piece.length);
        this.discarded = 0;
        continue;
      }
      if (piece.length > this.maxFrameBytes) {
        this.events.oversizeStarted?.(piece.length);
        this.events.oversize(piece.length);
        continue;
      }
      if (piece.length > 0) this.events.frame(Buffer.from(piece, 'latin1'));
    }
    let rest = text.slice(start);
    // The rest may end in the first bytes of a delimiter, so a frame is called oversized only
    // once the rest passes the limit by more than a delimiter could be long (resyncTail).
    if (!this.discarding && rest.length > this.maxFrameBytes + RegexFramer.resyncTail) {
      this.discarding = true;
      this.events.oversizeStarted?.(rest.length);
    }
    if (this.discarding) {
      const keep = Math.min(RegexFramer.resyncTail, rest.length);
      this.discarded += rest.length - keep;
      rest = rest.slice(rest.length - keep);
    }
    this.text = rest;
  }

  reset(): number {
    const had = this.text.length;
    const wasDiscarding = this.discarding;
    this.text = '';
    this.discarding = false;
    if (wasDiscarding) {
      this.events.oversize(this.discarded + had);
      this.discarded = 0;
      return 0;
    }
    return had;
  }
}

const SLIP_END = 0xc0;
const SLIP_ESC = 0xdb;
const SLIP_ESC_END = 0xdc;
const SLIP_ESC_ESC = 0xdd;

/** RFC 1055 SLIP: frames end at END (0xC0); ESC sequences are undone. */
export class SlipFramer extends BoundedFramer {
  private escaped = false;

  push(chunk: Buffer): void {
    for (const b of chunk) {
      if (this.escaped) {
        this.escaped = false;
        // RFC 1055: a byte after ESC other than ESC_END/ESC_ESC is a protocol violation; keep it.
        this.frameBuf.addByte(b === SLIP_ESC_END ? SLIP_END : b === SLIP_ESC_ESC ? SLIP_ESC : b);
      } else if (b === SLIP_END) {
        const frame = this.frameBuf.take();
        if (frame && frame.length > 0) this.events.frame(frame);
      } else if (b === SLIP_ESC) {
        this.escaped = true;
      } else {
        this.frameBuf.addByte(b);
      }
    }
  }

  override reset(): number {
    this.escaped = false;
    return super.reset();
  }
}

/** The framer a port's config asks for. */
export function createFramer(cfg: Pick<SerialConfig, 'framing' | 'delimiter' | 'delimiterHex' | 'frameLength' | 'interbyteTimeoutMs' | 'regex' | 'maxFrameBytes'>, events: FramerEvents): Framer {
  switch (cfg.framing) {
    case 'line':
      return new DelimiterFramer(Buffer.from('\n'), cfg.maxFrameBytes, events, true);
    case 'delimiter':
      return new DelimiterFramer(cfg.delimiterHex !== undefined ? Buffer.from(cfg.delimiterHex, 'hex') : Buffer.from(cfg.delimiter ?? '\n', 'utf8'), cfg.maxFrameBytes, events);
    case 'fixed':
      return new FixedLengthFramer(cfg.frameLength ?? 1, events);
    case 'interbyte_timeout':
      return new InterByteTimeoutFramer(cfg.interbyteTimeoutMs, cfg.maxFrameBytes, events);
    case 'regex':
      return new RegexFramer(cfg.regex ?? '\n', cfg.maxFrameBytes, events);
    case 'slip':
      return new SlipFramer(cfg.maxFrameBytes, events);
  }
}
