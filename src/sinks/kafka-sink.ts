import type { Logger } from 'pino';
import type { Component } from '../component.js';
import type { SinkConfig } from '../config/load.js';
import { errorMessage, isRetriable, SluiceError } from '../errors.js';
import { GAP_TOPIC } from '../journal/gaps.js';
import type { Journal, JournalRecord } from '../journal/journal.js';
import type { Metrics } from '../metrics.js';
import { Backoff } from '../util/backoff.js';
import type { Clock } from '../util/clock.js';
import { OnceLogger } from '../util/once-logger.js';
import { sleep } from '../util/sleep.js';
import { createKafkajsClient, type KafkaClientFactory, type KafkaProducerClient, type OutgoingBatch } from './kafka-client.js';
import { DrainProgress } from './drain-progress.js';
import { RateLimiter, wireBytes } from './rate-limiter.js';
import { Router } from './router.js';
import type { ReportGap } from '../journal/gaps.js';
import { RejectHandler, neverAcceptedReason } from './dead-letter.js';
import { encodeValue } from './envelope.js';
import { restampPayload } from './restamp.js';
import { adoptCommittedCursor } from './exactly-once.js';
import { securityHint } from './kafka-security.js';
import { legacyHeaders, METADATA_HEADER, MetadataEncoder, type HeaderValue } from './record-metadata.js';
import { KeyBuffers } from './cached-partitioner.js';

export interface KafkaSinkDeps {
  journal: Journal;
  logger: Logger;
  metrics: Metrics;
  clock: Clock;
  gatewayId: string;
  /** Default: kafkajs. */
  createClient?: KafkaClientFactory;
  /** Where records Kafka refuses for good are reported when they are dropped (no dead-letter topic). */
  reportGap?: ReportGap;
}

/** Extra time past the request timeout before the sink gives up on a send kafkajs has not ended. */
const SEND_GRACE_MS = 5000;

/**
 * Ships journaled records to one Kafka cluster in batches, one batch in flight, and moves its
 * cursor only after the broker confirmed the batch. Failures keep every record and retry
 * forever with backoff; a client that failed is discarded and made anew.
 */
export class KafkaSink implements Component {
  readonly name: string;
  private client: KafkaProducerClient | null = null;
  private loop: Promise<void> | null = null;
  private abort = new AbortController();
  private failingSince: number | null = null;
  /** What kind of failure this outage last logged at warn: a new kind gets its own clear line. */
  private failureKind: string | null = null;
  private readonly router: Router;
  private readonly backoff: Backoff;
  private readonly log: Logger;
  private readonly once: OnceLogger;
  private wake: (() => void) | null = null;
  private unsubscribeCommit: (() => void) | null = null;
  private readonly limiter: RateLimiter | null;
  private readonly progress: DrainProgress;
  /** newest_first: the backlog is (cursor, backlogEnd]; fresh records after it went out through `head`. */
  private backlogEnd = 0;
  private head = 0;
  private readonly rejects: RejectHandler;
  /** Where a batch's confirmation goes (cursor, or newest_first's head); the dead-letter path uses it too. */
  private confirmRejected: (lastSeq: number) => void = (seq) => this.advance(seq);
  private readonly metadata: MetadataEncoder;
  private readonly keys = new KeyBuffers();

  constructor(
    private readonly cfg: SinkConfig,
    private readonly deps: KafkaSinkDeps,
  ) {
    this.name = `sink:${cfg.name}`;
    this.log = deps.logger.child({ component: this.name });
    this.once = new OnceLogger(this.log);
    this.router = new Router(cfg.route, cfg.defaultTopic);
    this.metadata = new MetadataEncoder(deps.gatewayId);
    this.backoff = new Backoff({ initialMs: cfg.retryMinMs, maxMs: cfg.retryMaxMs });
    this.limiter = cfg.maxBytesPerSecond ? new RateLimiter(cfg.maxBytesPerSecond, deps.clock) : null;
    this.progress = new DrainProgress({ intervalMs: cfg.progressIntervalS * 1000, behindThreshold: cfg.batchMaxRecords, clock: deps.clock, logger: this.log });
    // Hook (dead-letter.ts): isolates records Kafka refuses for good.
    this.rejects = new RejectHandler({
      sinkName: cfg.name,
      deadLetterTopic: cfg.deadLetterTopic,
      logger: this.log,
      metrics: deps.metrics,
      reportGap: deps.reportGap,
      toBatch: (records) => this.toBatch(records),
      send: async (batch, lastSeq) => {
        const client = await this.connectedClient();
        await withTimeout(client.send(batch, this.cfg.requestTimeoutMs, lastSeq), this.cfg.requestTimeoutMs + SEND_GRACE_MS);
        this.confirmRejected(lastSeq);
      },
    });
  }

