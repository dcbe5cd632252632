import type { Logger } from 'pino';
import type { Component } from '../component.js';
import type { Config, MqttConfig, SinkConfig } from '../config/load.js';
import type { CommitHook } from '../journal/commit-hook.js';
import type { Journal } from '../journal/journal.js';
import type { Metrics } from '../metrics.js';
import type { MqttClientFactory } from '../sources/mqtt-source.js';
import type { SerialBinding, SerialSource } from '../sources/serial/serial-source.js';
import type { Clock } from '../util/clock.js';
import type Database from 'better-sqlite3';
import { parseCommand } from './command.js';
import { CommandStore, type Arrival, type Outcome } from './command-store.js';
import { CommandConsumer, type CommandRecord } from './consumer.js';
import { Dispatcher } from './dispatcher.js';
import { MqttPublisher } from './mqtt-publisher.js';
import { ResultEmitter } from './results.js';
import { CommandRouter, type RouteDestination } from './router.js';
import { SerialWriter, type SerialSink } from './serial-writer.js';

export type DownlinkConfig = Config['downlink'][number];

/** The journal as the downlink needs it: its file for the command table, and its commit transaction. */
export interface DownlinkJournal extends Journal {
  readonly database: Database.Database;
  addCommitHook(hook: CommitHook): () => void;
}

export interface DownlinkDeps {
  journal: DownlinkJournal;
  logger: Logger;
  metrics: Metrics;
  clock: Clock;
  gatewayId: string;
  /** The sink whose Kafka connection settings the consumer uses. */
  sink: SinkConfig;
  /** [[mqtt]] sections by name (their broker settings). */
  mqtt: ReadonlyMap<string, MqttConfig>;
  /** Running [[serial]] sources by name (their open ports). */
  serial: ReadonlyMap<string, SerialSource>;
  createMqttClient?: MqttClientFactory;
  serialBinding?: SerialBinding;
}

/** What status shows of a downlink. */
export interface DownlinkStatus {
  name: string;
  consumer: string;
  consumer_error: string | null;
  destinations: { name: string; state: string }[];
  waiting: number;
  in_flight: number;
  oldest_waiting_age_s: number | null;
  received: number;
  delivered: number;
  expired: number;
  rejected: number;
  failed: number;
  duplicates: number;
}

const COUNTER = 'sluice_downlink_commands_total';

/**
 * Commands from Kafka to devices (README, "Downlink"): a consumer journals them (own table, same
 * SQLite file) before their offsets are committed; a dispatcher delivers them per target, in order,
 * through MQTT publishers (QoS 2 with packet ids on disk) or serial ports, never past their deadline;
 * every command ends with exactly one result record in the journal, shipped by the sinks.
 */
export class Downlink implements Component {
  readonly name: string;
  private store: CommandStore | null = null;
  private results: ResultEmitter | null = null;
  private dispatcher: Dispatcher | null = null;
  private consumer: CommandConsumer | null = null;
  private readonly publishers = new Map<string, MqttPublisher>();
  private readonly writers: SerialWriter[] = [];
  private readonly serialNames: { name: string; port: SerialSink }[] = [];
  private unhook: (() => void) | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly log: Logger;

  constructor(
    private readonly cfg: DownlinkConfig,
    private readonly deps: DownlinkDeps,
  ) {
    this.name = `downlink:${cfg.name}`;
    this.log = deps.logger.child({ component: this.name });
  }

  private count(outcome: string, by = 1): void {
    this.deps.metrics.inc(COUNTER, { downlink: this.cfg.name, outcome }, by);
  }

