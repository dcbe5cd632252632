import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterEach, test } from 'node:test';
import { pino } from 'pino';
import { parseConfig, type SerialConfig } from '../../src/config/load.js';
import { SluiceError } from '../../src/errors.js';
import { GapRecorder, type GapReport } from '../../src/journal/gaps.js';
import type { Journal, NewRecord } from '../../src/journal/journal.js';
import { classifierForConfig } from '../../src/journal/retention.js';
import { SqliteJournal } from '../../src/journal/sqlite-journal.js';
import { Metrics } from '../../src/metrics.js';
import { SerialSource, type SerialBinding } from '../../src/sources/serial/serial-source.js';
import { MockBinding, type MockPortBinding } from '../helpers/mock-binding.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait-for.js';

/** Just enough journal for a source: keeps appends, or refuses them as full. */
class FakeJournal {
  records: NewRecord[] = [];
  full = false;
  append(r: NewRecord): number {
    if (this.full) throw new SluiceError('SLUICE_JOURNAL_FULL', 'journal is at max_bytes', { retriable: true });
    this.records.push(r);
    return this.records.length;
  }
}

/** MockBinding, remembering the ports it opened so a test can feed or unplug them. */
function mockBinding(): { binding: SerialBinding; opened: MockPortBinding[] } {
  const opened: MockPortBinding[] = [];
  const binding = {
    ...MockBinding,
    open: async (opts: Parameters<typeof MockBinding.open>[0]) => {
      const p = await MockBinding.open(opts);
      opened.push(p);
      return p;
    },
  } as SerialBinding;
  return { binding, opened };
}

function serialConfig(toml: string): SerialConfig {
  return parseConfig(`[[serial]]\nname = "s"\npath = "/dev/mock0"\nreopen_min_ms = 10\nreopen_max_ms = 20\n${toml}`).serial[0]!;
}

function setup(toml: string, opts: { createPort?: boolean } = {}) {
  if (opts.createPort ?? true) MockBinding.createPort('/dev/mock0', { record: true });
  const journal = new FakeJournal();
  const metrics = new Metrics();
  const gaps: GapReport[] = [];
  const logs: { msg: string; [k: string]: unknown }[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void logs.push(JSON.parse(s)) });
  const { binding, opened } = mockBinding();
  const source = new SerialSource(serialConfig(toml), { journal: journal as unknown as Journal, logger, clock: { now: () => 1700000000000 }, metrics, reportGap: (g) => gaps.push(g), binding, gapWindowMs: 50 });
  const port = () => opened[opened.length - 1]!;
  const feed = (data: string | Buffer) => port().emitData(data);
  return { source, journal, metrics, gaps, logs, opened, port, feed, countLogs: (re: RegExp) => logs.filter((l) => re.test(l.msg)).length };
}

afterEach(() => MockBinding.reset());

const cases: { name: string; toml: string; input: Buffer | string; payloads: unknown[]; topic?: string; key?: string | null }[] = [
  { name: 'line + text', toml: '', input: 'hello\r\nworld\n', payloads: ['hello', 'world'] },
  { name: 'delimiter + raw', toml: 'framing = "delimiter"\ndelimiter = "\\u0003"\ndecoder = "raw"', input: Buffer.from([1, 2, 3, 0xff, 3]), payloads: [[1, 2], [0xff]] },
  { name: 'fixed + raw', toml: 'framing = "fixed"\nframe_length = 3\ndecoder = "raw"', input: Buffer.from([1, 2, 3, 4, 5, 6, 7]), payloads: [[1, 2, 3], [4, 5, 6]] },
  { name: 'regex + kv, key from a field', toml: 'framing = "regex"\nregex = "[;]"\ndecoder = "kv"\nkv_pair_separator = ","\nkey_field = "id"', input: 'id=a,t=1;id=b,t=2;', payloads: [{ id: 'a', t: 1 }, { id: 'b', t: 2 }], key: 'b' },
  { name: 'slip + json', toml: 'framing = "slip"\ndecoder = "json"', input: Buffer.concat([Buffer.from([0xc0]), Buffer.from('{"a":1}'), Buffer.from([0xc0])]), payloads: [{ a: 1 }] },
  { name: 'line + csv with topic template and fixed key', toml: 'decoder = "csv"\ncsv_columns = ["station", "t"]\ntopic = "weather/{name}/{station}"\nkey = "site-1"', input: 'north,3.5\n', payloads: [{ station: 'north', t: 3.5 }], topic: 'weather/s/north', key: 'site-1' },
  { name: 'line + nmea, topic per sentence', toml: 'decoder = "nmea"\ntopic = "gps/{sentence}"', input: '$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47\r\n', payloads: [{ talker: 'GP', sentence: 'GGA' }], topic: 'gps/GGA' },
];