  async start(): Promise<void> {
    if (this.loop) return;
    this.abort = new AbortController();
    this.unsubscribeCommit = this.deps.journal.onCommit(() => this.wake?.());
    this.log.info({ brokers: this.cfg.brokers, cursor: this.deps.journal.cursor(this.cfg.name) }, 'Kafka sink started');
    this.loop = this.run().catch((err) => {
      this.log.fatal({ err }, 'Kafka sink loop ended unexpectedly');
    });
  }

  private get stopping(): boolean {
    return this.abort.signal.aborted;
  }

  private async run(): Promise<void> {
    const { journal } = this.deps;
    const cfg = this.cfg;
    let lingered = false;
    // Connect before the first record: the first batch is not delayed by it, and an absent
    // Kafka is reported at start ("waiting") rather than at the first reading.
    try {
      await this.connectedClient();
    } catch (err) {
      this.noteFailure(err);
    }
    while (!this.stopping) {
      const cursor = journal.cursor(cfg.name);
      if (cfg.drainOrder === 'newest_first' && (await this.newestFirstStep(cursor))) continue;
      const records = journal.read(cursor, cfg.batchMaxRecords, this.batchBytes);
      if (records.length === 0) {
        await this.waitForCommit();
        lingered = false;
        continue;
      }
      if (records.length < cfg.batchMaxRecords && cfg.lingerMs > 0 && !lingered) {
        lingered = true;
        await sleep(cfg.lingerMs, this.abort.signal);
        continue;
      }
      lingered = false;
      await this.ship(records, (seq) => this.advance(seq));
    }
  }

  /**
   * drain_order = "newest_first": when more than a batch behind, records committed after the
   * drain began (`head`) go first, then one batch of the backlog, in turn. The cursor still only
   * moves over the backlog in order, so a crash mid-drain resends fresh records (duplicates,
   * never losses). Returns false when there is nothing to do this way (caught up: plain fifo).
   */
  private async newestFirstStep(cursor: number): Promise<boolean> {
    const { journal } = this.deps;
    const cfg = this.cfg;
    if (this.backlogEnd <= cursor) {
      if (journal.committedSeq - cursor <= cfg.batchMaxRecords) return false;
      this.backlogEnd = this.head = journal.committedSeq;
      this.log.info({ backlogFrom: cursor + 1, backlogTo: this.backlogEnd }, 'newest_first: sending new records before the backlog');
    }
    const fresh = journal.read(this.head, cfg.batchMaxRecords, this.batchBytes);
    if (fresh.length) await this.ship(fresh, (seq) => (this.head = Math.max(this.head, seq)));
    const backlog = journal.read(cursor, cfg.batchMaxRecords, this.batchBytes).filter((r) => r.seq <= this.backlogEnd);
    if (backlog.length) {
      await this.ship(backlog, (seq) => this.advance(seq));
    } else if (!this.stopping) {
      // Backlog done; everything up to `head` went out as fresh records, in order.
      this.advance(this.head);
      this.backlogEnd = 0;
    }
    return true;
  }

  /** Bytes per batch: never more than a second's worth of a rate cap, so the cap holds smoothly. */
  private get batchBytes(): number {
    return this.cfg.maxBytesPerSecond ? Math.min(this.cfg.batchMaxBytes, this.cfg.maxBytesPerSecond) : this.cfg.batchMaxBytes;
  }

