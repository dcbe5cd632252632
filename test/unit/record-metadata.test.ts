import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import fc from 'fast-check';
import kafkajs from 'kafkajs';
import { pino } from 'pino';
import { parseConfig } from '../../src/config/load.js';
import type { JournalRecord, TimeQuality } from '../../src/journal/journal.js';
import { SqliteJournal } from '../../src/journal/sqlite-journal.js';
import { Metrics } from '../../src/metrics.js';
import { cachedDefaultPartitioner, KeyBuffers } from '../../src/sinks/cached-partitioner.js';
import { adoptCommittedCursor, lastShipped } from '../../src/sinks/exactly-once.js';
import type { CommittedCursor, OutgoingBatch } from '../../src/sinks/kafka-client.js';
import { KafkaSink } from '../../src/sinks/kafka-sink.js';
import { decodeMetadata, legacyHeaders, METADATA_HEADER, MetadataEncoder, metadataOf } from '../../src/sinks/record-metadata.js';
import { systemClock } from '../../src/util/clock.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait-for.js';

const tmp = tempDir();
after(() => tmp.cleanup());
const logger = pino({ level: 'silent' });

const record = (over: Partial<JournalRecord> = {}): JournalRecord => ({ seq: 42, time: 1_700_000_000_123, source: 'mqtt:local', topic: 'dev/a/reading', key: null, payload: Buffer.from('{}'), headers: null, ...over });

test('compact header: the documented text, topic last and as it is', () => {
  const enc = new MetadataEncoder('pi-7');
  assert.equal(enc.encode(record()).toString(), '1|pi-7|mqtt:local|42|1700000000123|||dev/a/reading');
  assert.equal(enc.encode(record({ timeQuality: 'synced' })).toString(), '1|pi-7|mqtt:local|42|1700000000123|synced||dev/a/reading');
  assert.equal(enc.encode(record({ seq: 7, time: 1_700_000_005_000, clockTime: 946_684_800_000, timeQuality: 'corrected', topic: 'a|b,c/ü' })).toString(), '1|pi-7|mqtt:local|7|1700000005000|corrected|946684800000|a|b,c/ü');
  // What a consumer in any language does: split on the first seven "|", the rest is the topic.
  const [version, gateway, source, seq, time, quality, clock, ...rest] = enc.encode(record({ topic: 'x|y|z' })).toString().split('|');
  assert.deepEqual([version, gateway, source, seq, time, quality, clock, rest.join('|')], ['1', 'pi-7', 'mqtt:local', '42', '1700000000123', '', '', 'x|y|z']);
});

test('compact header round-trips every field, for any topic (delimiters, commas, unicode) and any gateway or source', () => {
  const enc = new Map<string, MetadataEncoder>();
  fc.assert(
    fc.property(
      fc.string({ minLength: 1, maxLength: 20, unit: 'binary' }),
      fc.string({ minLength: 1, maxLength: 20, unit: 'binary' }),
      fc.string({ maxLength: 60, unit: fc.constantFrom('|', ',', '=', '/', '%', '7', 'C', 'ü', '€', '😀', ' ', 'a', '\\') }),
      fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
      fc.integer({ min: 0, max: 4_102_444_800_000 }),
      fc.option(fc.constantFrom<TimeQuality>('synced', 'corrected', 'unsynced'), { nil: undefined }),
      fc.option(fc.integer({ min: 0, max: 4_102_444_800_000 }), { nil: undefined }),
      (gateway, source, topic, seq, time, timeQuality, clockTime) => {
        let e = enc.get(gateway);
        if (!e) enc.set(gateway, (e = new MetadataEncoder(gateway)));
        const r = record({ source, topic, seq, time, timeQuality, clockTime });
        const m = decodeMetadata(e.encode(r));
        assert.ok(m);
        assert.deepEqual(m, { gateway, source, seq, time: String(time), topic, ...(timeQuality ? { timeQuality } : {}), ...(clockTime !== undefined ? { clockTime: String(clockTime) } : {}) });
        // The same from the string kcat or a client library hands over.
        assert.deepEqual(decodeMetadata(e.encode(r).toString('utf8')), m);
      },
    ),
    { numRuns: 500 },
  );
});

test('the cached text is per source and per topic: interleaved records never borrow each other\'s', () => {
  const enc = new MetadataEncoder('gw');
  const a = record({ source: 'mqtt:a', topic: 't/1' });
  const b = record({ source: 'serial:b', topic: 't/2', seq: 43 });
  for (let i = 0; i < 3; i++) {
    assert.equal(enc.encode(a).toString(), '1|gw|mqtt:a|42|1700000000123|||t/1');
    assert.equal(enc.encode(b).toString(), '1|gw|serial:b|43|1700000000123|||t/2');
  }
});

test('a value that is not a version-1 compact header decodes to null, not to a wrong record', () => {
  for (const v of ['', 'garbage', '2|gw|s|1|2|||t', '1|gw|s|x|2|||t', '1|gw|s|1||||t', '1|gw|s|1|2|great||t', '1|gw|s|-1|2|||t', '1|gw|s|1|2||t']) assert.equal(decodeMetadata(v), null, v);
});

test('metadataOf reads both forms alike: the compact header and the legacy sluice.* headers of earlier versions', () => {
  const enc = new MetadataEncoder('gw');
  for (const r of [record(), record({ timeQuality: 'corrected', clockTime: 5, topic: 'a|b' }), record({ timeQuality: 'unsynced' })]) {
    assert.deepEqual(metadataOf({ [METADATA_HEADER]: enc.encode(r) }), metadataOf(legacyHeaders(r, 'gw')));
  }
  assert.equal(metadataOf({ other: 'x' }), null);
});

