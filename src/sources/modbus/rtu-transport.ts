import type { SerialPortStream } from '@serialport/stream';
import type { Clock } from '../../util/clock.js';
import { sleep } from '../../util/sleep.js';
import { createSerialPortStream, defaultSerialBinding, type SerialBinding } from '../serial/serial-port.js';
import { parseRtuResponse, rtuFrameLength, rtuRequest, type ReadRequest, type ReadResult } from './frames.js';
import { Reopener, type LinkState } from './reopener.js';
import type { ModbusTransport, Monotonic } from './transport.js';

export interface RtuSettings {
  path: string;
  baudRate: number;
  dataBits: 7 | 8;
  parity: 'none' | 'even' | 'odd';
  stopBits: 1 | 2;
  /** Silence between a response and the next request, ms; default from the baud rate. */
  frameGapMs?: number;
  reopenMinMs: number;
  reopenMaxMs: number;
}

export interface RtuDeps {
  clock: Clock;
  binding?: SerialBinding;
  monotonic?: Monotonic;
  onLost: (err: Error, how: string) => void;
  onOpen: (outage: { downMs: number; attempts: number } | null) => void;
  /** Bytes that arrived while no request was waiting (noise, a late answer): counted. */
  onStray?: (bytes: number) => void;
}

/** Milliseconds one character takes on the line (start bit, data, parity, stop bits). */
export function charTimeMs(s: Pick<RtuSettings, 'baudRate' | 'dataBits' | 'parity' | 'stopBits'>): number {
  return ((1 + s.dataBits + (s.parity === 'none' ? 0 : 1) + s.stopBits) * 1000) / s.baudRate;
}

/**
 * The inter-frame silence Modbus RTU needs: 3.5 character times, fixed at 1.75 ms above 19200
 * baud (Modbus over Serial Line v1.02, 2.5.1.1), rounded up to whole milliseconds (timers are
 * not finer).
 */
export function frameGapMs(s: Pick<RtuSettings, 'baudRate' | 'dataBits' | 'parity' | 'stopBits' | 'frameGapMs'>): number {
  if (s.frameGapMs !== undefined) return s.frameGapMs;
  return Math.ceil(s.baudRate > 19200 ? 1.75 : 3.5 * charTimeMs(s));
}

interface Pending {
  req: ReadRequest;
  resolve: (r: ReadResult) => void;
  timer: NodeJS.Timeout;
}

/**
 * Modbus RTU on a serial port. A response ends when its length (known from its third byte) has
 * arrived, not after a silence: USB-serial adapters deliver bytes in bursts with pauses longer
 * than 1.5 character times, so silence-based framing would cut frames apart. Before each request
 * the line must have been quiet for the inter-frame gap, which also swallows the tail of a
 * garbled or late answer.
 */
export class RtuTransport implements ModbusTransport {
  private readonly reopener: Reopener;
  private readonly binding: SerialBinding;
  private readonly now: Monotonic;
  private readonly gapMs: number;
  private readonly charMs: number;
  private port: SerialPortStream | null = null;
  private rx: Buffer = Buffer.alloc(0);
  private pending: Pending | null = null;
  /** Monotonic time after which the line counts as quiet. */
  private quietAt = 0;

  constructor(
    private readonly s: RtuSettings,
    private readonly deps: RtuDeps,
  ) {
    this.binding = deps.binding ?? defaultSerialBinding();
    this.now = deps.monotonic ?? (() => performance.now());
    this.gapMs = frameGapMs(s);
    this.charMs = charTimeMs(s);
    this.reopener = new Reopener({ initialMs: s.reopenMinMs, maxMs: s.reopenMaxMs, clock: deps.clock, open: () => this.open(), onLost: deps.onLost, onOpen: deps.onOpen });
  }

  get state(): LinkState {
    return this.reopener.state;
  }

  /** The gap in use, ms. */
  get gap(): number {
    return this.gapMs;
  }

  start(): Promise<void> {
    return this.reopener.start();
  }

  private open(): Promise<void> {
    const s = this.s;
    const port = createSerialPortStream({ binding: this.binding, path: s.path, baudRate: s.baudRate, dataBits: s.dataBits, parity: s.parity, stopBits: s.stopBits, autoOpen: false });
    return new Promise<void>((resolve, reject) => {
      port.open((err) => {
        if (err) return reject(err);
        this.port = port;
        this.rx = Buffer.alloc(0);
        port.on('data', (chunk: Buffer) => this.onData(chunk));
        port.on('error', () => undefined);
        port.on('close', (e: (Error & { disconnected?: boolean }) | null) => {
          if (this.port !== port) return;
          this.port = null;
          this.finish({ ok: false, reason: 'not_connected', detail: 'port closed' });
          this.reopener.lost(e ?? new Error('port closed'), e?.disconnected ? 'disconnected' : 'closed');
        });
        resolve();
      });
    });
  }

  async read(req: ReadRequest, timeoutMs: number): Promise<ReadResult> {
    // Wait for a quiet line: every byte that arrives pushes the quiet time on.
    for (let wait = this.quietAt - this.now(); wait > 0; wait = this.quietAt - this.now()) await sleep(Math.ceil(wait));
    const port = this.port;
    if (!port) return { ok: false, reason: 'not_connected', detail: `${this.s.path} is not open` };
    this.rx = Buffer.alloc(0);
    const frame = rtuRequest(req);
    // The request occupies the line until its last byte is out, then the gap follows.
    this.quietAt = this.now() + frame.length * this.charMs + this.gapMs;
    return new Promise<ReadResult>((resolve) => {
      const timer = setTimeout(() => this.finish({ ok: false, reason: 'timeout', detail: `no complete answer within ${timeoutMs} ms` }), timeoutMs);
      this.pending = { req, resolve, timer };
      port.write(frame, (err) => {
        if (err) this.finish({ ok: false, reason: 'io_error', detail: err.message });
      });
    });
  }

  private onData(chunk: Buffer): void {
    this.quietAt = Math.max(this.quietAt, this.now() + this.gapMs);
    const p = this.pending;
    if (!p) {
      this.deps.onStray?.(chunk.length);
      return;
    }
    this.rx = this.rx.length ? Buffer.concat([this.rx, chunk]) : chunk;
    for (;;) {
      const len = rtuFrameLength(this.rx);
      if (len === null || this.rx.length < len) return;
      const frame = this.rx.subarray(0, len);
      this.rx = this.rx.subarray(len);
      const r = parseRtuResponse(frame, p.req);
      if (r !== 'unexpected') return this.finish(r);
      this.deps.onStray?.(len);
    }
  }

  private finish(r: ReadResult): void {
    const p = this.pending;
    if (!p) return;
    this.pending = null;
    clearTimeout(p.timer);
    this.rx = Buffer.alloc(0);
    p.resolve(r);
  }

  async stop(): Promise<void> {
    await this.reopener.stop();
    this.finish({ ok: false, reason: 'not_connected', detail: 'stopping' });
    const port = this.port;
    this.port = null;
    if (port?.isOpen) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 2000);
        port.close(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
}
