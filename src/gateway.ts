import type { LevelWithSilent, Logger } from 'pino';
import type { Component } from './component.js';
import type { Config } from './config/load.js';
import { sameConfig } from './config/same.js';
import { GapRecorder } from './journal/gaps.js';
import { classifierForConfig, type Classify } from './journal/retention.js';
import type { Journal } from './journal/journal.js';
import { SqliteJournal } from './journal/sqlite-journal.js';
import { Metrics } from './metrics.js';
import { HealthSource } from './ops/health-source.js';
import { OpsServer } from './ops/ops-server.js';
import { healthProbe, mqttProbe, serialProbe, sinkProbe } from './ops/progress-probes.js';
import { StallMonitor, type ProgressProbe, type Stall } from './ops/stall-monitor.js';
import { WriteCounter } from './ops/io-counters.js';
import type { OpsView } from './ops/status.js';
import type { KafkaClientFactory } from './sinks/kafka-client.js';
import { KafkaSink } from './sinks/kafka-sink.js';
import { MqttSource, type MqttClientFactory } from './sources/mqtt-source.js';
import { SerialSource, type SerialBinding } from './sources/serial/serial-source.js';
import { ModbusSource } from './sources/modbus/modbus-source.js';
import { Downlink, type DownlinkStatus } from './downlink/downlink.js';
import { ClockWatch, type ClockState } from './time/clock-watch.js';
import { createSyncReader, type SyncReader } from './time/sync-reader.js';
import { systemTimeSources, type TimeSources } from './time/time-sources.js';
import { type Clock } from './util/clock.js';
import { LogTap } from './util/log-tap.js';
import { sleep } from './util/sleep.js';

export interface GatewayDeps {
  logger: Logger;
  /** The wall clock; default the system's (`timeSources.wall`). */
  clock?: Clock;
  /** Wall, monotonic and boot clocks records are dated by; default the system's. */
  timeSources?: TimeSources;
  /** Default: as config time.sync_source says. */
  syncReader?: SyncReader;
  metrics?: Metrics;
  createMqttClient?: MqttClientFactory;
  createKafkaClient?: KafkaClientFactory;
  /** serialport binding for [[serial]] ports; default the native one. */
  serialBinding?: SerialBinding;
  /** What sluice wrote to storage; default: /proc/self/io from now on. */
  writeCounter?: WriteCounter;
  /** Applies a log level to the root logger and all its children (reload). */
  setLogLevel?: (level: LevelWithSilent) => void;
  /** A level given on the command line: it wins over the config file, also on reload. */
  logLevelOverride?: string;
  /** Remembers each component's last logged problem, for status. */
  tap?: LogTap;
  configPath?: string;
  version?: string;
}

/** What a reload did. */
export interface ReloadOutcome {
  /** Parts replaced, e.g. "sink:cloud", "mqtt:local", "log.level". */
  changed: string[];
  /** Keys that changed in the file but take effect only after a restart. */
  needRestart: string[];
}

/**
 * Builds and wires sluice's components: journal first, then sinks, then sources (MQTT, health),
 * then the ops endpoints; stops them in reverse, once, within the configured deadline. A reload
 * replaces, in the same order, only the components whose config changed.
 */
export class Gateway implements OpsView {
  readonly journal: SqliteJournal;
  sinks: KafkaSink[];
  sources: MqttSource[];
  serialSources: SerialSource[];
  modbusSources: ModbusSource[];
  /** [[downlink]]: commands from Kafka to devices. Changes need a restart. */
  readonly downlinks: Downlink[];
  health: HealthSource | null;
  http: OpsServer | null;
  /** Watches sources and sinks for work that does not move. */
  readonly stallMonitor: StallMonitor;
  /** Watches the system clock: sync state, jumps, suspend. */
  readonly clockWatch: ClockWatch;
  readonly metrics: Metrics;
  /** Every loss is reported here and becomes a gap record (`sluice/gaps`). */
  readonly gaps: GapRecorder;
  readonly tap: LogTap;
  readonly startedAt: number;
  readonly reloads: OpsView['reloads'] = { count: 0, last: null };
  private readonly started = new Set<Component>();
  private stopping: Promise<boolean> | null = null;
  private reloadChain: Promise<unknown> = Promise.resolve();
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly writeCounter: WriteCounter;
  /** Eviction class of a record; rebuilt on reload (routes and policies may change). */
  private classify: Classify;

