import type { SerialPortStream } from '@serialport/stream';
import type { Logger } from 'pino';
import type { Component } from '../../component.js';
import type { SerialConfig } from '../../config/load.js';
import { errorMessage, SluiceError } from '../../errors.js';
import type { ReportGap } from '../../journal/gaps.js';
import type { Journal, NewRecord } from '../../journal/journal.js';
import type { Metrics } from '../../metrics.js';
import { Backoff } from '../../util/backoff.js';
import type { Clock } from '../../util/clock.js';
import { OnceLogger } from '../../util/once-logger.js';
import { createDecoder, type Decoder } from './decode.js';
import { DropCoalescer } from '../drop-coalescer.js';
import { createFramer, type Framer } from './framing.js';
import { Poller } from './poller.js';
import { createSerialPortStream, defaultSerialBinding, type SerialBinding } from './serial-port.js';
import { compileTopicTemplate, keyFromField } from './topic-template.js';

export type { SerialBinding };

export interface SerialSourceDeps {
  journal: Journal;
  logger: Logger;
  clock: Clock;
  metrics: Metrics;
  /** Where every dropped frame is accounted for (gateway.gaps.report). */
  reportGap: ReportGap;
  /** Default: serialport's native binding for this OS. */
  binding?: SerialBinding;
  /** Window in which drops of one reason become one gap report, in ms. Default 1000. */
  gapWindowMs?: number;
}

type State = 'idle' | 'opening' | 'open' | 'lost';

/**
 * Reads one serial port: frames the byte stream, decodes each frame and journals it. A port that
 * is missing or goes away is logged once, reopened with backoff forever, and logged once when it
 * is back; nothing about a port ever stops the daemon. A serial line cannot be paused, so a frame
 * the journal cannot take is dropped and accounted for as a gap, never blocked on.
 */
export class SerialSource implements Component {
  readonly name: string;
  private readonly sourceName: string;
  private readonly log: Logger;
  private readonly once: OnceLogger;
  private readonly backoff: Backoff;
  private readonly framer: Framer;
  private readonly decoder: Decoder;
  private readonly topicOf: (fields: Record<string, unknown> | null) => string;
  private readonly errorTopic: string;
  private readonly drops: DropCoalescer;
  private readonly poller: Poller | null;
  private readonly received: { inc: (by?: number) => void };
  private readonly binding: SerialBinding;
  private port: SerialPortStream | null = null;
  private state: State = 'idle';
  private stopping = false;
  private reopenTimer: NodeJS.Timeout | null = null;
  /** When the current outage began (null while the port is fine). */
  private lostAt: number | null = null;
  private lostAttempts = 0;
  private opened: Promise<void> | null = null;

  constructor(
    private readonly cfg: SerialConfig,
    private readonly deps: SerialSourceDeps,
  ) {
    this.name = `serial:${cfg.name}`;
    this.sourceName = this.name;
    this.log = deps.logger.child({ component: this.name });
    this.once = new OnceLogger(this.log);
    this.backoff = new Backoff({ initialMs: cfg.reopenMinMs, maxMs: cfg.reopenMaxMs });
    this.binding = deps.binding ?? defaultSerialBinding();
    this.framer = createFramer(cfg, { frame: (f) => this.onFrame(f), oversize: (n) => this.onOversize(n), oversizeStarted: (n) => this.onOversizeStarted(n) });
    this.decoder = createDecoder(cfg);
    this.topicOf = compileTopicTemplate(cfg.topic, cfg.name);
    this.errorTopic = cfg.errorTopic.replaceAll('{name}', cfg.name);
    this.drops = new DropCoalescer(this.sourceName, deps.reportGap, deps.gapWindowMs ?? 1000);
    this.received = deps.metrics.counter('sluice_source_received_total', { source: this.sourceName });
    deps.metrics.set('sluice_serial_port_open', { source: this.sourceName }, 0);
    const request = cfg.pollRequestHex !== undefined ? Buffer.from(cfg.pollRequestHex, 'hex') : cfg.pollRequest !== undefined ? Buffer.from(cfg.pollRequest, 'utf8') : null;
    this.poller = request
      ? new Poller({
          request,
          intervalMs: cfg.pollIntervalMs,
          timeoutMs: cfg.pollTimeoutMs,
          logger: this.log,
          onTimeout: () => deps.metrics.inc('sluice_serial_poll_timeouts_total', { source: this.sourceName }),
        })
      : null;
  }

  /** True while the port is open. */
  /** For status: idle, opening, open or lost. */
  get connectionState(): string {
    return this.state;
  }

  get isOpen(): boolean {
    return this.state === 'open';
  }