for (const c of cases) {
  test(`through the mock port: ${c.name}`, async () => {
    const { source, journal, feed } = setup(c.toml);
    await source.start();
    assert.ok(source.isOpen);
    feed(c.input);
    await waitFor(() => journal.records.length === c.payloads.length, { what: `${c.payloads.length} records`, timeoutMs: 5000 });
    c.payloads.forEach((expected, i) => {
      const r = journal.records[i]!;
      if (typeof expected === 'string') assert.equal(r.payload.toString(), expected);
      else if (Array.isArray(expected)) assert.deepEqual([...r.payload], expected);
      else assert.deepEqual({ ...JSON.parse(r.payload.toString()), ...(expected as object) }, JSON.parse(r.payload.toString()), 'payload holds the expected fields');
      assert.equal(r.source, 'serial:s');
      assert.equal(r.time, 1700000000000);
      assert.equal(r.headers!['sluice.decoder'], serialConfig(c.toml).decoder);
    });
    const last = journal.records.at(-1)!;
    assert.equal(last.topic, c.topic ?? 'serial/s');
    assert.equal(last.key, c.key === undefined ? null : c.key);
    await source.stop();
  });
}

test('inter-byte timeout framing through the mock port', async () => {
  const { source, journal, feed } = setup('framing = "interbyte_timeout"\ninterbyte_timeout_ms = 20\ndecoder = "raw"');
  await source.start();
  feed(Buffer.from('AB'));
  await waitFor(() => journal.records.length === 1, { what: 'one frame after silence', timeoutMs: 5000 });
  assert.equal(journal.records[0]!.payload.toString(), 'AB');
  await source.stop();
});

test('a frame that fails to decode goes to the error topic raw, with the reason in a header (the default)', async () => {
  const { source, journal, feed, metrics, countLogs } = setup('decoder = "json"');
  await source.start();
  feed('{"ok":1}\n{broken\n{"ok":2}\n{also broken\n');
  await waitFor(() => journal.records.length === 4, { what: '4 records', timeoutMs: 5000 });
  const [good, bad] = journal.records;
  assert.equal(good!.topic, 'serial/s');
  assert.equal(bad!.topic, 'serial/s/errors');
  assert.equal(bad!.payload.toString(), '{broken');
  assert.equal(bad!.headers!['sluice.decoder'], 'json');
  assert.match(bad!.headers!['sluice.error']!, /^invalid_json: /);
  assert.equal(metrics.get('sluice_serial_decode_errors_total', { source: 'serial:s' }), 2);
  assert.equal(countLogs(/frame failed to decode/), 1, 'logged once');
  await source.stop();
});

