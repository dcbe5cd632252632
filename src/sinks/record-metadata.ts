import type { JournalRecord, TimeQuality } from '../journal/journal.js';

/**
 * Where a record came from, as every Kafka record carries it: gateway, seq, source, source topic,
 * capture time and how good that time is.
 *
 * Compact form (default): ONE header, `sluice`, whose value is a line of UTF-8 text
 *
 *     1|<gateway>|<source>|<seq>|<time>|<time_quality>|<clock_time>|<topic>
 *
 * - `1` is the format version; a consumer that meets another version must not guess.
 * - `time` is the capture time in ms since the epoch (the best known, also the Kafka timestamp);
 *   `time_quality` is "synced", "corrected" or "unsynced" (empty from a journal that does not
 *   track clocks); `clock_time` is what the gateway's clock said, set only for "corrected".
 * - `topic` (the MQTT topic or serial port topic) is last and taken as it is, so it may hold "|"
 *   itself: split on the first seven "|" only. gateway and source never hold "|" (config allows
 *   letters, digits, "_", ".", "-" and the source is "<kind>:<name>"); should one ever, it is
 *   written as "%7C" (and "%" as "%25").
 *
 * Why one text header: kafkajs encodes each header with its own buffer allocations, which made
 * the five string headers half of the drain's CPU (issue 13); text because kcat, the shell tools
 * and every client library print or read a header value as it is.
 *
 * Legacy form (`metadata_headers = "legacy"`): the five-to-seven `sluice.*` string headers the
 * versions before this one wrote.
 */
export const METADATA_HEADER = 'sluice';
export const METADATA_VERSION = '1';

export const LEGACY_HEADERS = {
  gateway: 'sluice.gateway',
  seq: 'sluice.seq',
  source: 'sluice.source',
  topic: 'sluice.topic',
  time: 'sluice.time',
  timeQuality: 'sluice.time_quality',
  clockTime: 'sluice.clock_time',
} as const;

export interface RecordMetadata {
  gateway: string;
  source: string;
  seq: number;
  /** Capture time, ms since the epoch, as the record carries it (a string: compared exactly). */
  time: string;
  timeQuality?: TimeQuality;
  clockTime?: string;
  topic: string;
}

/** Header values as the sink hands them to the Kafka client. */
export type HeaderValue = string | Buffer;

/** Caches stop growing here and start again: a gateway has tens to thousands of topics, not more. */
const CACHE_LIMIT = 10000;
const QUALITIES = new Set<string>(['synced', 'corrected', 'unsynced']);
const PIPE = 0x7c;

/** Builds the compact header value: one Buffer per record, the text around the numbers cached. */
export class MetadataEncoder {
  /** "1|<gateway>|<source>|", per source. */
  private readonly prefixes = new Map<string, Buffer>();
  /** "|<topic>", per source topic. */
  private readonly suffixes = new Map<string, Buffer>();
  private readonly gateway: string;

  constructor(gatewayId: string) {
    this.gateway = escapeField(gatewayId);
  }

  encode(r: JournalRecord): Buffer {
    let prefix = this.prefixes.get(r.source);
    if (!prefix) {
      if (this.prefixes.size >= CACHE_LIMIT) this.prefixes.clear();
      this.prefixes.set(r.source, (prefix = Buffer.from(`${METADATA_VERSION}|${this.gateway}|${escapeField(r.source)}|`, 'utf8')));
    }
    let suffix = this.suffixes.get(r.topic);
    if (!suffix) {
      if (this.suffixes.size >= CACHE_LIMIT) this.suffixes.clear();
      this.suffixes.set(r.topic, (suffix = Buffer.from(`|${r.topic}`, 'utf8')));
    }
    // Numbers and quality words are ASCII: one latin1 write each, no intermediate UTF-8 pass.
    const seq = String(r.seq);
    const time = String(r.time);
    const quality = r.timeQuality ?? '';
    const clock = r.clockTime === undefined ? '' : String(r.clockTime);
    const out = Buffer.allocUnsafe(prefix.length + seq.length + time.length + quality.length + clock.length + 3 + suffix.length);
    out.set(prefix, 0);
    let o = prefix.length;
    o += out.write(seq, o, 'latin1');
    out[o++] = PIPE;
    o += out.write(time, o, 'latin1');
    out[o++] = PIPE;
    if (quality) o += out.write(quality, o, 'latin1');
    out[o++] = PIPE;
    if (clock) o += out.write(clock, o, 'latin1');
    out.set(suffix, o);
    return out;
  }
}