  /** Bytes held by the framer for the frame in progress (bounded by max_frame_bytes). */
  get bufferedBytes(): number {
    return this.framer.bufferedBytes;
  }

  /**
   * Writes bytes to the open port and waits until they drained (the downlink writes commands through
   * the port this source holds open, never opening it twice). Rejects while the port is not open.
   */
  write(bytes: Buffer): Promise<void> {
    const port = this.port;
    if (!port || this.state !== 'open') return Promise.reject(new Error(`serial port ${this.cfg.path} is not open`));
    return new Promise((resolve, reject) => {
      port.write(bytes, (err) => {
        if (err) return reject(err);
        port.drain((e) => (e ? reject(e) : resolve()));
      });
    });
  }

  /** Tries to open the port once; a missing port is not an error (it is retried in the background). */
  async start(): Promise<void> {
    if (this.state !== 'idle') return;
    this.stopping = false;
    await this.open();
  }

  private open(): Promise<void> {
    const cfg = this.cfg;
    this.state = 'opening';
    const port = createSerialPortStream({
      binding: this.binding,
      path: cfg.path,
      baudRate: cfg.baudRate,
      dataBits: cfg.dataBits,
      parity: cfg.parity,
      stopBits: cfg.stopBits,
      rtscts: cfg.flowControl === 'rtscts',
      xon: cfg.flowControl === 'xonxoff',
      xoff: cfg.flowControl === 'xonxoff',
      autoOpen: false,
    });
    this.opened = new Promise<void>((resolve) => {
      port.open((err) => {
        if (this.stopping) {
          if (!err) port.close(() => undefined);
          return resolve();
        }
        if (err) this.onOpenFailed(err);
        else this.onOpened(port);
        resolve();
      });
    });
    return this.opened;
  }

  private onOpened(port: SerialPortStream): void {
    this.port = port;
    this.state = 'open';
    this.backoff.reset();
    this.deps.metrics.set('sluice_serial_port_open', { source: this.sourceName }, 1);
    port.on('data', (chunk: Buffer) => {
      try {
        this.framer.push(chunk);
      } catch (err) {
        // A bug must not take the daemon down with it: count, log once, keep reading.
        this.deps.metrics.inc('sluice_source_errors_total', { source: this.sourceName });
        this.once.warn('frame-handling', { err: errorMessage(err) }, 'internal error while handling serial data');
      }
    });
    port.on('close', (err: (Error & { disconnected?: boolean }) | null) => this.onClosed(port, err));
    port.on('error', (err: Error) => {
      this.deps.metrics.inc('sluice_source_errors_total', { source: this.sourceName });
      this.log.debug({ err: err.message }, 'serial port error');
    });
    if (this.lostAt !== null) {
      this.log.info({ path: this.cfg.path, downMs: this.deps.clock.now() - this.lostAt, attempts: this.lostAttempts }, 'serial port recovered; reading again');
      this.lostAt = null;
      this.lostAttempts = 0;
    } else {
      this.log.info({ path: this.cfg.path, baudRate: this.cfg.baudRate, framing: this.cfg.framing, decoder: this.cfg.decoder }, 'serial port open');
    }
    this.poller?.attach((request) =>
      port.write(request, (err) => {
        if (err) this.log.debug({ err: err.message }, 'poll request could not be written');
      }),
    );
  }

  private onOpenFailed(err: Error): void {
    this.state = 'lost';
    this.lostAttempts++;
    if (this.lostAt === null) {
      this.lostAt = this.deps.clock.now();
      this.logLost(err, 'cannot open');
    }
    this.scheduleReopen();
  }

  private onClosed(port: SerialPortStream, err: (Error & { disconnected?: boolean }) | null): void {
    if (port !== this.port) return;
    this.port = null;
    this.poller?.detach();
    this.deps.metrics.set('sluice_serial_port_open', { source: this.sourceName }, 0);
    const partial = this.dropPartialFrame('closed');
    if (this.stopping) return;
    this.state = 'lost';
    this.deps.metrics.inc('sluice_serial_disconnects_total', { source: this.sourceName });
    if (this.lostAt === null) {
      this.lostAt = this.deps.clock.now();
      this.logLost(err ?? new Error('port closed'), err?.disconnected ? 'disconnected' : 'closed', partial);
    }
    this.scheduleReopen();
  }

  private logLost(err: Error, how: string, partialFrameBytes = 0): void {
    const code = (err as NodeJS.ErrnoException).code;
    const hint =
      /EACCES|Permission denied/i.test(err.message) || code === 'EACCES'
        ? 'the sluice user needs read/write access to the device: add it to the "dialout" group'
        : undefined;
    this.log.warn(
      { path: this.cfg.path, how, err: err.message, hint, partialFrameBytes: partialFrameBytes || undefined },
      'serial port lost; reopening with backoff until it is back (logged once per outage)',
    );
  }