  constructor(
    private config: Config,
    private readonly deps: GatewayDeps,
  ) {
    const sources = deps.timeSources ?? (deps.clock ? { ...systemTimeSources, wall: deps.clock } : systemTimeSources);
    this.clock = deps.clock ?? sources.wall;
    this.metrics = deps.metrics ?? new Metrics();
    this.log = deps.logger;
    this.tap = deps.tap ?? new LogTap();
    this.startedAt = this.clock.now();
    this.writeCounter = deps.writeCounter ?? new WriteCounter();
    this.classify = classifierForConfig(config);
    this.clockWatch = new ClockWatch(
      { jumpThresholdMs: config.time.jumpThresholdMs, unsyncedAlarmAfterMs: config.time.unsyncedAlarmAfterS * 1000 },
      {
        sources,
        syncReader: deps.syncReader ?? createSyncReader(config.time.syncSource, config.time.pollS * 1000, { mono: sources.mono }),
        metrics: this.metrics,
        logger: deps.logger.child({ component: 'clock' }),
        reportGap: (gap) => this.gaps.report(gap),
      },
    );
    this.journal = new SqliteJournal({
      ...config.journal,
      classify: (source, topic) => this.classify(source, topic),
      // The recorder needs the journal; the journal reports through it once both exist.
      reportGap: (gap) => this.gaps.report(gap),
      logger: deps.logger.child({ component: 'journal' }),
      clock: this.clock,
      captureClock: this.clockWatch,
    });
    this.gaps = new GapRecorder({ journal: this.journal, metrics: this.metrics, logger: deps.logger.child({ component: 'gaps' }), clock: this.clock, gatewayId: this.gatewayId });
    this.sinks = config.sink.map((s) => this.makeSink(s));
    this.sources = config.mqtt.map((m) => this.makeMqtt(m));
    this.serialSources = config.serial.map((p) => this.makeSerial(p));
    this.modbusSources = config.modbus.map((b) => this.makeModbus(b));
    this.downlinks = config.downlink.map((d) => this.makeDownlink(d));
    this.health = config.health.enabled ? this.makeHealth(config) : null;
    this.http = config.http.enabled ? this.makeHttp(config) : null;
    this.stallMonitor = new StallMonitor({ stallAfterMs: config.gateway.stallAfterS * 1000 }, { probes: () => this.probes(), metrics: this.metrics, logger: deps.logger.child({ component: 'stall-monitor' }), clock: this.clock, reportGap: this.gaps.report });
  }

  /** What the stall monitor looks at: every running source and sink. */
  private probes(): ProgressProbe[] {
    const running = <T extends Component>(c: T): boolean => this.started.has(c);
    const out: ProgressProbe[] = [];
    for (const s of this.sources) if (running(s)) out.push(mqttProbe(s, this.metrics, this.journal));
    for (const s of this.serialSources) if (running(s)) out.push(serialProbe(s, this.metrics));
    if (this.health && running(this.health)) out.push(healthProbe(this.health, this.metrics, this.config.health.intervalS));
    for (const s of this.sinks) if (running(s)) out.push(sinkProbe(s, s.name.slice('sink:'.length), this.metrics, this.journal));
    return out;
  }

  /** Components stalled now. */
  stalls(): Stall[] {
    return this.stallMonitor.stalls();
  }

  private makeSink(s: Config['sink'][number]): KafkaSink {
    return new KafkaSink(s, { journal: this.journal, logger: this.deps.logger, metrics: this.metrics, clock: this.clock, gatewayId: this.gatewayId, createClient: this.deps.createKafkaClient, reportGap: this.gaps.report });
  }

