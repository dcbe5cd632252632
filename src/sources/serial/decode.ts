import type { SerialConfig } from '../../config/load.js';
import { parseNmea } from './nmea.js';

/**
 * What a decoder made of a frame: the payload to journal and, for decoders that yield an object,
 * its fields (for the key and the topic template); or why the frame could not be decoded.
 * Reasons start with a stable code ("invalid_utf8", "invalid_json", "csv_columns", "kv_syntax",
 * "nmea_checksum", "nmea_syntax") followed by ": " and a detail for humans.
 */
export type DecodeResult = { ok: true; payload: Buffer; fields: Record<string, unknown> | null } | { ok: false; reason: string };

export type Decoder = (frame: Buffer) => DecodeResult;

type DecoderConfig = Pick<SerialConfig, 'decoder' | 'csvColumns' | 'csvSeparator' | 'kvSeparator' | 'kvPairSeparator' | 'parseNumbers' | 'nmeaRequireChecksum'>;

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The decoder a port's config asks for. */
export function createDecoder(cfg: DecoderConfig): Decoder {
  switch (cfg.decoder) {
    case 'raw':
      return (frame) => ({ ok: true, payload: frame, fields: null });
    case 'text':
      return (frame) => withText(frame, () => ({ ok: true, payload: frame, fields: null }));
    case 'json':
      return (frame) =>
        withText(frame, (text) => {
          let value: unknown;
          try {
            value = JSON.parse(text);
          } catch (err) {
            return { ok: false, reason: `invalid_json: ${(err as Error).message}` };
          }
          return { ok: true, payload: frame, fields: isObject(value) ? value : null };
        });
    case 'csv': {
      const columns = cfg.csvColumns ?? [];
      return (frame) =>
        withText(frame, (text) => {
          const values = splitCsv(text, cfg.csvSeparator);
          if (values === null) return { ok: false, reason: 'csv_syntax: unterminated quote' };
          if (values.length !== columns.length) return { ok: false, reason: `csv_columns: expected ${columns.length} fields, got ${values.length}` };
          const fields: Record<string, unknown> = {};
          columns.forEach((c, i) => (fields[c] = typed(values[i]!, cfg.parseNumbers)));
          return json(fields);
        });
    }
    case 'kv':
      return (frame) =>
        withText(frame, (text) => {
          const pairs = cfg.kvPairSeparator !== undefined ? text.split(cfg.kvPairSeparator) : text.split(/[\s,;]+/);
          const fields: Record<string, unknown> = {};
          let n = 0;
          for (const raw of pairs) {
            const pair = raw.trim();
            if (!pair) continue;
            const at = pair.indexOf(cfg.kvSeparator);
            if (at <= 0) return { ok: false, reason: `kv_syntax: "${pair.slice(0, 40)}" is not key${cfg.kvSeparator}value` };
            fields[pair.slice(0, at).trim()] = typed(pair.slice(at + cfg.kvSeparator.length).trim(), cfg.parseNumbers);
            n++;
          }
          if (n === 0) return { ok: false, reason: 'kv_syntax: no key=value pairs' };
          return json(fields);
        });
    case 'nmea':
      return (frame) =>
        withText(frame, (text) => {
          const r = parseNmea(text, cfg.nmeaRequireChecksum);
          return r.ok ? json(r.value) : { ok: false, reason: r.reason };
        });
  }
}

function withText(frame: Buffer, then: (text: string) => DecodeResult): DecodeResult {
  let text: string;
  try {
    text = utf8.decode(frame);
  } catch {
    return { ok: false, reason: 'invalid_utf8: frame is not valid UTF-8' };
  }
  return then(text);
}

function json(fields: Record<string, unknown>): DecodeResult {
  return { ok: true, payload: Buffer.from(JSON.stringify(fields), 'utf8'), fields };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** Empty → null; number-like → number (when asked); anything else stays text. */
function typed(v: string, parseNumbers: boolean): string | number | null {
  if (v === '') return null;
  if (parseNumbers && NUMBER.test(v)) {
    const n = Number(v);
    if (Number.isFinite(n)) return n;
  }
  return v;
}

/** One CSV row: fields may be double-quoted ("" inside quotes is a quote). Null on an unterminated quote. */
export function splitCsv(line: string, sep: string): string[] | null {
  const out: string[] = [];
  let field = '';
  let i = 0;
  let quoted = false;
  let wasQuoted = false;
  while (i < line.length) {
    const c = line[i]!;
    if (quoted) {
      if (c === '"') {
        if (line[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
      } else field += c;
    } else if (c === '"' && field.trim() === '' && !wasQuoted) {
      quoted = true;
      wasQuoted = true;
      field = '';
    } else if (c === sep) {
      out.push(wasQuoted ? field : field.trim());
      field = '';
      wasQuoted = false;
    } else if (!wasQuoted) field += c;
    i++;
  }
  if (quoted) return null;
  out.push(wasQuoted ? field : field.trim());
  return out;
}
