import type { Logger } from 'pino';
import { errorMessage } from '../errors.js';
import type { ReportGap } from '../journal/gaps.js';
import type { JournalRecord } from '../journal/journal.js';
import type { Metrics } from '../metrics.js';
import type { OutgoingBatch } from './kafka-producer-client.js';

/**
 * Kafka error types that no retry will fix for the record that caused them: the broker refuses
 * the record itself, whatever the state of the cluster.
 */
const NEVER_ACCEPTED = new Map<string, string>([
  ['MESSAGE_TOO_LARGE', 'record_too_large'],
  ['RECORD_LIST_TOO_LARGE', 'record_too_large'],
  ['INVALID_TOPIC_EXCEPTION', 'invalid_topic'],
  ['INVALID_RECORD', 'invalid_record'],
]);

/** The reason code when `err` (or an error it wraps) says Kafka will never accept the records, else null. */
export function neverAcceptedReason(err: unknown): string | null {
  for (let e = err as { type?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (typeof e.type === 'string' && NEVER_ACCEPTED.has(e.type)) return NEVER_ACCEPTED.get(e.type)!;
  }
  return null;
}

export interface RejectHandlerDeps {
  sinkName: string;
  deadLetterTopic?: string;
  logger: Logger;
  metrics: Metrics;
  reportGap?: ReportGap;
  /** Builds the batch of some records, as the sink would send them. */
  toBatch(records: JournalRecord[]): OutgoingBatch;
  /** Sends a batch ending at `lastSeq` until confirmed or throws; moves the cursor on success. */
  send(batch: OutgoingBatch, lastSeq: number): Promise<void>;
}

/**
 * Finds the records Kafka refuses in a batch it refused, by halving it (a batch fails as a
 * whole), so that the good records around them are shipped in order and not held up. Each
 * refused record goes to the dead-letter topic (its payload and headers, plus sluice.error.*),
 * or, without one or if the dead-letter topic refuses it too, is dropped with a gap record.
 * A retriable error while doing so is thrown: the sink backs off and re-reads from its cursor.
 */
export class RejectHandler {
  private readonly logged = new Set<string>();

  constructor(private readonly deps: RejectHandlerDeps) {}

  async isolate(records: JournalRecord[]): Promise<void> {
    if (records.length === 0) return;
    try {
      await this.deps.send(this.deps.toBatch(records), records[records.length - 1]!.seq);
      return;
    } catch (err) {
      const reason = neverAcceptedReason(err);
      if (!reason) throw err;
      if (records.length === 1) return this.reject(records[0]!, reason, err);
    }
    const mid = Math.ceil(records.length / 2);
    await this.isolate(records.slice(0, mid));
    await this.isolate(records.slice(mid));
  }

  private async reject(r: JournalRecord, reason: string, err: unknown): Promise<void> {
    const { deps } = this;
    const original = deps.toBatch([r]).topicMessages[0];
    const detail = errorMessage(err);
    if (deps.deadLetterTopic && original) {
      const m = original.messages[0]!;
      const headers = { ...m.headers, 'sluice.error.reason': reason, 'sluice.error.message': detail, 'sluice.error.topic': original.topic, 'sluice.error.sink': deps.sinkName };
      try {
        await deps.send({ topicMessages: [{ topic: deps.deadLetterTopic, messages: [{ ...m, headers }] }] }, r.seq);
        deps.metrics.inc('sluice_sink_rejected_total', { sink: deps.sinkName, reason, action: 'dead_letter' });
        this.logOnce(reason, 'dead_letter', { reason, seq: r.seq, topic: original.topic, deadLetterTopic: deps.deadLetterTopic, err: detail }, 'Kafka refused a record for good; sent to the dead-letter topic (logged once per reason)');
        return;
      } catch (dlErr) {
        if (!neverAcceptedReason(dlErr)) throw dlErr;
        // The dead-letter topic refuses it too (e.g. also too large there): fall through to a gap.
      }
    }
    deps.reportGap?.({ reason: `kafka_${reason}`, source: r.source, sink: deps.sinkName, firstSeq: r.seq, lastSeq: r.seq, firstTime: r.time, lastTime: r.time, count: 1, bytes: r.payload.length, detail: `${original?.topic ?? '(unrouted)'}: ${detail}` });
    deps.metrics.inc('sluice_sink_rejected_total', { sink: deps.sinkName, reason, action: 'gap' });
    this.logOnce(reason, 'gap', { reason, seq: r.seq, topic: original?.topic, err: detail }, 'Kafka refused a record for good; dropped with a gap record (logged once per reason)');
    // Move the cursor past it (an exactly-once client commits a cursor-only transaction).
    await deps.send({ topicMessages: [] }, r.seq);
  }

  private logOnce(reason: string, action: string, fields: Record<string, unknown>, msg: string): void {
    const k = `${reason}/${action}`;
    if (this.logged.has(k)) return;
    this.logged.add(k);
    this.deps.logger.warn(fields, msg);
  }
}