  private makeMqtt(m: Config['mqtt'][number]): MqttSource {
    return new MqttSource(m, { journal: this.journal, logger: this.deps.logger, metrics: this.metrics, clock: this.clock, gatewayId: this.gatewayId, createClient: this.deps.createMqttClient, reportGap: this.gaps.report });
  }

  private makeSerial(p: Config['serial'][number]): SerialSource {
    return new SerialSource(p, { journal: this.journal, logger: this.deps.logger, metrics: this.metrics, clock: this.clock, reportGap: this.gaps.report, binding: this.deps.serialBinding });
  }

  private makeModbus(b: Config['modbus'][number]): ModbusSource {
    return new ModbusSource(b, { journal: this.journal, logger: this.deps.logger, metrics: this.metrics, clock: this.clock, reportGap: this.gaps.report, binding: this.deps.serialBinding });
  }

  private makeDownlink(d: Config['downlink'][number]): Downlink {
    // The schema's cross-field checks made sure the sink, [[mqtt]] and [[serial]] names exist.
    const sink = d.sink === undefined ? this.config.sink[0]! : this.config.sink.find((s) => s.name === d.sink)!;
    return new Downlink(d, {
      journal: this.journal,
      logger: this.deps.logger,
      metrics: this.metrics,
      clock: this.clock,
      gatewayId: this.gatewayId,
      sink,
      mqtt: new Map(this.config.mqtt.map((m) => [m.name, m])),
      serial: new Map(this.serialSources.map((s) => [s.name.slice('serial:'.length), s])),
      createMqttClient: this.deps.createMqttClient,
      serialBinding: this.deps.serialBinding,
    });
  }

  private makeHealth(c: Config): HealthSource {
    return new HealthSource({ intervalS: c.health.intervalS, topic: c.health.topic, journalPath: c.journal.path }, { journal: this.journal, logger: this.deps.logger, metrics: this.metrics, clock: this.clock, gatewayId: this.gatewayId, reportGap: this.gaps.report, clockState: () => this.clockWatch.state() });
  }

  private makeHttp(c: Config): OpsServer {
    return new OpsServer({ host: c.http.host, port: c.http.port }, { view: this, logger: this.deps.logger.child({ component: 'http' }), clock: this.clock });
  }

  async start(): Promise<void> {
    // The clock's sync state is known before the first record is dated.
    await this.startOne(this.clockWatch);
    await this.journal.start();
    this.started.add(this.journal);
    this.journal.registerSinks(this.config.sink.map((s) => s.name));
    for (const c of [...this.sinks, ...this.sources, ...this.serialSources, ...this.modbusSources, ...this.downlinks, this.health, this.http, this.stallMonitor]) if (c) await this.startOne(c);
    if (this.sinks.length === 0) this.log.warn('no [[sink]] configured: records are journaled and kept until one is');
    if (this.sources.length + this.serialSources.length + this.modbusSources.length === 0) this.log.warn('no [[mqtt]], [[serial]] or [[modbus]] source configured: nothing will be ingested');
    this.log.info({ sources: [...this.sources, ...this.serialSources, ...this.modbusSources].map((s) => s.name), sinks: this.sinks.map((s) => s.name) }, 'sluice ready');
  }

  private async startOne(c: Component): Promise<void> {
    await c.start();
    this.started.add(c);
  }

  private async stopOne(c: Component, deadlineMs?: number): Promise<void> {
    if (!this.started.delete(c)) return;
    try {
      if (c instanceof KafkaSink) await c.stop(deadlineMs);
      else await c.stop();
    } catch (err) {
      this.log.error({ err, component: c.name }, 'component failed to stop cleanly');
    }
  }