test('on_decode_error = "drop": failed frames are counted and reported as one coalesced gap', async () => {
  const { source, journal, feed, gaps } = setup('decoder = "nmea"\non_decode_error = "drop"');
  await source.start();
  const badChecksum = '$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*48';
  const garbage = '$GPGGA,1,*00';
  feed(`${badChecksum}\n${garbage}\n$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47\n`);
  await waitFor(() => gaps.length === 1, { what: 'a gap report', timeoutMs: 5000 });
  assert.equal(journal.records.length, 1, 'the good sentence is journaled');
  assert.equal(gaps[0]!.reason, 'decode_failed');
  assert.equal(gaps[0]!.source, 'serial:s');
  assert.equal(gaps[0]!.count, 2);
  assert.equal(gaps[0]!.bytes, badChecksum.length + garbage.length);
  assert.match(gaps[0]!.detail!, /nmea_checksum/);
  await source.stop();
});

test('journal full: frames are dropped, counted in one gap per window with the true count, never thrown', async () => {
  const { source, journal, feed, gaps, countLogs } = setup('');
  await source.start();
  journal.full = true;
  for (let i = 0; i < 100; i++) feed(`line ${i}\n`);
  await waitFor(() => gaps.reduce((n, g) => n + g.count, 0) === 100, { what: '100 drops reported', timeoutMs: 5000 });
  assert.ok(gaps.length <= 3, `coalesced, got ${gaps.length} gap reports`);
  assert.ok(gaps.every((g) => g.reason === 'journal_full' && g.source === 'serial:s'));
  assert.equal(countLogs(/journal full/), 1);
  journal.full = false;
  feed('after\n');
  await waitFor(() => journal.records.length === 1, { what: 'journaling again', timeoutMs: 5000 });
  await source.stop();
});

test('an oversized frame is discarded, counted, reported and logged once; the port keeps reading', async () => {
  const { source, journal, feed, metrics, gaps, countLogs } = setup('max_frame_bytes = 16');
  await source.start();
  feed(`${'x'.repeat(100)}\nok\n${'y'.repeat(40)}\nok2\n`);
  await waitFor(() => journal.records.length === 2 && gaps.length === 1, { what: 'two records and a gap', timeoutMs: 5000 });
  assert.deepEqual(journal.records.map((r) => r.payload.toString()), ['ok', 'ok2']);
  assert.equal(metrics.get('sluice_source_rejected_total', { source: 'serial:s', reason: 'frame_too_large' }), 2);
  assert.equal(gaps[0]!.reason, 'frame_too_large');
  assert.equal(gaps[0]!.count, 2);
  assert.equal(countLogs(/frame longer than max_frame_bytes/), 1);
  await source.stop();
});

test('1 MB without a delimiter through the mock port: the source never holds more than max_frame_bytes and reads on', async () => {
  const { source, journal, feed, metrics } = setup('max_frame_bytes = 4096');
  await source.start();
  let maxHeld = 0;
  const chunk = Buffer.alloc(16384, 0x41);
  for (let sent = 0; sent < 1 << 20; sent += chunk.length) {
    feed(chunk);
    await new Promise((r) => setImmediate(r));
    maxHeld = Math.max(maxHeld, source.bufferedBytes);
  }
  feed('\nok\n');
  await waitFor(() => journal.records.length === 1, { what: 'the next line', timeoutMs: 10000 });
  assert.equal(journal.records[0]!.payload.toString(), 'ok');
  assert.ok(maxHeld <= 4096, `held ${maxHeld} bytes`);
  assert.equal(metrics.get('sluice_source_rejected_total', { source: 'serial:s', reason: 'frame_too_large' }), 1);
  await source.stop();
});

test('missing at start, then plugged in: start does not fail, logged lost once, recovered once, data flows', async () => {
  const { source, journal, feed, countLogs, opened } = setup('', { createPort: false });
  await source.start();
  assert.equal(source.isOpen, false);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(countLogs(/serial port lost/), 1, 'several failed attempts, one log line');
  MockBinding.createPort('/dev/mock0');
  await waitFor(() => source.isOpen, { what: 'reopened', timeoutMs: 5000 });
  assert.equal(countLogs(/serial port recovered/), 1);
  assert.equal(opened.length, 1);
  feed('late\n');
  await waitFor(() => journal.records.length === 1, { what: 'a record', timeoutMs: 5000 });
  await source.stop();
});

