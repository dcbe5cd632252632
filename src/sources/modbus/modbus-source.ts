import type { Logger } from 'pino';
import type { Socket } from 'node:net';
import type { Component } from '../../component.js';
import type { ModbusConfig, ModbusDeviceConfig } from '../../config/load.js';
import { errorMessage, SluiceError } from '../../errors.js';
import type { ReportGap } from '../../journal/gaps.js';
import type { Journal } from '../../journal/journal.js';
import type { Metrics } from '../../metrics.js';
import type { Clock } from '../../util/clock.js';
import { OnceLogger } from '../../util/once-logger.js';
import { DropCoalescer } from '../drop-coalescer.js';
import type { SerialBinding } from '../serial/serial-source.js';
import { BusPoller, type DevicePoll } from './bus-poller.js';
import { ChangeFilter, pollValues, type PollPayload } from './poll-record.js';
import type { LinkState } from './reopener.js';
import { RtuTransport } from './rtu-transport.js';
import { TcpTransport } from './tcp-transport.js';
import type { ModbusTransport } from './transport.js';

export interface ModbusSourceDeps {
  journal: Journal;
  logger: Logger;
  clock: Clock;
  metrics: Metrics;
  /** Where every poll record the journal could not take is accounted for. */
  reportGap: ReportGap;
  /** serialport binding for RTU; default the native one. */
  binding?: SerialBinding;
  /** TCP connect function; default node:net's. */
  connect?: (opts: { host: string; port: number }) => Socket;
  /** Builds the transport instead (tests). */
  createTransport?: (cfg: ModbusConfig, events: Pick<TransportEvents, 'onLost' | 'onOpen'>) => ModbusTransport;
  gapWindowMs?: number;
}

interface TransportEvents {
  onLost: (err: Error, how: string) => void;
  onOpen: (outage: { downMs: number; attempts: number } | null) => void;
  onStray: (bytes: number) => void;
}

interface DeviceRun {
  topic: string;
  filter: ChangeFilter | null;
  /** Failures of the outage now running, or null while the device answers. */
  outage: { since: number; polls: number } | null;
  labels: { source: string; device: string };
}

/**
 * A Modbus bus (RTU on a serial port, or TCP): polls its devices and journals one record per
 * poll, with every value named, scaled and given a quality. Errors are data: a value that could
 * not be read is in the record as quality "bad" with the reason (timeout, crc_error, an exception
 * name, not_connected), every failed request is counted per device and reason, and each outage is
 * logged once when it begins and once when it ends. The link is kept open with backoff forever.
 */
export class ModbusSource implements Component {
  readonly name: string;
  private readonly log: Logger;
  private readonly once: OnceLogger;
  private readonly transport: ModbusTransport;
  private readonly poller: BusPoller;
  private readonly drops: DropCoalescer;
  private readonly runs = new Map<ModbusDeviceConfig, DeviceRun>();
  private readonly received: { inc: (by?: number) => void };
  private started = false;

  constructor(
    private readonly cfg: ModbusConfig,
    private readonly deps: ModbusSourceDeps,
  ) {
    this.name = `modbus:${cfg.name}`;
    this.log = deps.logger.child({ component: this.name });
    this.once = new OnceLogger(this.log);
    this.drops = new DropCoalescer(this.name, deps.reportGap, deps.gapWindowMs ?? 1000);
    this.received = deps.metrics.counter('sluice_source_received_total', { source: this.name });
    deps.metrics.set('sluice_modbus_link_open', { source: this.name }, 0);
    const events: TransportEvents = {
      onLost: (err, how) => this.onLost(err, how),
      onOpen: (outage) => this.onOpen(outage),
      onStray: (bytes) => deps.metrics.inc('sluice_modbus_stray_bytes_total', { source: this.name }, bytes),
    };
    this.transport = deps.createTransport ? deps.createTransport(cfg, events) : this.makeTransport(events);
    for (const d of cfg.device) {
      const deadbands = new Map(d.register.filter((r) => r.deadband !== undefined).map((r) => [r.name, r.deadband!]));
      this.runs.set(d, {
        topic: cfg.topic.replaceAll('{name}', cfg.name).replaceAll('{device}', d.name),
        filter: d.report === 'on_change' ? new ChangeFilter(deadbands) : null,
        outage: null,
        labels: { source: this.name, device: d.name },
      });
    }
    this.poller = new BusPoller(cfg.device, this.transport, {
      now: () => deps.clock.now(),
      onPoll: (p) => this.onPoll(p),
      onFailedAttempt: (d, reason) => deps.metrics.inc('sluice_modbus_errors_total', { source: this.name, device: d.name, reason }),
      onOverrun: (d) => {
        deps.metrics.inc('sluice_modbus_overruns_total', { source: this.name, device: d.name });
        this.once.warn(`overrun:${d.name}`, { device: d.name, pollIntervalMs: d.pollIntervalMs }, 'a poll came due before the last one finished and was skipped: the bus is too busy for this poll_interval_ms (or a device times out)');
      },
    });
  }