  /**
   * Applies a new, already validated config without a restart. Components whose section is
   * unchanged keep running; changed ones are stopped and started anew: sources first stopped (their
   * held acknowledgements go out after a final commit; the broker redelivers anything unacknowledged
   * to the new client), then sinks (a sink moves its cursor only after Kafka confirmed, and the new
   * one starts from that cursor, so nothing is lost or sent twice). Journal settings and the
   * gateway id need a restart; they are reported and left as they are. Reloads run one at a time.
   */
  reload(next: Config): Promise<ReloadOutcome> {
    const run = this.reloadChain.then(() => this.doReload(next));
    this.reloadChain = run.catch(() => undefined);
    return run;
  }

  private async doReload(next: Config): Promise<ReloadOutcome> {
    if (this.stopping) return { changed: [], needRestart: [] };
    const prev = this.config;
    const needRestart: string[] = [];
    const changed: string[] = [];
    // Bounds apply at once (a raised bound is room for a paused source); the rest needs a restart.
    const bounds = (j: Config['journal']) => ({ maxBytes: j.maxBytes, maxAgeS: j.maxAgeS, minFreeBytes: j.minFreeBytes });
    const { maxBytes: _a, maxAgeS: _b, minFreeBytes: _c, ...prevRest } = prev.journal;
    const { maxBytes: _d, maxAgeS: _e, minFreeBytes: _f, ...nextRest } = next.journal;
    const boundsChanged = !sameConfig(bounds(prev.journal), bounds(next.journal));
    if (!sameConfig(prevRest, nextRest)) needRestart.push('journal');
    if (prev.gateway.stallAfterS !== next.gateway.stallAfterS) needRestart.push('gateway.stall_after_s');
    if (prev.gateway.id !== next.gateway.id) needRestart.push('gateway.id');
    if (!sameConfig(prev.time, next.time)) needRestart.push('time');
    // A downlink holds publishers, a consumer group and in-flight packet ids: it is replaced only by a restart.
    if (!sameConfig(prev.downlink, next.downlink)) needRestart.push('downlink');
    // A [[serial]] port a downlink writes through stays as it is until that restart too: the
    // downlink holds the running source, and a replaced one would leave its commands waiting.
    const downlinkPorts = new Set(prev.downlink.flatMap((d) => d.route.flatMap((r) => (r.serial === undefined ? [] : [r.serial]))));
    const serial = next.serial.filter((c) => !downlinkPorts.has(c.name));
    for (const name of downlinkPorts) {
      const was = prev.serial.find((c) => c.name === name);
      if (!was) continue;
      serial.push(was);
      if (!sameConfig(was, next.serial.find((c) => c.name === name))) needRestart.push(`serial.${name} (a [[downlink]] writes through it)`);
    }
    const effective: Config = { ...next, serial, downlink: prev.downlink, time: prev.time, journal: { ...prev.journal, ...bounds(next.journal) }, gateway: { ...next.gateway, id: prev.gateway.id, stallAfterS: prev.gateway.stallAfterS } };
    if (boundsChanged) {
      this.journal.setBounds(bounds(next.journal));
      changed.push('journal bounds');
    }

    if (prev.log.level !== next.log.level) {
      if (this.deps.logLevelOverride) needRestart.push('log.level (--log-level given on the command line wins)');
      else {
        this.deps.setLogLevel?.(next.log.level);
        changed.push('log.level');
      }
    }
    if (prev.log.format !== next.log.format) needRestart.push('log.format');

    const prevMqtt = new Map(prev.mqtt.map((m) => [m.name, m]));
    const nextMqtt = new Map(next.mqtt.map((m) => [m.name, m]));
    const prevSink = new Map(prev.sink.map((s) => [s.name, s]));
    const nextSink = new Map(next.sink.map((s) => [s.name, s]));
    const replaceSource = (name: string): boolean => !sameConfig(prevMqtt.get(name), nextMqtt.get(name));
    const replaceSink = (name: string): boolean => !sameConfig(prevSink.get(name), nextSink.get(name));
    const prevSerial = new Map(prev.serial.map((p) => [p.name, p]));
    // effective, not next: a port a downlink writes through keeps its running config (above).
    const nextSerial = new Map(effective.serial.map((p) => [p.name, p]));
    const prevModbus = new Map(prev.modbus.map((b) => [b.name, b]));
    const nextModbus = new Map(next.modbus.map((b) => [b.name, b]));
    const healthChanged = !sameConfig(prev.health, next.health);
    const httpChanged = !sameConfig(prev.http, next.http);

    // Stop, in the usual stop order, what goes away or changes.
    if (this.http && httpChanged) await this.stopOne(this.http);
    if (this.health && healthChanged) await this.stopOne(this.health);
    const keptSources: MqttSource[] = [];
    for (const s of this.sources) {
      const name = s.name.slice('mqtt:'.length);
      if (replaceSource(name)) {
        await this.stopOne(s);
        changed.push(s.name);
      } else keptSources.push(s);
    }
    const keptModbus: ModbusSource[] = [];
    for (const s of this.modbusSources) {
      const name = s.name.slice('modbus:'.length);
      if (!sameConfig(prevModbus.get(name), nextModbus.get(name))) {
        await this.stopOne(s);
        changed.push(s.name);
      } else keptModbus.push(s);
    }
    const keptSerial: SerialSource[] = [];
    for (const s of this.serialSources) {
      const name = s.name.slice('serial:'.length);
      if (!sameConfig(prevSerial.get(name), nextSerial.get(name))) {
        await this.stopOne(s);
        changed.push(s.name);
      } else keptSerial.push(s);
    }
    const keptSinks: KafkaSink[] = [];
    for (const s of this.sinks) {
      const name = s.name.slice('sink:'.length);
      if (replaceSink(name)) {
        const cfg = prevSink.get(name)!;
        // Long enough for the batch in flight to be confirmed or to time out: the new sink must
        // not start while the old one may still move the cursor.
        await this.stopOne(s, cfg.connectionTimeoutMs + cfg.requestTimeoutMs + 6000);
        changed.push(s.name);
      } else keptSinks.push(s);
    }
    for (const name of nextSink.keys()) if (!prevSink.has(name)) changed.push(`sink:${name}`);
    for (const name of nextMqtt.keys()) if (!prevMqtt.has(name)) changed.push(`mqtt:${name}`);
    for (const name of nextSerial.keys()) if (!prevSerial.has(name)) changed.push(`serial:${name}`);
    for (const name of nextModbus.keys()) if (!prevModbus.has(name)) changed.push(`modbus:${name}`);

    this.config = effective;
    this.classify = classifierForConfig(effective);
    // Removed sinks lose their cursor; new ones get everything still journaled (the usual rule).
    this.journal.registerSinks(next.sink.map((s) => s.name));

    // Start, in the usual start order, what is new or changed.
    const keptSinkNames = new Set(keptSinks.map((s) => s.name));
    this.sinks = effective.sink.map((cfg) => keptSinks.find((s) => s.name === `sink:${cfg.name}`) ?? this.makeSink(cfg));
    for (const s of this.sinks) if (!keptSinkNames.has(s.name)) await this.startOne(s);
    const keptSourceNames = new Set(keptSources.map((s) => s.name));
    this.sources = effective.mqtt.map((cfg) => keptSources.find((s) => s.name === `mqtt:${cfg.name}`) ?? this.makeMqtt(cfg));
    for (const s of this.sources) if (!keptSourceNames.has(s.name)) await this.startOne(s);
    const keptSerialNames = new Set(keptSerial.map((s) => s.name));
    this.serialSources = effective.serial.map((cfg) => keptSerial.find((s) => s.name === `serial:${cfg.name}`) ?? this.makeSerial(cfg));
    for (const s of this.serialSources) if (!keptSerialNames.has(s.name)) await this.startOne(s);
    const keptModbusNames = new Set(keptModbus.map((s) => s.name));
    this.modbusSources = effective.modbus.map((cfg) => keptModbus.find((s) => s.name === `modbus:${cfg.name}`) ?? this.makeModbus(cfg));
    for (const s of this.modbusSources) if (!keptModbusNames.has(s.name)) await this.startOne(s);
    if (healthChanged) {
      changed.push('health');
      this.health = effective.health.enabled ? this.makeHealth(effective) : null;
      if (this.health) await this.startOne(this.health);
    }
    if (httpChanged) {
      changed.push('http');
      this.http = effective.http.enabled ? this.makeHttp(effective) : null;
      if (this.http) await this.startOne(this.http);
    }
    return { changed, needRestart };
  }

