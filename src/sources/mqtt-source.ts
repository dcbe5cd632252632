import mqtt, { Store, type IClientOptions, type IPublishPacket, type MqttClient } from './mqtt.js';
import type { Logger } from 'pino';
import type { Component } from '../component.js';
import type { MqttConfig } from '../config/load.js';
import { SluiceError } from '../errors.js';
import type { ReportGap } from '../journal/gaps.js';
import type { Journal } from '../journal/journal.js';
import type { Metrics } from '../metrics.js';
import { Backoff } from '../util/backoff.js';
import type { Clock } from '../util/clock.js';
import { OnceLogger } from '../util/once-logger.js';
import { AckGate } from './ack-gate.js';
import { IntakeHold } from './intake-hold.js';
import { Qos2Store } from './qos2-store.js';
import { RedeliveryFilter } from './redelivery-filter.js';
import { brokerConnectOptions } from './mqtt-connect-options.js';
import { DropCoalescer } from './drop-coalescer.js';
import { SubscriptionSet } from './subscription-set.js';

export type MqttClientFactory = (url: string, options: IClientOptions) => MqttClient;

export interface MqttSourceDeps {
  journal: Journal;
  logger: Logger;
  clock: Clock;
  metrics: Metrics;
  gatewayId: string;
  /** Default: MQTT.js's `connect`. */
  createClient?: MqttClientFactory;
  /** Where losses are reported (only QoS 0 messages can be lost here). */
  reportGap?: ReportGap;
}

function payloadOf(packet: IPublishPacket): Buffer {
  return typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
}

/** Why MQTT.js could not encode a CONNECT with these options (it throws from deep inside its writer), or null. */
export function connectProblem(options: Pick<IClientOptions, 'clientId' | 'username' | 'password'>): string | null {
  for (const [field, value] of [['client_id', options.clientId], ['username', options.username], ['password', options.password]] as const) {
    if (value === undefined) continue;
    const bytes = Buffer.byteLength(value, 'utf8');
    if (bytes > 65535) return `${field} is ${bytes} bytes; MQTT allows at most 65535`;
  }
  return null;
}

function isJournalFull(err: unknown): boolean {
  return err instanceof SluiceError && err.code === 'SLUICE_JOURNAL_FULL';
}

/**
 * Subscribes to a local MQTT broker with a persistent session and journals every message,
 * acknowledging it to the broker only once the journal commit that holds it is durable.
 */
export class MqttSource implements Component {
  readonly name: string;
  private client: MqttClient | null = null;
  private gate: AckGate | null = null;
  /** Pauses MQTT.js's parsing while a full group commit is due (bounds the records in memory). */
  private readonly hold: IntakeHold;
  /** Messages journaled whose ack may not have reached the broker: their redeliveries are not journaled again. */
  private readonly redelivery = new RedeliveryFilter();
  private readonly redelivered: { inc: (by?: number) => void };
  private unsubscribeCommit: (() => void) | null = null;
  /** What the broker's session holds for sluice, kept in the journal (see subscription-set.ts). */
  private subs: SubscriptionSet | null = null;
  /** Bumped per connection: a SUBACK arriving for an earlier connection is ignored. */
  private connection = 0;
  private reconnectTimer: NodeJS.Timeout | null = null;
  /** Set while the journal is full and this source holds off: disconnected, the broker keeps the messages. */
  private pausedSince: number | null = null;
  private resumeTimer: NodeJS.Timeout | null = null;
  private stopping = false;
  private state: 'idle' | 'connecting' | 'connected' | 'waiting' = 'idle';
  private lastError: string | null = null;
  private readonly backoff: Backoff;
  private readonly log: Logger;
  private readonly once: OnceLogger;
  private readonly sourceName: string;
  private readonly received: { inc: (by?: number) => void };
  /** Oversized payloads are acknowledged and not journaled: gap records say how many, per second. */
  private readonly drops: DropCoalescer;
  private options: IClientOptions | null = null;