test('unplugged while running: the partial frame is dropped, lost is logged once, and reading resumes on replug', async () => {
  const { source, journal, feed, port, countLogs, metrics } = setup('');
  await source.start();
  feed('one\npart');
  await waitFor(() => journal.records.length === 1, { what: 'first record', timeoutMs: 5000 });
  await waitFor(() => (port() as unknown as { pendingRead: unknown }).pendingRead, { what: 'a pending read', timeoutMs: 5000 });
  MockBinding.reset(); // the device is gone: reopening fails until it comes back
  (port() as unknown as { pendingRead: (e: Error) => void }).pendingRead(Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' }));
  await waitFor(() => !source.isOpen && countLogs(/serial port lost/) === 1, { what: 'lost', timeoutMs: 5000 });
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(countLogs(/serial port lost/), 1);
  assert.equal(metrics.get('sluice_serial_partial_frames_total', { source: 'serial:s' }), 1);
  MockBinding.createPort('/dev/mock0');
  await waitFor(() => source.isOpen, { what: 'reopened', timeoutMs: 5000 });
  feed('two\n');
  await waitFor(() => journal.records.length === 2, { what: 'second record', timeoutMs: 5000 });
  assert.deepEqual(journal.records.map((r) => r.payload.toString()), ['one', 'two']);
  assert.equal(countLogs(/serial port recovered/), 1);
  await source.stop();
});

test('polled sensor: the request is written each interval; silences are counted and logged once per outage', async () => {
  const { source, journal, feed, port, metrics, countLogs } = setup('poll_request_hex = "3f0d"\npoll_interval_ms = 100\npoll_timeout_ms = 50');
  await source.start();
  await waitFor(() => port().recording.length >= 4, { what: 'two requests', timeoutMs: 5000 });
  assert.equal(port().recording.subarray(0, 2).toString('hex'), '3f0d');
  await waitFor(() => metrics.get('sluice_serial_poll_timeouts_total', { source: 'serial:s' }) >= 2, { what: 'two timeouts', timeoutMs: 5000 });
  assert.equal(countLogs(/did not respond/), 1);
  // From now on the sensor answers every request.
  const answered = new Set<number>();
  const responder = setInterval(() => {
    const n = port().recording.length;
    if (n > 0 && !answered.has(n)) {
      answered.add(n);
      feed('21.5\n');
    }
  }, 2);
  try {
    await waitFor(() => countLogs(/responding again/) === 1, { what: 'responding again', timeoutMs: 15000 });
    await waitFor(() => journal.records.length >= 2, { what: 'responses journaled', timeoutMs: 5000 });
  } finally {
    clearInterval(responder);
  }
  await source.stop();
});

test('stop while the port is missing ends the reopen loop', async () => {
  const { source, opened } = setup('', { createPort: false });
  await source.start();
  await source.stop();
  const attempts = opened.length;
  MockBinding.createPort('/dev/mock0');
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(opened.length, attempts);
  assert.equal(source.isOpen, false);
});

test('a real bounded journal (serial\'s default policy): past max_bytes frames are dropped with gap records and counted; they flow again once it has room', async () => {
  MockBinding.createPort('/dev/mock0', { record: true });
  const tmp = tempDir();
  const config = parseConfig('[[serial]]\nname = "s"\npath = "/dev/mock0"\nreopen_min_ms = 10\nreopen_max_ms = 20\n[[sink]]\nbrokers = ["k:9092"]\n[[sink.route]]\nmatch = "serial/#"\ntopic = "serial"\n');
  assert.equal(config.serial[0]!.overflow, 'backpressure', 'a port cannot pause: its default policy drops new frames');
  const metrics = new Metrics();
  const logger = pino({ level: 'silent' });
  const clock = { now: () => 1700000000000 };
  const reported: GapReport[] = [];
  let recorder: GapRecorder | null = null;
  const reportGap = (g: GapReport) => {
    reported.push(g);
    recorder!.report(g);
  };
  const journal = new SqliteJournal({ path: join(tmp.path, 'j.db'), durability: 'crash', commitDelayMs: 1, commitMaxRecords: 20, maxBytes: 128 * 1024, classify: classifierForConfig(config), reportGap, logger, clock, maintenanceIntervalMs: 60_000 });
  recorder = new GapRecorder({ journal, metrics, logger, clock, gatewayId: 'gw' });
  const { binding, opened } = mockBinding();
  const source = new SerialSource(config.serial[0]!, { journal, logger, clock, metrics, reportGap, binding, gapWindowMs: 50 });
  const feed = (data: string) => opened[opened.length - 1]!.emitData(data);
  await journal.start();
  journal.registerSinks(['kafka']);
  await source.start();
  try {
    let fed = 0;
    const feedLines = async (n: number) => {
      let s = '';
      for (let i = 0; i < n; i++) s += `${String(fed + i).padStart(6, '0')} ${'x'.repeat(400)}\n`;
      fed += n;
      feed(s);
      await waitFor(() => metrics.get('sluice_source_received_total', { source: 'serial:s' }) === fed, { what: `${fed} frames read`, timeoutMs: 5000 });
      await waitFor(() => journal.committedSeq === journal.lastAssignedSeq, { what: 'a commit', timeoutMs: 5000 });
    };
    const journaled = () => journal.read(0, 1e9, 1e12).filter((r) => r.source === 'serial:s').map((r) => Number(r.payload.subarray(0, 6).toString()));
    const dropped = () => reported.filter((g) => g.reason === 'journal_full' && g.source === 'serial:s').reduce((n, g) => n + g.count, 0);

    while (journal.accepting) {
      await feedLines(10);
      assert.ok(fed < 5000, 'the journal reached max_bytes');
    }
    assert.equal(journal.stats().full, 'max_bytes');
    await feedLines(30); // all dropped: the journal is full
    const beforeRoom = journaled().length;
    await waitFor(() => beforeRoom + dropped() === fed, { what: `every frame journaled or reported dropped (${fed})`, timeoutMs: 5000 });
    assert.ok(dropped() >= 30, `dropped ${dropped()}`);
    assert.ok(reported.filter((g) => g.reason === 'journal_full').length <= 3, 'drops coalesced into few gap records');
    assert.equal(metrics.get('sluice_dropped_records_total', { source: 'serial:s', reason: 'journal_full' }), dropped(), 'counted in metrics');
    assert.ok(metrics.get('sluice_gap_records_total', { reason: 'journal_full' }) >= 1);
    assert.ok(reported.some((g) => g.reason === 'journal_full_max_bytes' && g.count === 0), 'the full journal raised an alarm');
    // The gap records themselves got into the full journal, to be shipped like readings.
    journal.flush();
    const gapRecords = journal.read(0, 1e9, 1e12).filter((r) => r.source === 'sluice:gaps').map((r) => JSON.parse(r.payload.toString()) as { reason: string; source: string; count: number });
    assert.equal(gapRecords.filter((g) => g.reason === 'journal_full' && g.source === 'serial:s').reduce((n, g) => n + g.count, 0), dropped());
    assert.deepEqual(journaled(), [...Array(beforeRoom).keys()], 'the journaled frames are the first ones, in order, none twice');

    // A sink confirms everything: room again, and the next frames are journaled.
    journal.ack('kafka', journal.committedSeq);
    assert.equal(journal.accepting, true);
    const droppedBefore = dropped();
    const firstAfter = fed;
    await feedLines(10);
    assert.deepEqual(journaled(), [...Array(10).keys()].map((i) => firstAfter + i), 'frames flow again');
    await source.stop(); // flushes any drop still being coalesced
    assert.equal(dropped(), droppedBefore, 'nothing dropped once the journal had room');
  } finally {
    await source.stop();
    await journal.stop();
    tmp.cleanup();
  }
});

for (const [framing, toml] of [
  ['line', ''],
  ['regex', 'framing = "regex"\nregex = "\\\\r?\\\\n"'],
] as const) {
  test(`${framing} framing: a frame of exactly max_frame_bytes is kept whether it ends in LF or CRLF (even split between reads); one byte more is dropped either way`, async () => {
    const { source, journal, feed, gaps } = setup(`max_frame_bytes = 16\ndecoder = "raw"\n${toml}`);
    await source.start();
    const exact = 'x'.repeat(16);
    feed(`${exact}\n${exact}\r\n${exact}\r`);
    feed(`\n${exact}y\n${exact}y\r\nend\n`);
    await waitFor(() => journal.records.length === 4 && gaps.length === 1, { what: 'four records and a gap', timeoutMs: 5000 });
    assert.deepEqual(journal.records.map((r) => r.payload.toString()), [exact, exact, exact, 'end']);
    assert.deepEqual([gaps[0]!.reason, gaps[0]!.count, gaps[0]!.bytes], ['frame_too_large', 2, 34]);
    await source.stop();
  });
}

test('an oversized frame read in many chunks is counted with all its bytes up to the delimiter, in the gap record and in sluice_dropped_bytes_total', async () => {
  const { source, journal, feed, metrics, gaps } = setup('max_frame_bytes = 4096');
  const recorder = new GapRecorder({ journal: journal as unknown as Journal, metrics, logger: pino({ level: 'silent' }), clock: { now: () => 0 }, gatewayId: 'gw' });
  (source as unknown as { drops: { reportGap: unknown } }).drops.reportGap = (g: GapReport) => (gaps.push(g), recorder.report(g));
  await source.start();
  const total = 5261082;
  const chunk = Buffer.alloc(65536, 0x41);
  for (let sent = 0; sent < total; sent += chunk.length) {
    feed(chunk.subarray(0, Math.min(chunk.length, total - sent)));
    await new Promise((r) => setImmediate(r));
  }
  feed('\nok\n');
  await waitFor(() => gaps.length === 1, { what: 'the gap', timeoutMs: 10000 });
  assert.equal(gaps[0]!.bytes, total);
  assert.equal(metrics.get('sluice_dropped_bytes_total', { source: 'serial:s', reason: 'frame_too_large' }), total);
  assert.equal(journal.records.filter((r) => r.source === 'serial:s').map((r) => r.payload.toString()).join(), 'ok');
  await source.stop();
});

test('a partial frame cut by an unplug is counted and reported in a gap record with its bytes; so is one cut by stop', async () => {
  const { source, journal, feed, port, metrics, gaps } = setup('');
  await source.start();
  feed('one\npart');
  await waitFor(() => journal.records.length === 1 && source.bufferedBytes === 4, { what: 'first record and the partial', timeoutMs: 5000 });
  await waitFor(() => (port() as unknown as { pendingRead: unknown }).pendingRead, { what: 'a pending read', timeoutMs: 5000 });
  (port() as unknown as { pendingRead: (e: Error) => void }).pendingRead(Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' }));
  await waitFor(() => gaps.length === 1, { what: 'the partial frame reported', timeoutMs: 5000 });
  assert.deepEqual([gaps[0]!.reason, gaps[0]!.count, gaps[0]!.bytes], ['partial_frame', 1, 4]);
  assert.equal(metrics.get('sluice_serial_partial_frames_total', { source: 'serial:s' }), 1);
  await waitFor(() => source.isOpen, { what: 'reopened', timeoutMs: 5000 });
  feed('tail');
  await waitFor(() => source.bufferedBytes === 4, { what: 'a second partial', timeoutMs: 5000 });
  await source.stop();
  assert.deepEqual(gaps.slice(1).map((g) => [g.reason, g.count, g.bytes]), [['partial_frame', 1, 4]]);
});