  /** Records the outcome of a reload attempt, for status. */
  noteReload(ok: boolean, errors: string[], changed: string[]): void {
    if (ok) this.reloads.count++;
    this.reloads.last = { time: this.clock.now(), ok, errors, changed };
  }

  /** Stops everything that started, in reverse order. Resolves true if it finished within the deadline. */
  stop(): Promise<boolean> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<boolean> {
    const deadline = Date.now() + this.config.gateway.shutdownTimeoutMs;
    const work = (async () => {
      // A reload in progress finishes first, so it cannot start a component after the stop.
      await Promise.race([this.reloadChain, sleep(Math.max(0, deadline - Date.now() - 1000))]);
      const order: (Component | null)[] = [this.stallMonitor, this.http, this.health, ...this.downlinks, ...this.modbusSources, ...this.serialSources, ...this.sources, ...this.sinks, this.journal, this.clockWatch];
      for (const c of order) {
        if (!c) continue;
        await this.stopOne(c, Math.max(100, deadline - Date.now() - 500));
      }
      // Anything left (a component replaced while the stop ran) goes too.
      for (const c of [...this.started].reverse()) await this.stopOne(c, 100);
      this.log.info({ counters: this.metrics.snapshot() }, 'final counters');
      return true;
    })();
    const ok = await Promise.race([work, sleep(Math.max(0, deadline - Date.now())).then(() => false)]);
    if (!ok) this.log.error('shutdown deadline passed; exiting anyway (the journal stays consistent)');
    return ok;
  }

