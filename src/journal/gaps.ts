import type { Logger } from 'pino';
import type { Metrics } from '../metrics.js';
import type { Clock } from '../util/clock.js';
import type { Journal } from './journal.js';

/**
 * What was lost, and why. Every drop of any kind (eviction, a frame the journal could not take,
 * a record Kafka will never accept, a frame that failed to decode and is configured to be dropped)
 * is reported as a gap; the gap becomes a record shipped like any reading, so consumers can see
 * exactly what is missing.
 */
export interface GapReport {
  /** Stable reason code, e.g. "evicted_max_bytes", "journal_full", "record_too_large", "decode_failed". */
  reason: string;
  /** Source of the lost records, e.g. "serial:gps" or "mqtt:local". */
  source: string;
  /** Sink that gave up on them, when the loss happened at a sink. */
  sink?: string;
  /** Seq range of lost journaled records; absent when they never got a seq (dropped before the journal). */
  firstSeq?: number;
  lastSeq?: number;
  /** The exact seq ranges lost, inclusive, when they are not one contiguous range (evictions skip kept records). */
  ranges?: Array<[number, number]>;
  /** Lost records per source, when more than one source lost some. */
  sources?: Record<string, number>;
  /** Capture-time range of the lost records, ms since the epoch. */
  firstTime: number;
  lastTime: number;
  count: number;
  bytes: number;
  /** Free-text detail for humans (no secrets). */
  detail?: string;
}

/** Records a gap. Never throws: losing the report of a loss must not take the daemon down. */
export type ReportGap = (gap: GapReport) => void;

/** Topic and source that gap records carry in the journal; route `sluice/gaps` to a Kafka topic to receive them. */
export const GAP_TOPIC = 'sluice/gaps';
export const GAP_SOURCE = 'sluice:gaps';

/**
 * Turns gap reports into journal records (JSON payload, topic `sluice/gaps`), counts them in
 * `sluice_gap_records_total{reason}` / `sluice_dropped_records_total{source,reason}`, and logs each
 * reason once per source.
 */
export class GapRecorder {
  private readonly logged = new Set<string>();

  constructor(
    private readonly deps: { journal: Journal; metrics: Metrics; logger: Logger; clock: Clock; gatewayId: string },
  ) {}

  readonly report: ReportGap = (gap) => {
    const { metrics, logger } = this.deps;
    metrics.inc('sluice_gap_records_total', { reason: gap.reason });
    metrics.inc('sluice_dropped_records_total', { source: gap.source, reason: gap.reason }, gap.count);
    metrics.inc('sluice_dropped_bytes_total', { source: gap.source, reason: gap.reason }, gap.bytes);
    const onceKey = `${gap.source}\u0000${gap.reason}`;
    if (!this.logged.has(onceKey)) {
      this.logged.add(onceKey);
      if (gap.count === 0) logger.warn({ gap }, 'alarm recorded in a gap record (logged once per source and reason)');
      else logger.warn({ gap }, 'records lost; a gap record says which (logged once per source and reason)');
    }
    try {
      this.deps.journal.append({
        time: this.deps.clock.now(),
        source: GAP_SOURCE,
        topic: GAP_TOPIC,
        key: this.deps.gatewayId,
        payload: Buffer.from(JSON.stringify(gapPayload(gap, this.deps.gatewayId))),
        headers: { 'sluice.gap.reason': gap.reason },
      });
    } catch (err) {
      metrics.inc('sluice_gap_records_lost_total', { reason: gap.reason });
      logger.error({ err, gap }, 'could not journal a gap record');
    }
  };
}

/** The JSON body of a gap record (snake_case, like the config). */
export function gapPayload(gap: GapReport, gatewayId: string): Record<string, unknown> {
  return {
    type: 'gap',
    gateway: gatewayId,
    reason: gap.reason,
    source: gap.source,
    sink: gap.sink ?? null,
    first_seq: gap.firstSeq ?? null,
    last_seq: gap.lastSeq ?? null,
    ranges: gap.ranges ?? (gap.firstSeq !== undefined && gap.lastSeq !== undefined ? [[gap.firstSeq, gap.lastSeq]] : []),
    sources: gap.sources ?? { [gap.source]: gap.count },
    first_time: new Date(gap.firstTime).toISOString(),
    last_time: new Date(gap.lastTime).toISOString(),
    count: gap.count,
    bytes: gap.bytes,
    detail: gap.detail ?? null,
  };
}