  private scheduleReopen(): void {
    if (this.reopenTimer || this.stopping) return;
    const delay = this.backoff.next();
    this.reopenTimer = setTimeout(() => {
      this.reopenTimer = null;
      if (!this.stopping) void this.open();
    }, delay);
  }

  /** Said at once, so a sensor that never sends a delimiter is noticed before its frame ends. */
  private onOversizeStarted(bytesSoFar: number): void {
    const cfg = this.cfg;
    this.once.warn('frame_too_large', { path: cfg.path, bytesSoFar, limit: cfg.maxFrameBytes, framing: cfg.framing }, 'frame longer than max_frame_bytes discarded; reading resumes after the next frame boundary (wrong framing or baud rate?)');
  }

  /** An oversized frame ended: counted with every byte it had, up to its delimiter (or the port closing). */
  private onOversize(bytes: number): void {
    const cfg = this.cfg;
    this.onOversizeStarted(bytes);
    this.deps.metrics.inc('sluice_source_rejected_total', { source: this.sourceName, reason: 'frame_too_large' });
    this.drops.add('frame_too_large', bytes, this.deps.clock.now(), `frames over max_frame_bytes (${cfg.maxFrameBytes}) on ${cfg.path}`);
  }

  /** The frame in progress is lost with the port (closed, unplugged, or sluice stopping): counted and reported as a gap. */
  private dropPartialFrame(how: string): number {
    const partial = this.framer.reset();
    if (partial > 0) {
      this.deps.metrics.inc('sluice_serial_partial_frames_total', { source: this.sourceName });
      this.drops.add('partial_frame', partial, this.deps.clock.now(), `a frame cut short when ${this.cfg.path} ${how}`);
    }
    return partial;
  }

  private onFrame(frame: Buffer): void {
    const time = this.deps.clock.now();
    this.poller?.frameArrived();
    this.received.inc();
    const decoded = this.decoder(frame);
    const decoderName = this.cfg.decoder;
    if (!decoded.ok) {
      this.deps.metrics.inc('sluice_serial_decode_errors_total', { source: this.sourceName });
      this.once.warn(`decode:${decoded.reason.split(':')[0]}`, { path: this.cfg.path, decoder: decoderName, reason: decoded.reason, onDecodeError: this.cfg.onDecodeError }, 'frame failed to decode');
      if (this.cfg.onDecodeError === 'drop') {
        this.drops.add('decode_failed', frame.length, time, `${decoderName}: ${decoded.reason}`);
        return;
      }
      this.append({ time, source: this.sourceName, topic: this.errorTopic, key: this.cfg.key ?? null, payload: frame, headers: { 'sluice.decoder': decoderName, 'sluice.error': decoded.reason } });
      return;
    }
    let key: string | null = this.cfg.key ?? null;
    if (this.cfg.keyField !== undefined) {
      key = keyFromField(decoded.fields, this.cfg.keyField);
      if (key === null) {
        this.deps.metrics.inc('sluice_serial_key_missing_total', { source: this.sourceName });
        this.once.warn('key_missing', { keyField: this.cfg.keyField }, 'decoded frame lacks key_field; journaled without a key');
      }
    }
    this.append({ time, source: this.sourceName, topic: this.topicOf(decoded.fields), key, payload: decoded.payload, headers: { 'sluice.decoder': decoderName } });
  }

  /** Journals a record, or counts it as dropped: a serial line cannot be told to wait. */
  private append(record: NewRecord): void {
    try {
      this.deps.journal.append(record);
    } catch (err) {
      const full = err instanceof SluiceError && err.code === 'SLUICE_JOURNAL_FULL';
      const reason = full ? 'journal_full' : 'journal_error';
      this.once.warn(reason, { err: errorMessage(err) }, full ? 'journal full: serial frames are dropped and reported as gaps until it has room' : 'journal refused a serial frame; dropped and reported as a gap');
      this.drops.add(reason, record.payload.length, record.time, errorMessage(err));
    }
  }

  async stop(): Promise<void> {
    if (this.state === 'idle') return;
    this.stopping = true;
    if (this.reopenTimer) clearTimeout(this.reopenTimer);
    this.reopenTimer = null;
    this.poller?.detach();
    await this.opened;
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
    this.dropPartialFrame('was closed at stop');
    this.drops.flush();
    this.deps.metrics.set('sluice_serial_port_open', { source: this.sourceName }, 0);
    this.state = 'idle';
    this.log.info('serial source stopped');
  }
}
