import mqtt, { UniqueMessageIdProvider, type IClientOptions, type MqttClient } from '../sources/mqtt.js';
import type { Logger } from 'pino';
import type { MqttConfig } from '../config/load.js';
import type { MqttClientFactory } from '../sources/mqtt-source.js';
import { brokerConnectOptions } from '../sources/mqtt-connect-options.js';
import type { CommandStore } from './command-store.js';
import { OutgoingStore } from './outgoing-store.js';

/** How a PUBLISH ended, as the publisher reports it. */
export type PublishOutcome = { kind: 'acked'; at: number } | { kind: 'refused'; reasonCode: number } | { kind: 'stale' } | { kind: 'unsent' };

export interface PublisherDeps {
  store: CommandStore;
  logger: Logger;
  now: () => number;
  createClient?: MqttClientFactory;
  /** Whether a stored PUBLISH of command `n` may still go out (its deadline not passed). */
  mayResend: (n: number) => boolean;
  /** A command's PUBLISH ended (also one sent by the last run). */
  onOutcome: (n: number, outcome: PublishOutcome) => void;
  /** Connected (ready to publish) or not. */
  onReady: () => void;
}

/**
 * The downlink's own MQTT client to the broker of an [[mqtt]] source: persistent session (clean =
 * false, MQTT 5 session expiry from the source), a stable client id "<source client id>-downlink",
 * its outgoing packets in the journal's file (OutgoingStore). It publishes only while connected,
 * so a PUBLISH is stored and written in one synchronous step.
 */
export class MqttPublisher {
  readonly clientId: string;
  private client: MqttClient | null = null;
  private ready = false;
  private current: number | null = null;
  /** Reason codes (>= 0x80) of acks seen for a packet id, read when MQTT.js removes the packet. */
  private readonly refusals = new Map<number, number>();
  private lastError: string | null = null;

  constructor(
    private readonly cfg: MqttConfig,
    gatewayId: string,
    downlink: string,
    private readonly deps: PublisherDeps,
  ) {
    this.clientId = `${cfg.clientId ?? `sluice-${gatewayId}-${cfg.name}`}-downlink${downlink === 'downlink' ? '' : `-${downlink}`}`;
  }

  get isReady(): boolean {
    return this.ready;
  }

  get state(): string {
    return this.ready ? 'connected' : this.client ? 'connecting' : 'stopped';
  }

  get error(): string | null {
    return this.lastError;
  }

  start(): void {
    if (this.client) return;
    const cfg = this.cfg;
    const store = new OutgoingStore(this.deps.store, this.clientId, {
      current: () => this.current,
      acked: (n, messageId) => {
        const rc = this.refusals.get(messageId);
        this.refusals.delete(messageId);
        this.deps.onOutcome(n, rc === undefined ? { kind: 'acked', at: this.deps.now() } : { kind: 'refused', reasonCode: rc });
      },
      mayResend: (n) => {
        const ok = this.deps.mayResend(n);
        if (!ok) this.deps.onOutcome(n, { kind: 'stale' });
        return ok;
      },
    });
    const options: IClientOptions = {
      ...brokerConnectOptions(cfg),
      clientId: this.clientId,
      reconnectPeriod: cfg.reconnectMinMs,
      outgoingStore: store as unknown as IClientOptions['outgoingStore'],
      // Packet ids of the last run come back from the store on connect; new ones must not collide with them.
      messageIdProvider: new UniqueMessageIdProvider(),
      properties: cfg.protocolVersion === 5 ? { sessionExpiryInterval: Math.max(1, cfg.sessionExpiryS) } : undefined,
    };
    const client = (this.deps.createClient ?? mqtt.connect)(cfg.url, options);
    this.client = client;
    client.on('packetreceive', (p) => {
      const rc = (p as { reasonCode?: number }).reasonCode;
      const id = (p as { messageId?: number }).messageId;
      if ((p.cmd === 'puback' || p.cmd === 'pubrec' || p.cmd === 'pubcomp') && id !== undefined && rc !== undefined && rc >= 0x80) this.refusals.set(id, rc);
    });
    // 'connect' comes after MQTT.js has sent again what the store held.
    client.on('connect', () => {
      if (!this.ready) this.deps.logger.info({ url: cfg.url, clientId: this.clientId }, 'downlink: connected to MQTT broker');
      this.ready = true;
      this.lastError = null;
      this.deps.onReady();
    });
    client.on('close', () => {
      if (this.ready) this.deps.logger.warn({ url: cfg.url }, 'downlink: MQTT broker connection lost; commands wait (reconnecting)');
      this.ready = false;
    });
    client.on('error', (err) => {
      this.lastError = err.message;
      this.deps.logger.debug({ err: err.message }, 'downlink: MQTT client error');
    });
  }

  /**
   * Publishes command `n`; false when not connected (the command waits). The outcome comes
   * through onOutcome, once the broker acknowledged (or refused) it.
   */
  publish(n: number, topic: string, payload: Buffer, qos: 1 | 2, retain: boolean): boolean {
    const client = this.client;
    if (!client || !this.ready || !client.connected) return false;
    this.current = n;
    let stored = false;
    try {
      client.publish(topic, payload, { qos, retain, cbStorePut: () => (stored = true) }, (err) => {
        // Acks are handled through the store (also for packets of the last run); only a PUBLISH that never got stored lands here.
        if (err && !stored) this.deps.onOutcome(n, { kind: 'unsent' });
      });
    } finally {
      this.current = null;
    }
    if (!stored) this.deps.logger.warn({ n }, 'downlink: MQTT.js did not store the PUBLISH at once; it is retried');
    return stored;
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = null;
    this.ready = false;
    if (!client) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 2000);
      client.end(true, {}, () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