test('exactly-once recovery: the cursor records written before and after the upgrade say the same, and an old one is adopted', async () => {
  const journal = new SqliteJournal({ path: join(tmp.path, 'eos.db'), durability: 'crash', commitDelayMs: 0, commitMaxRecords: 1000, logger, clock: systemClock });
  await journal.start();
  journal.registerSinks(['k']);
  for (let i = 0; i < 10; i++) journal.append({ time: 1_700_000_000_000 + i, source: 'mqtt:x', topic: `dev/d${i}|x`, key: null, payload: Buffer.from(String(i)), headers: null });
  journal.flush();
  const records = journal.read(0, 6, Number.MAX_SAFE_INTEGER);
  const enc = new MetadataEncoder('gw');
  // Two topics, so the highest seq is not the last message of the first topic.
  const batch = (headers: (r: JournalRecord) => OutgoingBatch['topicMessages'][number]['messages'][number]['headers']): OutgoingBatch => ({
    topicMessages: [0, 1].map((parity) => ({ topic: `t${parity}`, messages: records.filter((r) => r.seq % 2 === parity).map((r) => ({ key: null, value: r.payload, timestamp: String(r.time), headers: headers(r) })) })),
  });
  const legacy = lastShipped(batch((r) => legacyHeaders(r, 'gw')));
  const compact = lastShipped(batch((r) => ({ [METADATA_HEADER]: enc.encode(r) })));
  assert.deepEqual(compact, { seq: 6, time: String(1_700_000_000_005), topic: 'dev/d5|x' });
  assert.deepEqual(compact, legacy);
  // A cursor record's value exactly as the previous version wrote it to the cursor topic.
  const old = JSON.parse('{"seq":6,"gateway":"gw","sink":"k","time":"2026-12-01T10:00:00.000Z","last":{"seq":6,"time":"1700000000005","topic":"dev/d5|x"}}') as CommittedCursor;
  adoptCommittedCursor(journal, 'k', { seq: old.seq, last: old.last }, logger);
  assert.equal(journal.cursor('k'), 6, 'the records the old version committed are not sent again');
  await journal.stop();
});

test('the cached partitioner picks exactly what kafkajs\'s default (Java murmur2) partitioner picks, for string and Buffer keys, and follows a partition count change', () => {
  const reference = kafkajs.Partitioners.DefaultPartitioner();
  const cached = cachedDefaultPartitioner();
  const keys = new KeyBuffers();
  const meta = (n: number) => Array.from({ length: n }, (_, i) => ({ partitionId: i, leader: 0, partitionErrorCode: 0, replicas: [0], isr: [0] }));
  for (const n of [3, 7, 3, 12]) {
    for (let i = 0; i < 500; i++) {
      const k = `device-${i}-ü`;
      for (const key of [k, keys.get(k)!]) {
        for (let again = 0; again < 2; again++) {
          const args = { topic: 't', partitionMetadata: meta(n), message: { key, value: null } };
          assert.equal(cached(args), reference(args), `${k} over ${n} partitions`);
        }
      }
    }
  }
  assert.equal(keys.get('a'), keys.get('a'), 'one Buffer per key string');
  assert.equal(cached({ topic: 't', partitionMetadata: meta(3), message: { key: 'a', partition: 2, value: null } }), 2, 'an explicit partition wins');
});

async function shipOne(name: string, sinkExtra: string, r: Omit<JournalRecord, 'seq'>): Promise<OutgoingBatch['topicMessages'][number]['messages'][number]> {
  const config = parseConfig(`
[journal]
path = "${join(tmp.path, name, 'journal.db')}"
[[sink]]
brokers = ["127.0.0.1:1"]
linger_ms = 0
${sinkExtra}
[[sink.route]]
match = "dev/+d/#"
topic = "t"
key = "{d}"
`);
  const journal = new SqliteJournal({ ...config.journal, logger, clock: systemClock });
  await journal.start();
  journal.registerSinks(['kafka']);
  const sent: OutgoingBatch[] = [];
  const sink = new KafkaSink(config.sink[0]!, { journal, logger, metrics: new Metrics(), clock: systemClock, gatewayId: 'gw', createClient: () => ({ connect: async () => undefined, send: async (b) => void sent.push(b), disconnect: async () => undefined }) });
  await sink.start();
  journal.append(r);
  journal.flush();
  await waitFor(() => (journal.cursor('kafka') >= 1 ? true : null), { what: 'shipped' });
  await sink.stop();
  await journal.stop();
  return sent[0]!.topicMessages[0]!.messages[0]!;
}

test('the sink writes one compact header by default and the legacy headers with metadata_headers = "legacy"; source headers ride along in both', async () => {
  const r = { time: 1_700_000_000_000, source: 'mqtt:local', topic: 'dev/d1/r', key: null, payload: Buffer.from('x'), headers: { unit: 'C' } };
  const compact = await shipOne('compact', '', r);
  assert.deepEqual(Object.keys(compact.headers).sort(), [METADATA_HEADER, 'unit']);
  assert.equal(String(compact.headers[METADATA_HEADER]), '1|gw|mqtt:local|1|1700000000000|||dev/d1/r');
  assert.equal(String(compact.key), 'd1');
  const legacy = await shipOne('legacy', 'metadata_headers = "legacy"', r);
  assert.deepEqual(legacy.headers, { unit: 'C', 'sluice.gateway': 'gw', 'sluice.seq': '1', 'sluice.source': 'mqtt:local', 'sluice.topic': 'dev/d1/r', 'sluice.time': '1700000000000' });
  assert.equal(String(legacy.key), 'd1');
});
