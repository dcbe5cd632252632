import { GAP_SOURCE } from '../journal/gaps.js';
import type { Journal, JournalRecord, TimeQuality } from '../journal/journal.js';

/** Source of health records (ops/health-source.ts), named here so sinks need not load the collector. */
const HEALTH_SOURCE = 'sluice:health';

const RANK: Record<TimeQuality, number> = { unsynced: 0, corrected: 1, synced: 2 };

/**
 * Gap and health records carry times inside their JSON payload too (`first_time`/`last_time`,
 * `time`); they get the same correction as record times when shipped, and say how good they are
 * (`time_quality`). A gap's times are dated in the epoch of the seqs they describe (an evicted
 * range may come from an earlier boot), or of the gap record itself when they had no seq.
 * Other records, and every record of a journal that does not track clocks, pass untouched.
 */
export function restampPayload(r: JournalRecord, journal: Journal): Buffer {
  if (r.timeQuality === undefined || (r.source !== GAP_SOURCE && r.source !== HEALTH_SOURCE)) return r.payload;
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(r.payload.toString('utf8')) as Record<string, unknown>;
  } catch {
    return r.payload;
  }
  if (typeof body !== 'object' || body === null) return r.payload;
  if (r.source === HEALTH_SOURCE) {
    if (typeof body.time === 'string') body.time = new Date(r.time).toISOString();
    body.time_quality = r.timeQuality;
    return Buffer.from(JSON.stringify(body));
  }
  let worst: TimeQuality = 'synced';
  const restamp = (field: 'first_time' | 'last_time', seqField: 'first_seq' | 'last_seq'): void => {
    const iso = body[field];
    if (typeof iso !== 'string') return;
    const t = Date.parse(iso);
    if (!Number.isFinite(t)) return;
    const seq = typeof body[seqField] === 'number' ? (body[seqField] as number) : r.seq;
    const stamped = journal.timeOf ? journal.timeOf(seq, t) : { time: t, quality: r.timeQuality! };
    body[field] = new Date(stamped.time).toISOString();
    if (RANK[stamped.quality] < RANK[worst]) worst = stamped.quality;
  };
  restamp('first_time', 'first_seq');
  restamp('last_time', 'last_seq');
  body.time_quality = worst;
  return Buffer.from(JSON.stringify(body));
}