  /**
   * Sends one batch until the broker confirms it (then `confirmed(lastSeq)`) or the sink stops.
   * Empties `records`: held through the send's wait, ~2,000 record objects outlived V8's 1 MB
   * young generation and went to the old one, ~5% of the drain's CPU in GC (drain-ab). Only a
   * batch Kafka refuses needs them again; it reads them again.
   */
  private async ship(records: JournalRecord[], confirmed: (lastSeq: number) => void): Promise<void> {
    const first = records[0]!.seq;
    const last = records[records.length - 1]!.seq;
    const count = records.length;
    const batch = this.toBatch(records);
    records.length = 0;
    if (batch.topicMessages.length === 0) return confirmed(last);
    let bytes = 0;
    // Indexed, not for…of: in this async function the iterator allocated per message.
    for (let t = 0; t < batch.topicMessages.length; t++) {
      const messages = batch.topicMessages[t]!.messages;
      for (let i = 0; i < messages.length; i++) bytes += wireBytes(messages[i]!);
    }
    if (this.limiter) {
      const wait = this.limiter.take(bytes);
      if (wait > 0) await sleep(wait, this.abort.signal);
      if (this.stopping) return;
    }
    if (this.stopping) return;
    this.deps.journal.inFlight(this.cfg.name, last);
    try {
      const client = await this.connectedClient();
      // Hook (exactly-once): connecting may have moved the cursor past this batch; re-read.
      if (this.deps.journal.cursor(this.cfg.name) >= first) {
        this.deps.journal.inFlight(this.cfg.name, null);
        return;
      }
      await withTimeout(client.send(batch, this.cfg.requestTimeoutMs, last), this.cfg.requestTimeoutMs + SEND_GRACE_MS);
    } catch (err) {
      const refused = neverAcceptedReason(err);
      // Read again while the rows are still marked in flight, so eviction cannot have taken one.
      let again: JournalRecord[] = [];
      if (refused && !this.stopping) {
        try {
          again = this.deps.journal.read(first - 1, count, Number.MAX_SAFE_INTEGER).filter((r) => r.seq <= last);
        } catch (readErr) {
          // Only when the journal closed under a send that outlived the shutdown deadline.
          this.log.warn({ err: errorMessage(readErr) }, 'could not read a refused batch again; it is sent again next time');
        }
      }
      this.deps.journal.inFlight(this.cfg.name, null);
      this.limiter?.refund(bytes);
      // Hook (dead-letter.ts): records Kafka will never accept are isolated, not retried forever.
      if (refused) {
        this.confirmRejected = confirmed;
        try {
          await this.rejects.isolate(again);
        } catch (again) {
          if (isRetriable(again)) await sleep(this.noteFailure(again), this.abort.signal);
          else this.stopShipping(again);
        }
        return;
      }
      if (!isRetriable(err)) return this.stopShipping(err);
      // Back off, then read the batch again: rows may have been evicted meanwhile, and those
      // must not be sent after a gap record said they were lost.
      const delay = this.noteFailure(err);
      await sleep(delay, this.abort.signal);
      return;
    }
    const n = batch.topicMessages.reduce((s, t) => s + t.messages.length, 0);
    this.deps.metrics.inc('sluice_sink_shipped_total', { sink: this.cfg.name }, n);
    this.deps.metrics.inc('sluice_sink_shipped_bytes_total', { sink: this.cfg.name }, bytes);
    this.deps.metrics.set('sluice_sink_last_success_seconds', { sink: this.cfg.name }, this.deps.clock.now() / 1000);
    if (this.failingSince !== null) {
      this.log.info({ downForMs: this.deps.clock.now() - this.failingSince }, 'Kafka reachable again; shipping the backlog');
      this.failingSince = null;
      this.failureKind = null;
    }
    this.backoff.reset();
    confirmed(last);
    this.deps.journal.inFlight(this.cfg.name, null);
    this.progress.shipped(n, bytes, Math.max(0, this.deps.journal.committedSeq - this.deps.journal.cursor(this.cfg.name)));
  }

  /**
   * For errors no retry can fix: stops shipping for good (until sluice is restarted); the records
   * stay journaled and the cursor stays where Kafka last confirmed it.
   */
  private stopShipping(err: unknown): void {
    this.deps.metrics.inc('sluice_sink_errors_total', { sink: this.cfg.name });
    if (err instanceof SluiceError && err.code === 'SLUICE_KAFKA_FENCED') {
      // Another instance of this gateway and sink took over the transactional id. Reconnecting
      // would fence that one in turn: step aside, send nothing more, keep every record.
      this.deps.metrics.inc('sluice_sink_fenced_total', { sink: this.cfg.name });
      this.log.error(
        { err: errorMessage(err), code: err.code, cursor: this.deps.journal.cursor(this.cfg.name), backlog: Math.max(0, this.deps.journal.committedSeq - this.deps.journal.cursor(this.cfg.name)) },
        'Kafka sink fenced by another instance of this gateway and sink (same gateway.id and sink name); it stops shipping, its records stay in the journal; make sure only one instance runs, then restart sluice',
      );
    } else {
      // A bug, not an outage: retrying cannot fix it.
      this.log.fatal({ err }, 'Kafka sink stopped by a programming error; records stay in the journal until sluice is fixed and restarted');
    }
    this.abort.abort();
  }

  /** Counts and logs a failure (once per outage), drops the client; returns the delay before the next try. */
  private noteFailure(err: unknown): number {
    this.deps.metrics.inc('sluice_sink_errors_total', { sink: this.cfg.name });
    const delay = this.backoff.next();
    const hint = securityHint(err);
    const kind = failureKind(hint);
    if (this.failingSince === null || kind !== this.failureKind) {
      this.failingSince ??= this.deps.clock.now();
      this.failureKind = kind;
      this.log.warn({ err: errorMessage(err), hint, brokers: this.cfg.brokers }, 'cannot ship to Kafka; records stay in the journal, retrying with backoff');
    } else {
      this.log.debug({ err: errorMessage(err), retryInMs: delay }, 'Kafka send failed again');
    }
    this.dropClient();
    return delay;
  }

