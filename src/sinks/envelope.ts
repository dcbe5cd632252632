import type { JournalRecord, TimeQuality } from '../journal/journal.js';
import type { RouteConfig } from '../config/load.js';

/** How the envelope carries the payload. */
export type PayloadEncoding = 'json' | 'utf8' | 'base64';

/**
 * The JSON envelope (`value_format = "envelope"`): everything a consumer needs to know where a
 * reading came from, without reading headers. snake_case like the config and gap records.
 */
export interface Envelope {
  gateway: string;
  seq: number;
  source: string;
  topic: string;
  /** Capture time, ISO 8601 UTC: the best known (see time_quality). */
  time: string;
  /** How good `time` is: "synced", "corrected" or "unsynced" (absent from a journal that does not track clocks). */
  time_quality?: TimeQuality;
  key: string | null;
  payload_encoding: PayloadEncoding;
  /** The payload as JSON when it parses, else a UTF-8 string, else base64. */
  payload: unknown;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The payload as the envelope carries it: parsed JSON, valid UTF-8 text, or base64. */
export function envelopePayload(payload: Buffer): { payload_encoding: PayloadEncoding; payload: unknown } {
  let text: string;
  try {
    text = utf8.decode(payload);
  } catch {
    return { payload_encoding: 'base64', payload: payload.toString('base64') };
  }
  try {
    return { payload_encoding: 'json', payload: JSON.parse(text) as unknown };
  } catch {
    return { payload_encoding: 'utf8', payload: text };
  }
}

export function envelopeOf(r: JournalRecord, gatewayId: string, key: string | null): Envelope {
  const env: Envelope = { gateway: gatewayId, seq: r.seq, source: r.source, topic: r.topic, time: new Date(r.time).toISOString(), key, ...envelopePayload(r.payload) };
  if (r.timeQuality !== undefined) env.time_quality = r.timeQuality;
  return env;
}

/** The Kafka record value for a route's value format. */
export function encodeValue(format: RouteConfig['valueFormat'], r: JournalRecord, gatewayId: string, key: string | null): Buffer {
  if (format === 'raw') return r.payload;
  return Buffer.from(JSON.stringify(envelopeOf(r, gatewayId, key)));
}
