import { Kafka, type Consumer, type EachBatchPayload } from '../sinks/kafkajs.js';
import type { Logger } from 'pino';
import type { SinkConfig } from '../config/load.js';
import { kafkajsConfig } from '../sinks/kafkajs-config.js';
import { Backoff } from '../util/backoff.js';
import type { Clock } from '../util/clock.js';
import { sleep } from '../util/sleep.js';

/** One command record as read from Kafka. */
export interface CommandRecord {
  value: Buffer | null;
  /** "<topic>/<partition>/<offset>" */
  origin: string;
  /** The record's timestamp, ms since the epoch (null if Kafka gave none). */
  timestamp: number | null;
}

export interface ConsumerOptions {
  sink: SinkConfig;
  topic: string;
  groupId: string;
  clientId: string;
  select: 'key' | 'header' | 'all';
  selectHeader: string;
  gatewayId: string;
  sessionTimeoutMs: number;
  retryMinMs: number;
  retryMaxMs: number;
}

export interface ConsumerDeps {
  logger: Logger;
  clock: Clock;
  /**
   * Takes this gateway's command records of one fetched batch and journals them, synchronously:
   * when it returns, they are durable, and only then is the batch's offset committed.
   */
  take(records: CommandRecord[]): void;
  /**
   * False while the journal takes no records (a bound or a full disk): commands then wait in Kafka,
   * offset uncommitted, so their rows do not take the room the drain needs to end the pause.
   */
  accepting(): boolean;
}

/**
 * Reads the command topic with a kafkajs consumer (the Kafka connection settings of a sink), with
 * auto-commit off: each fetched batch is journaled first, its offset committed after. A crash in
 * between reads the batch again, and the journal drops the ids it has (INSERT OR IGNORE). Kafka
 * being away only delays: the consumer reconnects with backoff and resumes at the committed offset.
 */
export class CommandConsumer {
  private consumer: Consumer | null = null;
  private stopping = false;
  private loop: Promise<void> | null = null;
  private readonly backoff: Backoff;
  state: 'idle' | 'connecting' | 'consuming' | 'waiting' = 'idle';
  lastError: string | null = null;

  constructor(
    private readonly opts: ConsumerOptions,
    private readonly deps: ConsumerDeps,
  ) {
    this.backoff = new Backoff({ initialMs: opts.retryMinMs, maxMs: opts.retryMaxMs });
  }

  start(): void {
    this.stopping = false;
    this.loop ??= this.run();
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      try {
        await this.connectAndConsume();
        return;
      } catch (err) {
        this.lastError = (err as Error).message;
        this.state = 'waiting';
        this.deps.logger.warn({ err: this.lastError }, 'downlink: Kafka command consumer not running; retrying');
        await this.disconnect();
        await sleep(this.backoff.next());
      }
    }
  }

  private async connectAndConsume(): Promise<void> {
    const o = this.opts;
    this.state = 'connecting';
    const kafka = new Kafka(kafkajsConfig(o.sink, o.clientId, this.deps.logger, this.deps.clock));
    // A rebalance timeout near the session's. A gateway killed while its JoinGroup or SyncGroup
    // was pending is still "awaiting" to the coordinator. Its session does not expire, and the
    // coordinator waits for it up to the rebalance timeout: kafkajs's default 60 s, in which the
    // restarted gateway read nothing. A live member learns of a rebalance within one fetch wait
    // (kafkajs's 5 s) and handles a batch in far less, so session + 5 s lets it always rejoin.
    const consumer = kafka.consumer({ groupId: o.groupId, sessionTimeout: o.sessionTimeoutMs, rebalanceTimeout: o.sessionTimeoutMs + 5000, maxWaitTimeInMs: 5000, heartbeatInterval: Math.max(500, Math.floor(o.sessionTimeoutMs / 5)), retry: { retries: 5, initialRetryTime: o.retryMinMs, maxRetryTime: o.retryMaxMs } });
    this.consumer = consumer;
    consumer.on(consumer.events.CRASH, (e) => {
      const payload = e.payload as { error: Error; restart: boolean };
      this.lastError = payload.error.message;
      if (payload.restart) return; // kafkajs restarts itself
      this.deps.logger.warn({ err: payload.error.message }, 'downlink: command consumer crashed; reconnecting');
      if (this.consumer === consumer && !this.stopping) {
        this.consumer = null;
        void consumer.disconnect().catch(() => undefined);
        this.loop = this.run();
      }
    });
    consumer.on(consumer.events.GROUP_JOIN, () => {
      this.state = 'consuming';
      this.lastError = null;
      this.backoff.reset();
      this.deps.logger.info({ topic: o.topic, groupId: o.groupId }, 'downlink: consuming commands');
    });
    // stop() may come while connecting: this consumer must not go on to run after it.
    const stoppedMeanwhile = async (): Promise<boolean> => {
      if (!this.stopping) return false;
      await Promise.race([consumer.disconnect().catch(() => undefined), sleep(5000)]);
      return true;
    };
    await consumer.connect();
    if (await stoppedMeanwhile()) return;
    await consumer.subscribe({ topic: o.topic, fromBeginning: true });
    if (await stoppedMeanwhile()) return;
    await consumer.run({ autoCommit: false, eachBatchAutoResolve: false, eachBatch: (b) => this.onBatch(b) });
  }

  private mine(m: EachBatchPayload['batch']['messages'][number]): boolean {
    const o = this.opts;
    if (o.select === 'all') return true;
    if (o.select === 'key') return m.key?.toString('utf8') === o.gatewayId;
    const h = m.headers?.[o.selectHeader];
    const v = Array.isArray(h) ? h[0] : h;
    return v !== undefined && v.toString() === o.gatewayId;
  }

  private async onBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    if (!isRunning() || isStale() || batch.messages.length === 0) return;
    const records: CommandRecord[] = [];
    for (const m of batch.messages) if (this.mine(m)) records.push({ value: m.value, origin: `${batch.topic}/${batch.partition}/${m.offset}`, timestamp: toMs(m.timestamp) });
    if (records.length && !this.deps.accepting()) {
      this.deps.logger.warn({ topic: batch.topic, partition: batch.partition }, 'downlink: the journal is full; commands wait in Kafka (offset not committed) until it takes records again');
      while (!this.deps.accepting()) {
        if (!isRunning() || isStale() || this.stopping) return;
        await heartbeat();
        await sleep(1000);
      }
      this.deps.logger.info('downlink: the journal takes records again; taking commands');
    }
    if (!isRunning() || isStale() || this.stopping) return;
    // Durable before the offset moves.
    if (records.length) this.deps.take(records);
    const last = batch.messages[batch.messages.length - 1]!.offset;
    resolveOffset(last);
    await this.consumer!.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: (BigInt(last) + 1n).toString() }]);
    await heartbeat();
  }

  private async disconnect(): Promise<void> {
    const c = this.consumer;
    this.consumer = null;
    if (c) await Promise.race([c.disconnect().catch(() => undefined), sleep(5000)]);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.disconnect();
    this.state = 'idle';
  }
}

/** kafkajs gives the timestamp as a string of ms ("-1" when the record has none). */
function toMs(t: string | undefined): number | null {
  const n = t === undefined ? NaN : Number(t);
  return Number.isFinite(n) && n > 0 ? n : null;
}