  async start(): Promise<void> {
    if (this.store) return;
    const { cfg, deps } = this;
    const store = new CommandStore(deps.journal.database, cfg.name);
    this.store = store;
    for (const o of ['received', 'delivered', 'expired', 'rejected', 'failed', 'duplicate']) this.count(o, 0);
    const results = new ResultEmitter(store, deps.journal, { source: this.name, topic: cfg.resultTopic.replaceAll('{name}', cfg.name), gatewayId: deps.gatewayId, downlink: cfg.name }, { logger: this.log, clock: deps.clock });
    this.results = results;
    this.unhook = deps.journal.addCommitHook(results);
    const routes: { target: string; dest: RouteDestination }[] = cfg.route.map((r) => ({ target: r.target, dest: this.destination(r) }));
    const dispatcher = new Dispatcher(store, new CommandRouter(routes), (n, o, reason, at) => this.finish(n, o, reason, at), { retries: cfg.retries, retryMinMs: cfg.retryMinMs, retryMaxMs: cfg.retryMaxMs }, { clock: deps.clock, logger: this.log });
    this.dispatcher = dispatcher;
    // A packet in flight on an MQTT client this configuration no longer has (its client_id or the
    // route changed) would never be sent again nor acknowledged: its target would wait for good.
    const clients = new Set([...this.publishers.values()].map((p) => p.clientId));
    for (const { n, client } of store.outgoingClients()) {
      if (!clients.has(client)) this.finish(n, 'failed', `delivery unknown: it was in flight on MQTT client "${client}", which the configuration no longer has (client_id or route changed); it may have reached the broker`);
    }
    // Results decided by the last run but not journaled go first.
    results.emitPending();
    dispatcher.start();
    for (const p of this.publishers.values()) p.start();
    const topic = cfg.topic.replaceAll('{gateway}', deps.gatewayId);
    this.consumer = new CommandConsumer(
      { sink: deps.sink, topic, groupId: cfg.groupId ?? `sluice-${deps.gatewayId}-downlink-${cfg.name}`, clientId: `sluice-${deps.gatewayId}-downlink-${cfg.name}`, select: cfg.select, selectHeader: cfg.selectHeader, gatewayId: deps.gatewayId, sessionTimeoutMs: cfg.sessionTimeoutMs, retryMinMs: cfg.retryMinMs, retryMaxMs: cfg.retryMaxMs },
      { logger: this.log, clock: deps.clock, take: (records) => this.take(records), accepting: () => deps.journal.accepting },
    );
    this.consumer.start();
    this.prune();
    this.timer = setInterval(() => {
      this.updateGauges();
      if (Math.floor(deps.clock.now() / 1000) % 60 === 0) this.prune();
    }, 1000);
    this.updateGauges();
    this.log.info({ topic, select: cfg.select, routes: cfg.route.length, waiting: store.waitingCount(), inFlight: dispatcher.inFlightCount }, 'downlink started');
  }

  private destination(r: DownlinkConfig['route'][number]): RouteDestination {
    if (r.mqtt !== undefined) {
      let p = this.publishers.get(r.mqtt);
      if (!p) {
        const mcfg = this.deps.mqtt.get(r.mqtt)!;
        p = new MqttPublisher(mcfg, this.deps.gatewayId, this.cfg.name, {
          store: this.store!,
          logger: this.log,
          now: () => this.deps.clock.now(),
          createClient: this.deps.createMqttClient,
          mayResend: (n) => this.dispatcher!.mayResend(n),
          onOutcome: (n, o) => this.dispatcher!.onPublish(n, o),
          onReady: () => this.dispatcher?.kick(),
        });
        this.publishers.set(r.mqtt, p);
      }
      return { kind: 'mqtt', publisher: p, topic: r.topic!, qos: r.qos, retain: r.retain };
    }
    if (r.serial !== undefined) {
      const source = this.deps.serial.get(r.serial)!;
      this.serialNames.push({ name: `serial:${r.serial}`, port: source });
      return { kind: 'serial', port: source, name: r.serial, lineEnding: r.lineEnding };
    }
    const w = new SerialWriter(r.serialPath!, r.baudRate, this.deps.serialBinding);
    this.writers.push(w);
    this.serialNames.push({ name: r.serialPath!, port: w });
    return { kind: 'serial', port: w, name: r.serialPath!, lineEnding: r.lineEnding };
  }

