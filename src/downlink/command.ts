/**
 * The command format (a Kafka record's value, JSON):
 *   {"id": "c-42", "target": "valve/7", "payload": "open", "encoding": "utf8", "ttl_s": 60}
 * - id: 1-200 characters, unique per command; the dedupe key.
 * - target: which route takes it (matched against the routes' target patterns).
 * - payload: the bytes to send; `encoding` says how: "utf8" (a string, as its UTF-8 bytes), "base64"
 *   (a string of base64), "json" (any JSON value, sent as its JSON text). Default: "utf8" for a
 *   string, "json" for anything else.
 * - expiry: `deadline` (ISO 8601 text or milliseconds since the epoch) or `ttl_s` (seconds from when
 *   the command was produced: the Kafka record's timestamp, or when sluice received it if the record
 *   has none); neither: the downlink's default_ttl_s, counted the same way.
 */
export interface Command {
  id: string;
  target: string;
  payload: Buffer;
  /** Milliseconds since the epoch after which the command is never delivered. */
  deadline: number;
}

export type ParseResult = { ok: true; command: Command } | { ok: false; id: string | null; target: string | null; reason: string; detail: string };

const MAX_ID_CHARS = 200;
const MAX_TARGET_CHARS = 1024;

export interface ParseOptions {
  /** When the command was received, ms since the epoch. */
  now: number;
  /**
   * The Kafka record's timestamp (CreateTime, or LogAppendTime if the topic says so), ms since the
   * epoch: what a TTL counts from, so a command read late (an uplink outage, a new consumer group
   * reading the topic again) is not given a fresh life. Absent or invalid (<= 0): `now`.
   */
  produced?: number | null;
  defaultTtlS: number;
  maxPayloadBytes: number;
}

/** Parses a command record's value; never throws: a bad command is a reason to reject it. */
export function parseCommand(value: Buffer | null, opts: ParseOptions): ParseResult {
  if (value === null || value.length === 0) return bad(null, null, 'unparsable', 'empty record value');
  let doc: unknown;
  try {
    doc = JSON.parse(value.toString('utf8'));
  } catch (err) {
    return bad(null, null, 'unparsable', `not JSON: ${(err as Error).message.slice(0, 200)}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return bad(null, null, 'unparsable', 'not a JSON object');
  const o = doc as Record<string, unknown>;
  const id = typeof o.id === 'string' && o.id.length > 0 && o.id.length <= MAX_ID_CHARS ? o.id : null;
  const target = typeof o.target === 'string' && o.target.length > 0 && o.target.length <= MAX_TARGET_CHARS ? o.target : null;
  if (id === null) return bad(null, target, 'invalid', `"id" must be a string of 1-${MAX_ID_CHARS} characters`);
  if (target === null) return bad(id, null, 'invalid', `"target" must be a string of 1-${MAX_TARGET_CHARS} characters`);
  if (!('payload' in o)) return bad(id, target, 'invalid', '"payload" is missing');
  const encoding = o.encoding ?? (typeof o.payload === 'string' ? 'utf8' : 'json');
  let payload: Buffer;
  if (encoding === 'utf8') {
    if (typeof o.payload !== 'string') return bad(id, target, 'invalid', 'encoding "utf8" needs a string payload');
    payload = Buffer.from(o.payload, 'utf8');
  } else if (encoding === 'base64') {
    if (typeof o.payload !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(o.payload) || o.payload.length % 4 !== 0) return bad(id, target, 'invalid', 'encoding "base64" needs a base64 string payload');
    payload = Buffer.from(o.payload, 'base64');
  } else if (encoding === 'json') {
    payload = Buffer.from(JSON.stringify(o.payload), 'utf8');
  } else return bad(id, target, 'invalid', `unknown encoding ${JSON.stringify(encoding).slice(0, 50)} (use "utf8", "base64" or "json")`);
  if (payload.length > opts.maxPayloadBytes) return bad(id, target, 'payload_too_large', `payload is ${payload.length} bytes; max_payload_bytes is ${opts.maxPayloadBytes}`);
  const from = opts.produced !== undefined && opts.produced !== null && Number.isFinite(opts.produced) && opts.produced > 0 ? opts.produced : opts.now;
  let deadline: number;
  if (o.deadline !== undefined && o.ttl_s !== undefined) return bad(id, target, 'invalid', 'give "deadline" or "ttl_s", not both');
  if (o.deadline !== undefined) {
    const d = typeof o.deadline === 'number' ? o.deadline : typeof o.deadline === 'string' ? Date.parse(o.deadline) : NaN;
    if (!Number.isFinite(d)) return bad(id, target, 'invalid', '"deadline" must be ISO 8601 text or milliseconds since the epoch');
    deadline = d;
  } else if (o.ttl_s !== undefined) {
    if (typeof o.ttl_s !== 'number' || !Number.isFinite(o.ttl_s) || o.ttl_s < 0) return bad(id, target, 'invalid', '"ttl_s" must be a number of seconds >= 0');
    deadline = from + o.ttl_s * 1000;
  } else deadline = from + opts.defaultTtlS * 1000;
  return { ok: true, command: { id, target, payload, deadline } };
}

function bad(id: string | null, target: string | null, reason: string, detail: string): ParseResult {
  return { ok: false, id, target, reason, detail };
}
