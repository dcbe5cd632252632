import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { pino, type Logger } from 'pino';
import { parseConfig } from '../../src/config/load.js';
import { GapRecorder } from '../../src/journal/gaps.js';
import { SqliteJournal } from '../../src/journal/sqlite-journal.js';
import { Metrics } from '../../src/metrics.js';
import { MqttSource } from '../../src/sources/mqtt-source.js';
import { SerialSource, type SerialBinding } from '../../src/sources/serial/serial-source.js';
import { systemClock } from '../../src/util/clock.js';
import { MockBinding, type MockPortBinding } from '../helpers/mock-binding.js';
import { MosquittoBroker } from '../helpers/mosquitto.js';
import { Publisher } from '../helpers/publisher.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait-for.js';

/*
 * Property-based input: generated MQTT topics and payloads through a real Mosquitto, and
 * generated serial byte streams through the mock binding, each into MqttSource / SerialSource
 * and a real SQLite journal. Whatever comes in, nothing throws, nothing is logged with a stack
 * trace, the source keeps running, and every message or frame is accounted for: journaled byte
 * for byte, or counted as rejected/dropped with its reason and bytes. The seed is fixed (override
 * with FUZZ_SEED); fast-check prints seed and path of a failing case.
 */

const SEED = Number(process.env.FUZZ_SEED ?? 20261201);
const tmp = tempDir();
const broker = new MosquittoBroker(join(tmp.path, 'mosquitto'));
before(() => broker.start());
after(async () => {
  await broker.stop();
  tmp.cleanup();
});

function capture(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  return { logger: pino({ level: 'debug' }, { write: (s: string) => void lines.push(s) }), lines };
}

const noStack = (lines: string[]): void => assert.ok(!lines.some((l) => /\\n\s+at |"stack":/.test(l)), `no stack trace in the log:\n${lines.find((l) => /\\n\s+at |"stack":/.test(l))?.slice(0, 2000)}`);

async function openJournal(name: string): Promise<SqliteJournal> {
  const config = parseConfig(`[journal]\npath = "${join(tmp.path, name, 'journal.db')}"\ncommit_delay_ms = 1\n`);
  const journal = new SqliteJournal({ ...config.journal, logger: pino({ level: 'silent' }), clock: systemClock });
  await journal.start();
  return journal;
}

