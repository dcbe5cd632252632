/** A decoded NMEA 0183 sentence. Field values stay strings; a few well-known sentences also get numbers. */
export interface NmeaSentence {
  /** Talker id, e.g. "GP", "GN"; "P" for proprietary sentences. */
  talker: string;
  /** Sentence type, e.g. "GGA", "RMC" (for proprietary ones: the rest of the address). */
  sentence: string;
  /** The comma-separated fields after the address, as sent. */
  fields: string[];
  [extra: string]: unknown;
}

export type NmeaResult = { ok: true; value: NmeaSentence } | { ok: false; reason: string };

/** Parses one sentence ("$GPGGA,...*47"), verifying its checksum. */
export function parseNmea(line: string, requireChecksum: boolean): NmeaResult {
  const text = line.trim();
  if (!/^[$!]/.test(text)) return { ok: false, reason: 'nmea_syntax: does not start with "$" or "!"' };
  const star = text.lastIndexOf('*');
  let body: string;
  if (star >= 0) {
    const given = text.slice(star + 1);
    if (!/^[0-9A-Fa-f]{2}$/.test(given)) return { ok: false, reason: `nmea_syntax: bad checksum field "${given.slice(0, 8)}"` };
    body = text.slice(1, star);
    const computed = checksum(body);
    if (computed !== parseInt(given, 16)) {
      return { ok: false, reason: `nmea_checksum: sentence says ${given.toUpperCase()}, computed ${computed.toString(16).toUpperCase().padStart(2, '0')}` };
    }
  } else {
    if (requireChecksum) return { ok: false, reason: 'nmea_checksum: no "*hh" checksum' };
    body = text.slice(1);
  }
  if (!/^[\x20-\x7e]*$/.test(body)) return { ok: false, reason: 'nmea_syntax: characters outside printable ASCII' };
  const parts = body.split(',');
  const address = parts[0]!;
  if (!/^[A-Z0-9]{2,}$/.test(address)) return { ok: false, reason: `nmea_syntax: bad address "${address.slice(0, 16)}"` };
  const proprietary = address.startsWith('P');
  const value: NmeaSentence = {
    talker: proprietary ? 'P' : address.slice(0, 2),
    sentence: proprietary ? address.slice(1) : address.slice(2),
    fields: parts.slice(1),
  };
  if (!proprietary) Object.assign(value, wellKnown(value.sentence, value.fields));
  return { ok: true, value };
}

/** XOR of every character between "$" and "*". */
export function checksum(body: string): number {
  let c = 0;
  for (let i = 0; i < body.length; i++) c ^= body.charCodeAt(i);
  return c;
}

function wellKnown(sentence: string, f: string[]): Record<string, unknown> {
  switch (sentence) {
    case 'GGA':
      return dropEmpty({
        time: f[0] || null,
        lat: coordinate(f[1], f[2]),
        lon: coordinate(f[3], f[4]),
        fix_quality: num(f[5]),
        satellites: num(f[6]),
        hdop: num(f[7]),
        altitude_m: num(f[8]),
      });
    case 'RMC':
      return dropEmpty({
        time: f[0] || null,
        status: f[1] || null,
        lat: coordinate(f[2], f[3]),
        lon: coordinate(f[4], f[5]),
        speed_knots: num(f[6]),
        course_deg: num(f[7]),
        date: f[8] || null,
      });
    case 'GLL':
      return dropEmpty({ lat: coordinate(f[0], f[1]), lon: coordinate(f[2], f[3]), time: f[4] || null, status: f[5] || null });
    default:
      return {};
  }
}

/** "4807.038","N" → 48.1173 (ddmm.mmmm to decimal degrees; S and W negative). */
function coordinate(value: string | undefined, hemisphere: string | undefined): number | null {
  if (!value || !hemisphere) return null;
  const dot = value.indexOf('.');
  const degDigits = (dot < 0 ? value.length : dot) - 2;
  if (degDigits < 1) return null;
  const deg = Number(value.slice(0, degDigits));
  const min = Number(value.slice(degDigits));
  if (!Number.isFinite(deg) || !Number.isFinite(min)) return null;
  const v = deg + min / 60;
  const signed = hemisphere === 'S' || hemisphere === 'W' ? -v : v;
  return Math.round(signed * 1e7) / 1e7;
}

function num(v: string | undefined): number | null {
  if (!v) return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
}

function dropEmpty(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== null));
}