  constructor(
    private readonly cfg: MqttConfig,
    private readonly deps: MqttSourceDeps,
  ) {
    this.name = `mqtt:${cfg.name}`;
    this.sourceName = `mqtt:${cfg.name}`;
    this.log = deps.logger.child({ component: this.name });
    this.once = new OnceLogger(this.log);
    this.backoff = new Backoff({ initialMs: cfg.reconnectMinMs, maxMs: cfg.reconnectMaxMs });
    this.received = deps.metrics.counter('sluice_source_received_total', { source: this.sourceName });
    this.redelivered = deps.metrics.counter('sluice_source_redeliveries_skipped_total', { source: this.sourceName });
    this.drops = new DropCoalescer(this.sourceName, deps.reportGap ?? (() => undefined));
    this.hold = new IntakeHold(() => deps.journal.commitDue === true);
  }

  get connected(): boolean {
    return this.state === 'connected';
  }

  /** Whether the source disconnected because the journal is full (it reconnects when room returns). */
  get paused(): boolean {
    return this.pausedSince !== null;
  }

  /** Acknowledgements held for records not yet committed: messages the broker has in flight for us. */
  get heldAcks(): number {
    return this.gate?.heldCount ?? 0;
  }

  /** Filter → QoS the broker's session holds for this source as far as sluice knows (-1: SUBACK pending); null when unknown. */
  get subscriptions(): Record<string, number> | null {
    return this.subs?.entries ?? null;
  }

  /** Connection state, for `sluice status`: idle, connecting, connected or waiting (broker unreachable, retrying). */
  get connectionState(): string {
    return this.state;
  }

  async start(): Promise<void> {
    if (this.client) return;
    this.stopping = false;
    const cfg = this.cfg;
    const qos2 = new Qos2Store((packet, redelivery) => this.onQos2Publish(packet, redelivery), (next) => this.hold.pass(next));
    const options: IClientOptions = {
      ...brokerConnectOptions(cfg),
      clientId: cfg.clientId ?? `sluice-${this.deps.gatewayId}-${cfg.name}`,
      // Reconnects are ours, with backoff and jitter.
      reconnectPeriod: 0,
      // Subscriptions are ours: reconciled with the config on every connect (reconcile()).
      manualConnect: true,
      incomingStore: qos2 as unknown as IClientOptions['incomingStore'],
      properties: cfg.protocolVersion === 5 ? { sessionExpiryInterval: cfg.sessionExpiryS, receiveMaximum: cfg.receiveMaximum } : undefined,
    };
    // What the last run journaled without its ack surely reaching the broker, committed with its records.
    const carried = this.deps.journal.setCommitSidecar?.(`redelivery:${this.sourceName}`, this.redelivery.sidecar) ?? null;
    this.redelivery.load(carried);
    this.subs = new SubscriptionSet(cfg.url, options.clientId!);
    this.subs.load(this.deps.journal.setCommitSidecar?.(`subscriptions:${this.sourceName}`, this.subs.sidecar) ?? null);
    this.options = options;
    const client = (this.deps.createClient ?? mqtt.connect)(cfg.url, options);
    this.client = client;
    this.gate = new AckGate(
      client,
      () => this.deps.journal.committedSeq,
      (id, pingsBefore) => this.redelivery.acked(id, pingsBefore),
      (pingsAnswered) => this.redelivery.confirmed(pingsAnswered),
    );
    this.unsubscribeCommit = this.deps.journal.onCommit(() => {
      this.hold.committed();
      this.gate?.release();
    });
    client.handleMessage = (packet, cb) => this.onMessage(packet, cb);
    client.on('connect', (connack) => this.onConnect(connack.sessionPresent));
    client.on('close', () => this.onClose());
    client.on('error', (err) => this.onError(err));
    this.state = 'connecting';
    this.log.info({ url: cfg.url, clientId: clipped(options.clientId!) }, 'connecting to MQTT broker');
    this.connectGuarded(() => client.connect());
  }