// A topic level: characters a broker takes in a topic name, emoji and all (no wildcards, no "/";
// Mosquitto disconnects a publisher for control characters and non-characters, which MQTT discourages).
const level = fc.string({ unit: fc.oneof(fc.constantFrom('a', 'Z', '0', ' ', '-', '.', '$', 'ü', '水', '😀'), fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }).filter((c) => !/[+#/\u0000-\u001f\u007f-\u009f\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff]/.test(c))), maxLength: 12 });
const message = fc.record({
  topic: fc.array(level, { minLength: 1, maxLength: 6 }).map((l) => `fz/${l.join('/')}`),
  payload: fc.oneof({ weight: 4, arbitrary: fc.uint8Array({ maxLength: 600 }) }, { weight: 1, arbitrary: fc.uint8Array({ minLength: 1000, maxLength: 3000 }) }),
  qos: fc.constantFrom(0 as const, 1 as const, 2 as const),
});

test(`MQTT: generated topics and payloads (seed ${SEED}) are journaled byte for byte or rejected with a reason; nothing throws, the source stays connected`, async () => {
  const maxPayload = 1024;
  const config = parseConfig(`
[[mqtt]]
name = "fz"
url = "${broker.url}"
client_id = "fuzz"
max_payload_bytes = ${maxPayload}
[[mqtt.subscribe]]
topic = "fz/#"
qos = 2
`);
  const log = capture();
  const journal = await openJournal('mqtt');
  const metrics = new Metrics();
  const source = new MqttSource(config.mqtt[0]!, { journal, logger: log.logger, clock: systemClock, metrics, gatewayId: 'gw' });
  await source.start();
  const pub = new Publisher(broker.url);
  await pub.connect();
  const received = (): number => metrics.get('sluice_source_received_total', { source: 'mqtt:fz' });
  const rejected = (): number => metrics.get('sluice_source_rejected_total', { source: 'mqtt:fz', reason: 'payload_too_large' });
  let cases = 0;
  try {
    await waitFor(() => source.connected && source.subscriptions?.['fz/#'] === 2, { what: 'subscribed' });
    await fc.assert(
      fc.asyncProperty(fc.array(message, { minLength: 1, maxLength: 30 }), async (batch) => {
        const [r0, x0, seq0] = [received(), rejected(), journal.lastAssignedSeq];
        for (const m of batch) await withTimeout(pub.publish(m.topic, Buffer.from(m.payload), m.qos), `publish to ${JSON.stringify(m.topic)}`);
        await waitFor(() => received() >= r0 + batch.length, { what: () => `${batch.length} messages received (${received() - r0})`, timeoutMs: 10000, intervalMs: 20 });
        journal.flush();
        const journaled = journal.read(seq0, 100000, 1 << 30);
        const accepted = batch.filter((m) => m.payload.length <= maxPayload);
        assert.equal(received() - r0, batch.length, 'each message received once');
        assert.equal(rejected() - x0, batch.length - accepted.length, 'the rest rejected as payload_too_large');
        const key = (topic: string, payload: Uint8Array): string => `${topic}\u0000${Buffer.from(payload).toString('hex')}`;
        assert.deepEqual(journaled.map((r) => key(r.topic, r.payload)).sort(), accepted.map((m) => key(m.topic, m.payload)).sort(), 'journaled byte for byte');
        assert.ok(source.connected, 'still connected');
        cases += batch.length;
      }),
      { seed: SEED, numRuns: 50, endOnFailure: true },
    );
  } finally {
    await pub.close();
    await source.stop();
    await journal.stop();
  }
  noStack(log.lines);
  console.log(`MQTT fuzz: ${cases} generated messages`);
});

/** Where a framing ends a frame, for the reference model; null: no simple model (only the weaker checks apply). */
const framings: { name: string; toml: string; delimiter: number | null; fixed?: number; special: Uint8Array[] }[] = [
  { name: 'line', toml: '', delimiter: 0x0a, special: [Uint8Array.of(0x0a), Uint8Array.of(0x0d, 0x0a), Uint8Array.of(0x0d)] },
  { name: 'delimiter', toml: 'framing = "delimiter"\ndelimiter_hex = "03"', delimiter: 0x03, special: [Uint8Array.of(0x03)] },
  { name: 'fixed', toml: 'framing = "fixed"\nframe_length = 10', delimiter: null, fixed: 10, special: [] },
  { name: 'regex', toml: 'framing = "regex"\nregex = "\\\\r?\\\\n|;"', delimiter: null, special: [Uint8Array.of(0x0a), Uint8Array.of(0x0d, 0x0a), Uint8Array.of(0x3b)] },
  { name: 'slip', toml: 'framing = "slip"', delimiter: null, special: [Uint8Array.of(0xc0), Uint8Array.of(0xdb, 0xdc), Uint8Array.of(0xdb)] },
  { name: 'interbyte_timeout', toml: 'framing = "interbyte_timeout"\ninterbyte_timeout_ms = 5', delimiter: null, special: [] },
];

const MAX_FRAME = 64;
const RUNS = 80;

/** What the framer must do with `stream`: frames kept, oversized frames' bytes, and the partial frame left at the end. */
function model(stream: Buffer, f: (typeof framings)[number]): { frames: string[]; oversized: number[]; partial: number } {
  if (f.fixed) {
    const frames: string[] = [];
    let o = 0;
    for (; o + f.fixed <= stream.length; o += f.fixed) frames.push(stream.subarray(o, o + f.fixed).toString('hex'));
    return { frames, oversized: [], partial: stream.length - o };
  }
  const pieces: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < stream.length; i++) {
    if (stream[i] === f.delimiter) {
      pieces.push(stream.subarray(start, i));
      start = i + 1;
    }
  }
  const frames: string[] = [];
  const oversized: number[] = [];
  const line = f.name === 'line';
  for (let p of pieces) {
    if (line && p.length > 0 && p[p.length - 1] === 0x0d) p = p.subarray(0, p.length - 1);
    if (p.length > MAX_FRAME) oversized.push(p.length);
    else if (p.length > 0) frames.push(p.toString('hex'));
  }
  const rest = stream.length - start;
  const holds = line ? MAX_FRAME + 1 : MAX_FRAME;
  if (rest > holds) return { frames, oversized: [...oversized, rest], partial: 0 };
  return { frames, oversized, partial: rest };
}

for (const framing of framings) {
  test(`serial ${framing.name} framing: generated byte streams (seed ${SEED}) are journaled or counted as dropped with their bytes; nothing throws, the port stays open`, async () => {
    const journal = await openJournal(`serial-${framing.name}`);
    const log = capture();
    const chunk = fc.oneof(
      { weight: 3, arbitrary: fc.uint8Array({ maxLength: 40 }) },
      { weight: 1, arbitrary: fc.uint8Array({ minLength: MAX_FRAME - 2, maxLength: MAX_FRAME + 3 }) },
      { weight: 1, arbitrary: fc.uint8Array({ minLength: 100, maxLength: 500 }) },
      ...(framing.special.length ? [{ weight: 3, arbitrary: fc.constantFrom(...framing.special) }] : []),
    );
    let bytes = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(chunk, { maxLength: 30 }), async (chunks) => {
        MockBinding.createPort('/dev/fuzz0', { record: true });
        const opened: MockPortBinding[] = [];
        const binding = { ...MockBinding, open: async (o: Parameters<typeof MockBinding.open>[0]) => (opened.push(await MockBinding.open(o)), opened.at(-1)!) } as SerialBinding;
        const metrics = new Metrics();
        const gaps = new GapRecorder({ journal, metrics, logger: log.logger, clock: systemClock, gatewayId: 'gw' });
        const cfg = parseConfig(`[[serial]]\nname = "fz"\npath = "/dev/fuzz0"\ndecoder = "raw"\nmax_frame_bytes = ${MAX_FRAME}\n${framing.toml}\n`).serial[0]!;
        const source = new SerialSource(cfg, { journal, logger: log.logger, clock: systemClock, metrics, reportGap: gaps.report, binding, gapWindowMs: 10 });
        const seq0 = journal.lastAssignedSeq;
        try {
          await source.start();
          assert.ok(source.isOpen);
          for (const c of chunks) opened[0]!.emitData(Buffer.from(c));
          bytes += stream(chunks).length;
          // Let the port's reads (and an inter-byte timeout) drain before unplugging.
          await new Promise((r) => setTimeout(r, framing.name === 'interbyte_timeout' ? 20 : 2));
          assert.ok(source.isOpen, 'still open');
        } finally {
          await source.stop();
          MockBinding.reset();
        }
        journal.flush();
        const records = journal.read(seq0, 100000, 1 << 30).filter((r) => r.source === 'serial:fz');
        const m = (name: string, reason?: string): number => metrics.get(name, reason ? { source: 'serial:fz', reason } : { source: 'serial:fz' });
        // Every frame the framer produced is journaled (raw decoder: nothing fails to decode).
        assert.equal(records.length, m('sluice_source_received_total'));
        assert.equal(m('sluice_source_rejected_total', 'frame_too_large'), m('sluice_dropped_records_total', 'frame_too_large'));
        if (framing.delimiter !== null || framing.fixed) {
          const want = model(stream(chunks), framing);
          assert.deepEqual(records.map((r) => r.payload.toString('hex')), want.frames, 'the frames, byte for byte');
          assert.equal(m('sluice_dropped_records_total', 'frame_too_large'), want.oversized.length);
          assert.equal(m('sluice_dropped_bytes_total', 'frame_too_large'), want.oversized.reduce((a, b) => a + b, 0), 'every byte of each oversized frame');
          assert.equal(m('sluice_dropped_bytes_total', 'partial_frame'), want.partial, 'the partial frame at the end');
        } else {
          // No simple model: at least nothing kept is over the limit, and bytes are not invented.
          assert.ok(records.every((r) => r.payload.length > 0 && r.payload.length <= MAX_FRAME));
          const kept = records.reduce((a, r) => a + r.payload.length, 0);
          assert.ok(kept + m('sluice_dropped_bytes_total', 'frame_too_large') + m('sluice_dropped_bytes_total', 'partial_frame') <= stream(chunks).length);
        }
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
    await journal.stop();
    noStack(log.lines);
    console.log(`serial ${framing.name} fuzz: ${RUNS} streams, ${bytes} bytes`);
  });
}

function stream(chunks: Uint8Array[]): Buffer {
  return Buffer.concat(chunks.map((c) => Buffer.from(c)));
}

/** A publish the broker never acknowledges fails the case instead of hanging the file. */
function withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), 5000)))]).finally(() => clearTimeout(timer));
}