  // --- OpsView: what the status and metrics endpoints read ---

  get gatewayId(): string {
    return this.config.gateway.id;
  }

  get version(): string {
    return this.deps.version ?? 'unknown';
  }

  get configPath(): string | null {
    return this.deps.configPath ?? null;
  }

  get journalOpen(): boolean {
    return this.started.has(this.journal);
  }

  get journalPath(): string {
    return this.config.journal.path;
  }

  get durability(): 'power' | 'crash' {
    return this.config.journal.durability;
  }

  get logLevel(): string {
    return this.deps.logger.level;
  }

  get degradedAfterMs(): number {
    return this.config.http.degradedAfterS * 1000;
  }

  sourceStates(): { name: string; state: string }[] {
    const out = [...this.sources, ...this.serialSources, ...this.modbusSources].map((s) => ({ name: s.name, state: this.started.has(s) ? s.connectionState : 'stopped' }));
    if (this.health) out.push({ name: this.health.name, state: this.started.has(this.health) ? 'running' : 'stopped' });
    return out;
  }

  downlinkStatus(): DownlinkStatus[] {
    return this.downlinks.map((d) => d.status());
  }

  sinkNames(): string[] {
    return this.config.sink.map((s) => s.name);
  }

  bytesWritten(): number | null {
    return this.writeCounter.written();
  }

  clockState(): ClockState {
    return this.clockWatch.state();
  }
}

/** Logs a reload's outcome: one line for what changed, one for what needs a restart. */
export function logReload(log: Logger, outcome: ReloadOutcome): void {
  log.info({ changed: outcome.changed }, outcome.changed.length ? 'config reloaded' : 'config reloaded; nothing changed');
  if (outcome.needRestart.length) log.warn({ keys: outcome.needRestart }, 'config reloaded, but these changes take effect only after a restart');
}