  private makeTransport(events: TransportEvents): ModbusTransport {
    const c = this.cfg;
    if (c.transport === 'tcp') {
      const at = c.address!.lastIndexOf(':');
      return new TcpTransport({ host: c.address!.slice(0, at), port: Number(c.address!.slice(at + 1)), connectTimeoutMs: c.connectTimeoutMs, reopenMinMs: c.reopenMinMs, reopenMaxMs: c.reopenMaxMs }, { clock: this.deps.clock, connect: this.deps.connect, ...events });
    }
    return new RtuTransport(
      { path: c.path!, baudRate: c.baudRate, dataBits: c.dataBits, parity: c.parity, stopBits: c.stopBits, frameGapMs: c.frameGapMs, reopenMinMs: c.reopenMinMs, reopenMaxMs: c.reopenMaxMs },
      { clock: this.deps.clock, binding: this.deps.binding, ...events },
    );
  }

  /** For status: idle, opening, open or lost. */
  get connectionState(): LinkState {
    return this.transport.state;
  }

  private get where(): string {
    return this.cfg.transport === 'tcp' ? this.cfg.address! : this.cfg.path!;
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.transport.start();
    // Polls run while the link is down too: their values say "not_connected", so the outage is in the data.
    this.poller.start();
  }

  private onOpen(outage: { downMs: number; attempts: number } | null): void {
    this.deps.metrics.set('sluice_modbus_link_open', { source: this.name }, 1);
    if (outage) this.log.info({ at: this.where, ...outage }, 'modbus link recovered; polling again');
    else this.log.info({ transport: this.cfg.transport, at: this.where, devices: this.cfg.device.length, requestsPerRound: this.poller.requestsPerRound }, 'modbus link open');
  }

  private onLost(err: Error, how: string): void {
    this.deps.metrics.set('sluice_modbus_link_open', { source: this.name }, 0);
    this.deps.metrics.inc('sluice_modbus_disconnects_total', { source: this.name });
    const code = (err as NodeJS.ErrnoException).code;
    const hint = this.cfg.transport === 'rtu' && (code === 'EACCES' || /EACCES|Permission denied/i.test(err.message)) ? 'the sluice user needs read/write access to the device: add it to the "dialout" group' : undefined;
    this.log.warn({ at: this.where, how, err: err.message, hint }, 'modbus link lost; reopening with backoff until it is back; polls meanwhile report not_connected (logged once per outage)');
  }

  private onPoll(poll: DevicePoll): void {
    const run = this.runs.get(poll.device)!;
    const m = this.deps.metrics;
    m.inc('sluice_modbus_polls_total', run.labels);
    const { values, ok } = pollValues(poll);
    this.trackOutage(poll, run, ok);
    if (run.filter && !run.filter.changed(values)) {
      m.inc('sluice_modbus_unchanged_total', run.labels);
      return;
    }
    const payload: PollPayload = { bus: this.cfg.name, device: poll.device.name, unit_id: poll.device.unitId, time: new Date(poll.time).toISOString(), ok, values };
    const body = Buffer.from(JSON.stringify(payload));
    try {
      this.deps.journal.append({ time: poll.time, source: this.name, topic: run.topic, key: poll.device.name, payload: body, headers: null });
      this.received.inc();
      run.filter?.remember(values);
    } catch (err) {
      const full = err instanceof SluiceError && err.code === 'SLUICE_JOURNAL_FULL';
      const reason = full ? 'journal_full' : 'journal_error';
      this.once.warn(reason, { err: errorMessage(err) }, full ? 'journal full: modbus polls are dropped and reported as gaps until it has room' : 'journal refused a modbus poll; dropped and reported as a gap');
      this.drops.add(reason, body.length, poll.time, errorMessage(err));
    }
  }

  /** Logs a device's outage once when it begins (with what failed and why) and once when it ends. */
  private trackOutage(poll: DevicePoll, run: DeviceRun, ok: boolean): void {
    if (ok) {
      if (run.outage) {
        this.log.info({ device: poll.device.name, unitId: poll.device.unitId, failedPolls: run.outage.polls, downMs: poll.time - run.outage.since }, 'modbus device answering again');
        run.outage = null;
      }
      return;
    }
    if (run.outage) {
      run.outage.polls++;
      return;
    }
    run.outage = { since: poll.time, polls: 1 };
    // The link's own outage is logged by the link; a device on a dead link is not news.
    if (poll.results.every((r) => !r.ok && r.reason === 'not_connected')) return;
    const failed = poll.results.flatMap((r, i) => (r.ok ? [] : [{ fn: poll.reads[i]!.fn, address: poll.reads[i]!.address, count: poll.reads[i]!.count, reason: r.reason, detail: r.detail }]));
    this.log.warn({ device: poll.device.name, unitId: poll.device.unitId, failed }, 'modbus device failing: its values are journaled with quality "bad" and the reason, every failed request counted in sluice_modbus_errors_total (logged once per outage)');
  }

  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    await this.poller.stop();
    await this.transport.stop();
    this.drops.flush();
    this.deps.metrics.set('sluice_modbus_link_open', { source: this.name }, 0);
    this.log.info('modbus source stopped');
  }
}