/** The `sluice.*` string headers of the versions before the compact header. */
export function legacyHeaders(r: JournalRecord, gatewayId: string): Record<string, string> {
  const h: Record<string, string> = {
    [LEGACY_HEADERS.gateway]: gatewayId,
    [LEGACY_HEADERS.seq]: String(r.seq),
    [LEGACY_HEADERS.source]: r.source,
    [LEGACY_HEADERS.topic]: r.topic,
    [LEGACY_HEADERS.time]: String(r.time),
  };
  if (r.timeQuality !== undefined) h[LEGACY_HEADERS.timeQuality] = r.timeQuality;
  if (r.clockTime !== undefined) h[LEGACY_HEADERS.clockTime] = String(r.clockTime);
  return h;
}

/** Decodes a compact header value; null when it is not one (another version, or damaged). */
export function decodeMetadata(value: HeaderValue): RecordMetadata | null {
  const text = typeof value === 'string' ? value : value.toString('utf8');
  const fields: string[] = [];
  let start = 0;
  for (let i = 0; i < 7; i++) {
    const end = text.indexOf('|', start);
    if (end < 0) return null;
    fields.push(text.slice(start, end));
    start = end + 1;
  }
  const [version, gateway, source, seqText, time, quality, clockTime] = fields as [string, string, string, string, string, string, string];
  if (version !== METADATA_VERSION) return null;
  const seq = Number(seqText);
  if (!/^\d+$/.test(seqText) || !Number.isSafeInteger(seq) || time === '' || !Number.isFinite(Number(time))) return null;
  if (quality !== '' && !QUALITIES.has(quality)) return null;
  const m: RecordMetadata = { gateway: unescapeField(gateway), source: unescapeField(source), seq, time, topic: text.slice(start) };
  if (quality !== '') m.timeQuality = quality as TimeQuality;
  if (clockTime !== '') m.clockTime = clockTime;
  return m;
}

/**
 * What a record's headers say about it, in either form (the compact header wins when both are
 * there); null when they carry neither. For readers of records written before and after an upgrade.
 */
export function metadataOf(headers: Readonly<Record<string, HeaderValue | undefined>>): RecordMetadata | null {
  const compact = headers[METADATA_HEADER];
  if (compact !== undefined) return decodeMetadata(compact);
  const get = (name: string): string | undefined => {
    const v = headers[name];
    return v === undefined ? undefined : String(v);
  };
  const seqText = get(LEGACY_HEADERS.seq);
  const seq = Number(seqText);
  if (seqText === undefined || !Number.isSafeInteger(seq)) return null;
  const m: RecordMetadata = { gateway: get(LEGACY_HEADERS.gateway) ?? '', source: get(LEGACY_HEADERS.source) ?? '', seq, time: get(LEGACY_HEADERS.time) ?? '', topic: get(LEGACY_HEADERS.topic) ?? '' };
  const quality = get(LEGACY_HEADERS.timeQuality);
  if (quality !== undefined && QUALITIES.has(quality)) m.timeQuality = quality as TimeQuality;
  const clockTime = get(LEGACY_HEADERS.clockTime);
  if (clockTime !== undefined) m.clockTime = clockTime;
  return m;
}

function escapeField(s: string): string {
  return s.includes('|') || s.includes('%') ? s.replace(/%/g, '%25').replace(/\|/g, '%7C') : s;
}

function unescapeField(s: string): string {
  return s.includes('%') ? s.replace(/%7C/gi, '|').replace(/%25/g, '%') : s;
}