  /**
   * Calls into MQTT.js to connect. A CONNECT it cannot encode (a client id, username or password
   * over 65,535 bytes) would throw from inside its packet writer with half a packet on the socket:
   * such a connect is not tried, and anything else it throws is caught; either way the error is
   * logged once with its reason, counted, and retried with backoff like an unreachable broker.
   */
  private connectGuarded(connect: () => void): void {
    const problem = connectProblem(this.options ?? {});
    if (problem === null) {
      try {
        connect();
        return;
      } catch (err) {
        this.lastError = `MQTT.js could not send CONNECT: ${errorText(err)}`;
        this.clientError('connect_failed', this.lastError);
        if (this.client) endQuietly(this.client, true);
      }
    } else {
      this.lastError = problem;
      this.clientError('connect_invalid', problem);
    }
    this.state = 'waiting';
    this.scheduleReconnect();
  }

  /** An error in what sluice asked of the MQTT client: counted by reason, logged once per reason. */
  private clientError(reason: string, message: string, fields: Record<string, unknown> = {}): void {
    this.deps.metrics.inc('sluice_mqtt_client_errors_total', { source: this.sourceName, reason });
    this.once.warn(`client:${reason}:${message}`, { url: this.cfg.url, reason, err: message, ...fields }, 'MQTT request failed; retrying with backoff');
  }

  private onConnect(sessionPresent: boolean): void {
    this.redelivery.connected(sessionPresent);
    this.state = 'connected';
    this.connection++;
    this.log.info({ url: this.cfg.url, sessionPresent }, 'connected to MQTT broker');
    this.reconcile(sessionPresent, this.connection);
  }

  /**
   * Makes the session's subscriptions what the config says: unsubscribes filters the config no
   * longer has, subscribes new ones and ones whose QoS changed (on a connect without a session:
   * all). MQTT 5 subscribes with retain handling 1 (retained messages only for a subscription
   * that did not exist), so a QoS change does not journal retained messages again; MQTT 3.1.1 has
   * no such option and the broker re-sends them for that filter. A failure closes the connection
   * and the next connect tries again, with backoff (reset only once subscriptions are in place).
   */
  private reconcile(sessionPresent: boolean, connection: number): void {
    const subs = this.subs!;
    const client = this.client!;
    const plan = subs.plan(this.cfg.subscribe, sessionPresent);
    for (const bad of plan.invalid) this.clientError('subscribe_invalid_filter', bad.reason, { topic: clipped(bad.topic) });
    if (plan.unknownHeld) {
      this.once.warn('subscriptions-unknown', { url: this.cfg.url }, 'the broker kept a session whose subscriptions sluice has no record of (a new journal?): subscribing the config\'s filters; a filter dropped from the config before now stays subscribed until the session ends');
    }
    const current = (): boolean => this.client === client && this.connection === connection && this.state === 'connected';
    const fail = (reason: string, err: unknown): void => {
      if (!current()) return; // the connection went first; its close is handled (and logged) by onClose
      this.clientError(reason, errorText(err));
      client.end(true, () => this.onClose());
    };
    const done = (): void => {
      if (!current()) return;
      this.backoff.reset();
      this.persistSubscriptions();
    };
    const subscribe = (): void => {
      if (plan.subscribe.length === 0) {
        if (plan.unsubscribe.length === 0) this.log.info({ topics: subs.topics }, 'subscriptions held by the session match the config');
        return done();
      }
      subs.subscribing(plan.subscribe.map((s) => s.topic));
      this.persistSubscriptions();
      const v5 = this.cfg.protocolVersion === 5;
      const request = Object.fromEntries(plan.subscribe.map((s) => [s.topic, v5 ? { qos: s.qos, rh: 1 } : { qos: s.qos }]));
      try {
        client.subscribe(request, (err, granted) => {
          if (err) return fail('subscribe_failed', err);
          if (!current()) return;
          const results = plan.subscribe.map((s) => {
            const g = (granted ?? []).find((x) => x.topic === s.topic);
            return { topic: s.topic, qos: s.qos, granted: g !== undefined && g.qos < 128 };
          });
          subs.subscribed(results);
          const refused = results.filter((r) => !r.granted);
          for (const r of refused) this.clientError('subscribe_refused', 'the broker refused the subscription (not authorized, or a filter it does not support)', { topic: clipped(r.topic) });
          this.log.info({ topics: (granted ?? []).filter((g) => g.qos < 128).map((g) => `${clipped(g.topic)} (qos ${g.qos})`) }, 'subscribed');
          done();
        });
      } catch (err) {
        fail('subscribe_failed', err);
      }
    };
    if (plan.unsubscribe.length === 0) return subscribe();
    try {
      client.unsubscribe(plan.unsubscribe, (err) => {
        if (err) return fail('unsubscribe_failed', err);
        if (!current()) return;
        subs.unsubscribed(plan.unsubscribe);
        this.persistSubscriptions();
        this.log.info({ topics: plan.unsubscribe.map(clipped) }, 'unsubscribed filters the config no longer has');
        subscribe();
      });
    } catch (err) {
      fail('unsubscribe_failed', err);
    }
  }