  private advance(seq: number): void {
    try {
      this.deps.journal.ack(this.cfg.name, seq);
    } catch (err) {
      // Only when the journal closed under a send that outlived the shutdown deadline.
      this.log.warn({ err: errorMessage(err) }, 'could not move the cursor; the batch will be sent again');
    }
  }

  private toBatch(records: JournalRecord[]): OutgoingBatch {
    const byTopic = new Map<string, OutgoingBatch['topicMessages'][number]['messages']>();
    const legacy = this.cfg.metadataHeaders === 'legacy';
    for (const r of records) {
      const target = this.router.route(r.topic) ?? (r.topic === GAP_TOPIC ? { topic: this.cfg.gapTopic, key: r.key, valueFormat: 'raw' as const } : null);
      if (!target) {
        this.deps.metrics.inc('sluice_sink_unrouted_total', { sink: this.cfg.name });
        this.once.warn(`unrouted:${r.topic}`, { topic: r.topic, seq: r.seq }, 'no route matches this topic and no default_topic is set; record skipped by this sink');
        continue;
      }
      let list = byTopic.get(target.topic);
      if (!list) byTopic.set(target.topic, (list = []));
      // r.time is the best-known capture time (the journal corrects it as it reads); the metadata says how good it is.
      let headers: Record<string, HeaderValue>;
      if (legacy) headers = r.headers ? { ...r.headers, ...legacyHeaders(r, this.deps.gatewayId) } : legacyHeaders(r, this.deps.gatewayId);
      else if (r.headers) headers = { ...r.headers, [METADATA_HEADER]: this.metadata.encode(r) };
      else headers = { [METADATA_HEADER]: this.metadata.encode(r) };
      const key = target.key ?? r.key;
      const payload = restampPayload(r, this.deps.journal);
      const rec = payload === r.payload ? r : { ...r, payload };
      list.push({ key: this.keys.get(key), value: encodeValue(target.valueFormat, rec, this.deps.gatewayId, key), timestamp: String(Math.round(r.time)), headers });
    }
    return { topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })) };
  }

  private async connectedClient(): Promise<KafkaProducerClient> {
    if (this.client) return this.client;
    const factory = this.deps.createClient ?? createKafkajsClient;
    const client = factory(this.cfg, this.cfg.clientId ?? `sluice-${this.deps.gatewayId}`, this.log, { gatewayId: this.deps.gatewayId, clock: this.deps.clock });
    this.client = client;
    try {
      await withTimeout(client.connect(), this.cfg.connectionTimeoutMs + this.cfg.requestTimeoutMs);
      // Hook (exactly-once): records Kafka already committed with a cursor are not sent again.
      if (client.committedCursor) adoptCommittedCursor(this.deps.journal, this.cfg.name, await client.committedCursor(), this.log);
    } catch (err) {
      this.dropClient();
      throw err;
    }
    return client;
  }

  /** A failed producer may stay "disconnected" for good (a known kafkajs issue): make a new one. */
  private dropClient(): void {
    const c = this.client;
    this.client = null;
    c?.disconnect().catch(() => undefined);
  }

  private waitForCommit(): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        this.wake = null;
        this.abort.signal.removeEventListener('abort', done);
        resolve();
      };
      this.wake = done;
      this.abort.signal.addEventListener('abort', done, { once: true });
    });
  }

  /** Stops after the batch in flight is confirmed, or leaves it for next time at the deadline. */
  async stop(deadlineMs = 5000): Promise<void> {
    if (!this.loop) return;
    this.abort.abort();
    const loop = this.loop;
    this.loop = null;
    const finished = await Promise.race([loop.then(() => true), sleep(deadlineMs).then(() => false)]);
    if (!finished) this.log.warn('in-flight batch not confirmed before the deadline; it will be sent again next time');
    this.unsubscribeCommit?.();
    const c = this.client;
    this.client = null;
    await c?.disconnect().catch(() => undefined);
    this.log.info('Kafka sink stopped');
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new SluiceError('SLUICE_KAFKA_TIMEOUT', `no answer from Kafka within ${ms} ms`, { retriable: true })), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Groups failures for logging: an outage logs one line, and another only when a failure needs a
 * different fix (a hung broker, then a refused login, then a missing ACL). Transient errors that
 * alternate while a broker is away (timeouts, resets, refused connections) are one kind.
 */
function failureKind(hint: string | undefined): string {
  return hint ?? 'transient';
}