  /** A fetched batch of this gateway's command records: parsed and journaled before Kafka's offset moves. */
  private take(records: CommandRecord[]): void {
    const store = this.store!;
    const now = this.deps.clock.now();
    const arrivals: Arrival[] = records.map((r) => {
      const p = parseCommand(r.value, { now, produced: r.timestamp, defaultTtlS: this.cfg.defaultTtlS, maxPayloadBytes: this.cfg.maxPayloadBytes });
      if (p.ok) return { command: p.command, origin: r.origin };
      // A command without a usable id is known by where it was read (so a redelivery is still one command).
      return { rejected: { id: p.id ?? `kafka:${r.origin}`, target: p.target, reason: `${p.reason}: ${p.detail}` }, origin: r.origin };
    });
    let waiting = store.waitingCount();
    const overflowed: number[] = [];
    const r = store.insert(arrivals, now, (a) => {
      if (!('command' in a) || store.has(a.command.id)) return a;
      if (waiting < this.cfg.maxWaiting) {
        waiting++;
        return a;
      }
      if (this.cfg.overflow === 'drop_oldest') {
        const oldest = store.oldestDroppable(this.dispatcher!.inFlightRows);
        if (oldest !== null && store.finish(oldest, 'rejected', `overflow: max_waiting (${this.cfg.maxWaiting}) reached; dropped for a newer command`, now)) {
          overflowed.push(oldest);
          return a;
        }
      }
      // reject_new (or nothing droppable): the new command is turned down.
      return { rejected: { id: a.command.id, target: a.command.target, reason: `overflow: max_waiting (${this.cfg.maxWaiting}) commands are waiting` }, origin: a.origin };
    });
    for (const a of arrivals) if ('rejected' in a) this.log.info({ id: a.rejected.id, origin: a.origin, reason: a.rejected.reason }, 'downlink: command rejected');
    this.count('received', r.added + r.rejected);
    this.count('rejected', r.rejected + overflowed.length);
    this.count('duplicate', r.duplicates);
    if (r.duplicates) this.log.info({ duplicates: r.duplicates }, 'downlink: commands with ids already known were ignored (a Kafka redelivery, or produced twice)');
    if (r.rejected || overflowed.length) this.results!.emitPending();
    this.dispatcher!.kick();
    this.updateGauges();
  }

  private finish(n: number, outcome: Outcome, reason: string | null, at?: number): void {
    const store = this.store;
    if (!store) return;
    const c = store.get(n);
    if (!store.finish(n, outcome, reason, at ?? this.deps.clock.now())) return;
    this.count(outcome);
    if (outcome !== 'delivered') this.log.info({ id: c?.id, target: c?.target, outcome, reason }, `downlink: command ${outcome}`);
    this.results!.emitPending();
  }

  private prune(): void {
    try {
      const removed = this.store?.prune(this.deps.clock.now() - this.cfg.keepDoneS * 1000, this.cfg.keepDoneMax) ?? 0;
      if (removed) this.log.debug({ removed }, 'downlink: forgot finished command ids past keep_done_s / keep_done_max');
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'downlink: could not prune finished commands');
    }
  }

  private updateGauges(): void {
    const store = this.store;
    if (!store) return;
    const labels = { downlink: this.cfg.name };
    const oldest = store.oldestWaitingReceived();
    this.deps.metrics.set('sluice_downlink_waiting', labels, store.waitingCount());
    this.deps.metrics.set('sluice_downlink_in_flight', labels, this.dispatcher?.inFlightCount ?? 0);
    this.deps.metrics.set('sluice_downlink_oldest_waiting_seconds', labels, oldest === null ? 0 : Math.max(0, (this.deps.clock.now() - oldest) / 1000));
  }

  status(): DownlinkStatus {
    const m = (o: string): number => this.deps.metrics.get(COUNTER, { downlink: this.cfg.name, outcome: o });
    const store = this.store;
    const oldest = store?.oldestWaitingReceived() ?? null;
    return {
      name: this.cfg.name,
      consumer: this.consumer?.state ?? 'stopped',
      consumer_error: this.consumer?.lastError ?? null,
      destinations: [...[...this.publishers.entries()].map(([name, p]) => ({ name: `mqtt:${name}`, state: p.state })), ...this.serialNames.map((s) => ({ name: s.name, state: s.port.isOpen ? 'open' : 'closed' }))],
      waiting: store?.waitingCount() ?? 0,
      in_flight: this.dispatcher?.inFlightCount ?? 0,
      oldest_waiting_age_s: oldest === null ? null : Math.round((this.deps.clock.now() - oldest) / 1000),
      received: m('received'),
      delivered: m('delivered'),
      expired: m('expired'),
      rejected: m('rejected'),
      failed: m('failed'),
      duplicates: m('duplicate'),
    };
  }

  async stop(): Promise<void> {
    if (!this.store) return;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.consumer?.stop();
    this.dispatcher?.stop();
    await Promise.all([...this.publishers.values()].map((p) => p.stop()));
    await Promise.all(this.writers.map((w) => w.close()));
    this.results?.stop();
    // Result records appended now are committed while the hook still marks them.
    try {
      this.deps.journal.flush();
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'downlink: final commit failed; pending results are journaled at the next start');
    }
    this.unhook?.();
    this.unhook = null;
    this.store = null;
    this.log.info('downlink stopped');
  }
}