  /** Writes the subscription record now: it changes without records to commit it with. */
  private persistSubscriptions(): void {
    try {
      this.deps.journal.commitSidecars?.();
    } catch (err) {
      // Written with the next commit instead; until then a restart may re-send a SUBSCRIBE or miss an UNSUBSCRIBE.
      this.once.warn('subscriptions-not-saved', { err: errorText(err) }, 'could not record the subscriptions in the journal yet');
    }
  }

  private onClose(): void {
    // The held parser goes on first: QoS 1/2 it parsed is not taken now (the broker redelivers it).
    this.hold.open();
    const dropped = this.gate?.connectionLost() ?? 0;
    if (this.stopping) return;
    if (this.pausedSince !== null) {
      this.state = 'waiting';
      return; // the resume timer reconnects
    }
    if (this.state === 'connected') {
      this.log.warn({ url: this.cfg.url, unackedRedelivered: dropped }, 'lost connection to MQTT broker; reconnecting');
    } else if (this.state === 'connecting') {
      this.log.warn({ url: this.cfg.url, err: this.lastError }, 'MQTT broker not reachable; waiting for it (records already journaled are still shipped)');
    }
    this.state = 'waiting';
    this.scheduleReconnect();
  }

  private onError(err: Error): void {
    // MQTT.js emits errors for every failed attempt; the state change is logged by onClose.
    const code = (err as { code?: unknown }).code;
    this.lastError = err.message;
    // A numeric code is the broker's CONNACK refusal (bad credentials, not authorized…): say so once.
    if (typeof code === 'number' && this.state !== 'waiting') this.log.error({ url: this.cfg.url, reasonCode: code, err: err.message }, 'MQTT broker refused the connection');
    else this.log.debug({ err: err.message, code }, 'mqtt client error');
    this.deps.metrics.inc('sluice_source_errors_total', { source: this.sourceName });
  }

