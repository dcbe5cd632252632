import type { Logger } from 'pino';
import type { Clock } from '../util/clock.js';

/** How kafkajs's producer starts the error line it logs before each retry of a send. */
const RETRY_PREFIX = 'Failed to send messages: ';

/**
 * Makes kafkajs's own produce retries visible, once per incident.
 *
 * Why: when a partition's leader moves (a broker restarts or fails, a preferred-leader election)
 * kafkajs refreshes its metadata and retries inside one send; it logs each retry at error level,
 * which sluice keeps at debug because most are noise. The sink then never sees a failure and
 * would log nothing. This turns the first retry of an incident into one warning naming the
 * reason, and the send that finally goes through into one info line. One per sink: it outlives
 * the clients the sink makes anew after each failed send.
 */
export class ProduceRetryNotice {
  private since: number | null = null;
  private retries = 0;
  /** The send failed for good: the sink's own "cannot ship" / "reachable again" lines take over. */
  private escalated = false;

  constructor(
    private readonly logger: Logger,
    private readonly clock: Clock,
  ) {}

  /**
   * Fed every kafkajs log entry at error level. Only the producer's "Failed to send messages"
   * counts: kafkajs logs it for stale metadata, lost connections and retriable broker errors,
   * just before it refreshes metadata and retries (a refused record is logged otherwise).
   */
  kafkajsError(namespace: string, message: string): void {
    if (namespace !== 'Producer' || !message.startsWith(RETRY_PREFIX)) return;
    this.retries++;
    if (this.since !== null) return;
    this.since = this.clock.now();
    this.logger.warn(
      { reason: message.slice(RETRY_PREFIX.length) },
      'Kafka send failed (a partition leader moved, a broker is unreachable, or another retriable broker error); refreshing metadata and retrying, the records stay in the journal until Kafka confirms them',
    );
  }

  /** A send was confirmed: closes an incident with one line (unless the sink logged its end). */
  sent(): void {
    if (this.since === null) return;
    if (!this.escalated) this.logger.info({ retries: this.retries, afterMs: this.clock.now() - this.since }, 'Kafka confirmed the send after retrying it (new partition leaders in use)');
    this.since = null;
    this.retries = 0;
    this.escalated = false;
  }

  /**
   * A send failed for good. The incident stays open (one line per incident, not one per retry
   * of a long outage, across the new clients the sink makes) until a send is confirmed.
   */
  failed(): void {
    if (this.since !== null) this.escalated = true;
  }
}
