import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createDecoder, splitCsv, type DecodeResult } from '../../src/sources/serial/decode.js';
import { checksum, parseNmea } from '../../src/sources/serial/nmea.js';

const base = { csvSeparator: ',', kvSeparator: '=', parseNumbers: true, nmeaRequireChecksum: true } as const;
const dec = (cfg: Partial<Parameters<typeof createDecoder>[0]> & { decoder: Parameters<typeof createDecoder>[0]['decoder'] }) => createDecoder({ ...base, ...cfg });
const ok = (r: DecodeResult): { payload: Buffer; fields: Record<string, unknown> | null } => {
  if (!r.ok) assert.fail(`expected success, got ${r.reason}`);
  return r;
};
const reason = (r: DecodeResult): string => {
  if (r.ok) assert.fail('expected a decode failure');
  return r.reason;
};
const invalidUtf8 = Buffer.from([0x61, 0xff, 0xfe, 0x62]);

/** Appends the checksum a sentence body needs. */
const sentence = (body: string): string => `$${body}*${checksum(body).toString(16).toUpperCase().padStart(2, '0')}`;

test('raw: the bytes as they are, even invalid UTF-8', () => {
  const r = ok(dec({ decoder: 'raw' })(invalidUtf8));
  assert.deepEqual(r.payload, invalidUtf8);
  assert.equal(r.fields, null);
});

test('text: valid UTF-8 passes unchanged; invalid UTF-8 fails', () => {
  const text = Buffer.from('Temperatur 21,5 °C');
  assert.deepEqual(ok(dec({ decoder: 'text' })(text)).payload, text);
  assert.match(reason(dec({ decoder: 'text' })(invalidUtf8)), /^invalid_utf8: /);
});

test('json: a JSON line passes unchanged with its fields; invalid JSON and invalid UTF-8 fail', () => {
  const line = Buffer.from('{"id":"mcu-1","t":21.5}');
  const r = ok(dec({ decoder: 'json' })(line));
  assert.deepEqual(r.payload, line);
  assert.deepEqual(r.fields, { id: 'mcu-1', t: 21.5 });
  assert.equal(ok(dec({ decoder: 'json' })(Buffer.from('[1,2]'))).fields, null, 'a JSON array has no fields');
  assert.match(reason(dec({ decoder: 'json' })(Buffer.from('{"id": "mcu-1", t: 21'))), /^invalid_json: /);
  assert.match(reason(dec({ decoder: 'json' })(invalidUtf8)), /^invalid_utf8: /);
});

test('csv: named columns, numbers, quotes, empty fields; a short or long row fails', () => {
  const d = dec({ decoder: 'csv', csvColumns: ['station', 'temp', 'note', 'rain'] });
  const r = ok(d(Buffer.from('ws-1, 21.5 ,"wind, gusty ""strong""",')));
  assert.deepEqual(r.fields, { station: 'ws-1', temp: 21.5, note: 'wind, gusty "strong"', rain: null });
  assert.deepEqual(JSON.parse(r.payload.toString()), r.fields);
  assert.equal(reason(d(Buffer.from('ws-1,21.5,calm'))), 'csv_columns: expected 4 fields, got 3');
  assert.equal(reason(d(Buffer.from('ws-1,21.5,calm,0,extra'))), 'csv_columns: expected 4 fields, got 5');
  assert.match(reason(d(Buffer.from('ws-1,"open,x,y'))), /^csv_syntax: /);
  const strings = ok(dec({ decoder: 'csv', csvColumns: ['a', 'b'], csvSeparator: ';', parseNumbers: false })(Buffer.from('007;1e3')));
  assert.deepEqual(strings.fields, { a: '007', b: '1e3' });
  assert.deepEqual(splitCsv('', ','), ['']);
});

test('kv: key=value pairs by default separated by spaces, commas or semicolons; custom separators; malformed pairs fail', () => {
  const r = ok(dec({ decoder: 'kv' })(Buffer.from('T=21.5 H=40, id=ws-7;ok=yes')));
  assert.deepEqual(r.fields, { T: 21.5, H: 40, id: 'ws-7', ok: 'yes' });
  const custom = ok(dec({ decoder: 'kv', kvSeparator: ':', kvPairSeparator: '|' })(Buffer.from('temp: 3 | site: north gate')));
  assert.deepEqual(custom.fields, { temp: 3, site: 'north gate' });
  assert.match(reason(dec({ decoder: 'kv' })(Buffer.from('T=21.5 garbage'))), /^kv_syntax: "garbage"/);
  assert.match(reason(dec({ decoder: 'kv' })(Buffer.from(' , ;'))), /^kv_syntax: no key=value pairs/);
});

test('nmea: a GGA sentence with a good checksum is decoded with decimal coordinates', () => {
  const line = '$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47';
  const r = ok(dec({ decoder: 'nmea' })(Buffer.from(line)));
  assert.equal(r.fields!.talker, 'GP');
  assert.equal(r.fields!.sentence, 'GGA');
  assert.equal(r.fields!.lat, 48.1173);
  assert.equal(r.fields!.lon, 11.5166667);
  assert.equal(r.fields!.satellites, 8);
  assert.equal(r.fields!.altitude_m, 545.4);
  assert.equal((r.fields!.fields as string[]).length, 14);
  const rmc = ok(dec({ decoder: 'nmea' })(Buffer.from(sentence('GNRMC,083559.00,A,4717.11437,N,00833.91522,W,0.004,77.52,091202,,,A'))));
  assert.equal(rmc.fields!.lat, 47.2852395);
  assert.equal(rmc.fields!.lon, -8.5652537, 'west is negative');
  assert.equal(rmc.fields!.status, 'A');
  const prop = ok(dec({ decoder: 'nmea' })(Buffer.from(sentence('PGRME,15.0,M,45.0,M,25.0,M'))));
  assert.equal(prop.fields!.talker, 'P');
  assert.equal(prop.fields!.sentence, 'GRME');
});

test('nmea: a bad checksum, a missing checksum, garbage and invalid UTF-8 fail with their reason', () => {
  const d = dec({ decoder: 'nmea' });
  assert.equal(reason(d(Buffer.from('$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*48'))), 'nmea_checksum: sentence says 48, computed 47');
  assert.equal(reason(d(Buffer.from('$GPGGA,123519,4807.038,N'))), 'nmea_checksum: no "*hh" checksum');
  assert.ok(ok(dec({ decoder: 'nmea', nmeaRequireChecksum: false })(Buffer.from('$GPGLL,4916.45,N,12311.12,W,225444,A'))).fields!.lat);
  assert.match(reason(d(Buffer.from('GPGGA,1*00'))), /^nmea_syntax: /);
  assert.match(reason(d(Buffer.from('$GPGGA,1*zz'))), /^nmea_syntax: bad checksum field/);
  assert.match(reason(d(invalidUtf8)), /^invalid_utf8: /);
  assert.equal(parseNmea(sentence('gpgga,1'), true).ok, false, 'lower-case address refused');
});