  private scheduleReconnect(): void {
    if (this.reconnectTimer || this.stopping) return;
    const delay = this.backoff.next();
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (this.stopping || !this.client) return;
      this.state = this.state === 'waiting' ? 'waiting' : 'connecting';
      // reconnect() without stores swaps in MQTT.js's memory stores, and QoS 2 would bypass the journal.
      // The outgoing store is new: end() closed the old one (sluice publishes nothing it must keep).
      const client = this.client;
      this.connectGuarded(() => client.reconnect({ incomingStore: client.incomingStore, outgoingStore: new Store() }));
    }, delay);
  }

  /** QoS 0/1 messages arrive here; QoS 2 ones were journaled at PUBLISH by the store. */
  private onMessage(packet: IPublishPacket, cb: (err?: Error) => void): void {
    if (this.stopping) return; // not acknowledged: the broker keeps it for the next run
    if (packet.qos === 2) return cb();
    if (this.pausedSince !== null) {
      // Taken off the wire before the disconnect went through: no ack, the broker redelivers it.
      if (packet.qos === 1) this.gate!.expect(packet.messageId!, Number.POSITIVE_INFINITY);
      return cb();
    }
    // QoS 1 parsed before its connection closed (MQTT.js's parser goes on with what it had read):
    // not journaled, not acknowledged; the broker redelivers it on the next connection. QoS 0 is
    // journaled as usual: nothing would ever bring it again.
    if (packet.qos === 1 && !this.client?.connected) return cb();
    const before = this.deps.journal.lastAssignedSeq;
    const original = packet.qos === 1 ? this.redelivery.match(packet.messageId!, packet.dup, packet.topic, payloadOf(packet)) : null;
    if (original !== null) {
      // Journaled already; the PUBACK was lost with the connection or the process.
      this.redelivered.inc();
      this.gate!.expect(packet.messageId!, original);
      return cb();
    }
    let seq: number;
    try {
      seq = this.take(packet);
    } catch (err) {
      if (!isJournalFull(err)) throw err;
      if (packet.qos === 0) this.dropQos0(packet);
      else this.gate!.expect(packet.messageId!, Number.POSITIVE_INFINITY);
      cb();
      this.pauseForJournal();
      return;
    }
    if (packet.qos === 1) {
      if (seq > before) this.redelivery.journaled(packet.messageId!, packet.topic, payloadOf(packet), seq);
      this.gate!.expect(packet.messageId!, seq);
    }
    this.hold.pass(cb);
  }

  /** QoS 0 cannot be redelivered: a message the full journal cannot take is lost, and says so. */
  private dropQos0(packet: IPublishPacket): void {
    const now = this.deps.clock.now();
    this.deps.reportGap?.({ reason: 'journal_full_qos0', source: this.sourceName, firstTime: now, lastTime: now, count: 1, bytes: packet.payload.length, detail: `QoS 0 message on ${packet.topic} arrived while the journal was full; QoS 0 cannot be held back (subscribe with QoS 1 or 2)` });
  }

  /**
   * The journal is full and this source's policy is to wait, not drop: disconnect, so the broker
   * keeps every message not yet acknowledged in the persistent session, and come back when the
   * journal has room. Acks for what was journaled are sent first, so nothing is journaled twice.
   */
  private pauseForJournal(): void {
    if (this.pausedSince !== null || this.stopping) return;
    this.pausedSince = this.deps.clock.now();
    this.deps.metrics.set('sluice_source_paused', { source: this.sourceName }, 1);
    this.log.warn({ reason: this.deps.journal.stats().full }, 'journal full: disconnecting from the MQTT broker, which keeps the messages in the session until the journal has room');
    try {
      this.deps.journal.flush();
    } catch {
      // Disk full: those records stay pending in the journal; their acks are dropped with the connection and the broker redelivers.
    }
    this.gate?.release();
    const client = this.client;
    // A graceful end: the acks just released must reach the broker before the socket closes.
    if (client) setImmediate(() => client.end(false));
    this.resumeTimer = setInterval(() => {
      if (!this.deps.journal.accepting || this.stopping) return;
      clearInterval(this.resumeTimer!);
      this.resumeTimer = null;
      this.log.info({ pausedForMs: this.deps.clock.now() - this.pausedSince! }, 'journal has room again: reconnecting to the MQTT broker');
      this.pausedSince = null;
      this.deps.metrics.set('sluice_source_paused', { source: this.sourceName }, 0);
      this.backoff.reset();
      this.scheduleReconnect();
    }, 500);
  }

  private onQos2Publish(packet: IPublishPacket, redelivery: boolean): boolean {
    try {
      if (this.pausedSince !== null || !this.client?.connected) return false;
      // A redelivered PUBLISH was journaled already; its PUBREC waits only for what is pending.
      if (redelivery) {
        this.gate!.expect(packet.messageId!, this.deps.journal.lastAssignedSeq);
        return true;
      }
      // Journaled by the previous run (or connection), its PUBREC lost with it.
      const original = this.redelivery.match(packet.messageId!, packet.dup, packet.topic, payloadOf(packet));
      if (original !== null) {
        this.redelivered.inc();
        this.gate!.expect(packet.messageId!, original);
        return true;
      }
      const before = this.deps.journal.lastAssignedSeq;
      const seq = this.take(packet);
      if (seq > before) this.redelivery.journaled(packet.messageId!, packet.topic, payloadOf(packet), seq);
      this.gate!.expect(packet.messageId!, seq);
      return true;
    } catch (err) {
      if (isJournalFull(err)) {
        this.pauseForJournal();
        return false;
      }
      this.log.error({ err }, 'cannot take a QoS 2 message; reconnecting so the broker redelivers it');
      this.client?.end(true, () => this.onClose());
      return false;
    }
  }

  /**
   * Journals the message, or counts and drops it; returns the seq its acknowledgement must wait
   * for (a dropped message still waits for the ones before it, so acks leave in order).
   */
  private take(packet: IPublishPacket): number {
    const journal = this.deps.journal;
    const payload = payloadOf(packet);
    this.received.inc();
    if (payload.length > this.cfg.maxPayloadBytes) {
      this.deps.metrics.inc('sluice_source_rejected_total', { source: this.sourceName, reason: 'payload_too_large' });
      this.drops.add('payload_too_large', payload.length, this.deps.clock.now(), `payloads over max_payload_bytes (${this.cfg.maxPayloadBytes}) acknowledged and not journaled; first on ${packet.topic}`);
      this.once.warn(`too-large:${packet.topic}`, { topic: packet.topic, bytes: payload.length, limit: this.cfg.maxPayloadBytes, rejected: this.deps.metrics.get('sluice_source_rejected_total', { source: this.sourceName, reason: 'payload_too_large' }) }, 'payload over max_payload_bytes rejected');
      return journal.lastAssignedSeq;
    }
    const userProps = packet.properties?.userProperties;
    let headers: Record<string, string> | null = null;
    if (userProps) {
      headers = {};
      for (const [k, v] of Object.entries(userProps)) headers[k] = Array.isArray(v) ? v.join(',') : String(v);
    }
    return journal.append({ time: this.deps.clock.now(), source: this.sourceName, topic: packet.topic, key: null, payload, headers });
  }

  async stop(): Promise<void> {
    if (!this.client || this.stopping) return;
    this.stopping = true;
    this.hold.open(); // what comes next is not taken (stopping)
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    if (this.resumeTimer) clearInterval(this.resumeTimer);
    this.resumeTimer = null;
    // Commit what was taken (and the gap record of any payload rejected) and send its acks, so
    // the broker does not redeliver it next time.
    try {
      this.drops.flush();
      this.deps.journal.flush();
      this.gate?.release();
    } catch (err) {
      this.log.error({ err }, 'final journal commit failed; the broker will redeliver');
    }
    const client = this.client;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => endQuietly(client, true, resolve), 2000);
      endQuietly(client, false, () => {
        clearTimeout(timer);
        resolve();
      });
    });
    this.unsubscribeCommit?.();
    this.deps.journal.setCommitSidecar?.(`redelivery:${this.sourceName}`, null);
    this.persistSubscriptions();
    this.deps.journal.setCommitSidecar?.(`subscriptions:${this.sourceName}`, null);
    this.subs = null;
    this.client = null;
    this.gate = null;
    this.state = 'idle';
    this.log.info('MQTT source stopped');
  }
}

/** A value fit for a log line: an input may be 70,000 characters long. */
function clipped(value: string): string {
  return value.length > 200 ? `${value.slice(0, 200)}… (${value.length} characters)` : value;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** MQTT.js's end() throws for a client that never opened a stream (its CONNECT was never sent). */
function endQuietly(client: MqttClient, force: boolean, done: () => void = () => undefined): void {
  if (!client.stream) return done();
  try {
    client.end(force, () => done());
  } catch {
    done();
  }
}
