import { createConnection, type Socket } from 'node:net';
import type { Clock } from '../../util/clock.js';
import { parsePdu, tcpRequest, type ReadRequest, type ReadResult } from './frames.js';
import { Reopener, type LinkState } from './reopener.js';
import type { ModbusTransport } from './transport.js';

export interface TcpSettings {
  host: string;
  port: number;
  connectTimeoutMs: number;
  reopenMinMs: number;
  reopenMaxMs: number;
}

export interface TcpDeps {
  clock: Clock;
  /** Default node:net createConnection; tests may pass another. */
  connect?: (opts: { host: string; port: number }) => Socket;
  onLost: (err: Error, how: string) => void;
  onOpen: (outage: { downMs: number; attempts: number } | null) => void;
  onStray?: (bytes: number) => void;
}

interface Pending {
  req: ReadRequest;
  tid: number;
  resolve: (r: ReadResult) => void;
  timer: NodeJS.Timeout;
}

/** Largest MBAP length field: unit id + a 253-byte PDU. */
const MAX_MBAP_LENGTH = 254;

/**
 * Modbus TCP. One transaction at a time, like on a serial bus: many devices and RTU gateways
 * handle only one, and a poll's order stays as configured. A timeout leaves the connection open
 * (a gateway whose downstream device is dead still answers for others); an answer that arrives
 * after its timeout carries an old transaction id and is discarded.
 */
export class TcpTransport implements ModbusTransport {
  private readonly reopener: Reopener;
  private socket: Socket | null = null;
  private rx: Buffer = Buffer.alloc(0);
  private pending: Pending | null = null;
  private tid = 0;

  constructor(
    private readonly s: TcpSettings,
    private readonly deps: TcpDeps,
  ) {
    this.reopener = new Reopener({ initialMs: s.reopenMinMs, maxMs: s.reopenMaxMs, clock: deps.clock, open: () => this.open(), onLost: deps.onLost, onOpen: deps.onOpen });
  }

  get state(): LinkState {
    return this.reopener.state;
  }

  start(): Promise<void> {
    return this.reopener.start();
  }

  private open(): Promise<void> {
    const connect = this.deps.connect ?? ((o) => createConnection(o));
    const socket = connect({ host: this.s.host, port: this.s.port });
    socket.setNoDelay(true);
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`connect timeout after ${this.s.connectTimeoutMs} ms`));
      }, this.s.connectTimeoutMs);
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        this.socket = socket;
        this.rx = Buffer.alloc(0);
        let lastError: Error | null = null;
        socket.on('error', (err) => (lastError = err));
        socket.on('data', (chunk: Buffer) => this.onData(chunk));
        socket.on('close', () => {
          if (this.socket !== socket) return;
          this.socket = null;
          this.finish({ ok: false, reason: 'not_connected', detail: 'connection closed' });
          this.reopener.lost(lastError ?? new Error('connection closed by the device'), 'closed');
        });
        resolve();
      });
    });
  }

  read(req: ReadRequest, timeoutMs: number): Promise<ReadResult> {
    const socket = this.socket;
    if (!socket) return Promise.resolve({ ok: false, reason: 'not_connected', detail: `${this.s.host}:${this.s.port} is not connected` });
    this.tid = (this.tid + 1) & 0xffff;
    const tid = this.tid;
    return new Promise<ReadResult>((resolve) => {
      const timer = setTimeout(() => this.finish({ ok: false, reason: 'timeout', detail: `no answer within ${timeoutMs} ms` }), timeoutMs);
      this.pending = { req, tid, resolve, timer };
      socket.write(tcpRequest(req, tid));
    });
  }

  private onData(chunk: Buffer): void {
    this.rx = this.rx.length ? Buffer.concat([this.rx, chunk]) : chunk;
    while (this.rx.length >= 7) {
      const length = this.rx.readUInt16BE(4);
      if (this.rx.readUInt16BE(2) !== 0 || length < 2 || length > MAX_MBAP_LENGTH) {
        // Not Modbus TCP (or out of step): nothing after this can be trusted; start over.
        this.deps.onStray?.(this.rx.length);
        this.rx = Buffer.alloc(0);
        this.finish({ ok: false, reason: 'bad_response', detail: 'malformed MBAP header' });
        return;
      }
      if (this.rx.length < 6 + length) return;
      const frame = this.rx.subarray(0, 6 + length);
      this.rx = this.rx.subarray(6 + length);
      const p = this.pending;
      if (!p || frame.readUInt16BE(0) !== p.tid || frame[6] !== p.req.unit) {
        this.deps.onStray?.(frame.length);
        continue;
      }
      this.finish(parsePdu(frame.subarray(7), p.req));
    }
  }

  private finish(r: ReadResult): void {
    const p = this.pending;
    if (!p) return;
    this.pending = null;
    clearTimeout(p.timer);
    p.resolve(r);
  }

  async stop(): Promise<void> {
    await this.reopener.stop();
    this.finish({ ok: false, reason: 'not_connected', detail: 'stopping' });
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          socket.destroy();
          resolve();
        }, 1000);
        socket.once('close', () => {
          clearTimeout(timer);
          resolve();
        });
        socket.end();
      });
    }
  }
}
