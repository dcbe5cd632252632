import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { pino } from 'pino';
import { parseConfig } from '../../src/config/load.js';
import type { GapReport } from '../../src/journal/gaps.js';
import type { NewRecord } from '../../src/journal/journal.js';
import { classifierForConfig, INTERNAL_PRIORITY } from '../../src/journal/retention.js';
import { SqliteJournal } from '../../src/journal/sqlite-journal.js';
import { tempDir } from '../helpers/tmp.js';

const tmp = tempDir();
after(() => tmp.cleanup());

// Two MQTT sources with opposite policies, a serial port, and two sinks whose routes set priority
// and overflow: the classifier must combine them as the config reference says.
const CONFIG = `
[[mqtt]]
name = "plant"
[[mqtt.subscribe]]
topic = "#"

[[mqtt]]
name = "lab"
url = "mqtt://127.0.0.1:1884"
overflow = "drop_oldest"
[[mqtt.subscribe]]
topic = "#"

[[serial]]
name = "gps"
path = "/dev/ttyUSB0"
overflow = "drop_oldest"

[[sink]]
name = "main"
brokers = ["k1:9092"]

[[sink.route]]
match = "alarms/#"
topic = "alarms"
priority = 100
overflow = "backpressure"

[[sink.route]]
match = "debug/#"
topic = "debug"
priority = -5
overflow = "drop_oldest"

[[sink.route]]
match = "telemetry/+site/#"
topic = "telemetry"
priority = 10
overflow = "drop_oldest"

# Never reached for telemetry/...: the first matching route of a sink decides.
[[sink.route]]
match = "telemetry/#"
topic = "shadowed"
priority = 999

[[sink.route]]
match = "serial/#"
topic = "serial"
priority = 3

[[sink]]
name = "backup"
brokers = ["k2:9092"]

[[sink.route]]
match = "telemetry/north/#"
topic = "telemetry-north"
priority = 50
overflow = "backpressure"
`;

test('classes from a parsed config: route overflow overrides the source, priority is the highest among sinks, gaps are internal', () => {
  const classify = classifierForConfig(parseConfig(CONFIG));
  const cases: [source: string, topic: string, priority: number, evictable: boolean, why: string][] = [
    ['mqtt:plant', 'alarms/fire', 100, false, 'route backpressure on a backpressure source'],
    ['mqtt:lab', 'alarms/fire', 100, false, 'route backpressure overrides the source\'s drop_oldest'],
    ['mqtt:plant', 'debug/x', -5, true, 'route drop_oldest overrides the source\'s backpressure'],
    ['mqtt:plant', 'telemetry/south/t', 10, true, 'the first matching route of the sink, not the shadowed priority 999'],
    ['mqtt:plant', 'telemetry/north/t', 50, false, 'two sinks ship it: the higher priority, and backpressure if any route wants it'],
    ['mqtt:plant', 'other/x', 0, false, 'no route: the source\'s backpressure, priority 0'],
    ['mqtt:lab', 'other/x', 0, true, 'no route: the source\'s drop_oldest'],
    ['serial:gps', 'serial/gps', 3, true, 'a route without overflow keeps the port\'s drop_oldest'],
    ['mqtt:unknown', 'other/x', 0, false, 'a source not in the config: backpressure'],
    ['sluice:gaps', 'sluice/gaps', INTERNAL_PRIORITY, false, 'gap records are never evicted'],
    ['sluice:health', 'debug/x', INTERNAL_PRIORITY, false, 'nor are sluice\'s own records, whatever route matches'],
  ];
  for (const [source, topic, priority, evictable, why] of cases) {
    assert.deepEqual(classify(source, topic), { priority, evictable }, `${source} ${topic}: ${why}`);
    assert.deepEqual(classify(source, topic), { priority, evictable }, `${source} ${topic}: the same from the cache`);
  }
});

test('the per-(source, topic) cache: the same source and topic in other pairs, and past its bound, still classify right', () => {
  const classify = classifierForConfig(parseConfig(CONFIG));
  // Same topic, other source (and the reverse): one must not answer from the other's entry.
  assert.deepEqual(classify('mqtt:plant', 'other/x'), { priority: 0, evictable: false });
  assert.deepEqual(classify('mqtt:lab', 'other/x'), { priority: 0, evictable: true });
  assert.deepEqual(classify('mqtt:plant', 'other/x'), { priority: 0, evictable: false });
  // More distinct pairs than the cache keeps (10,000): it starts over, answers stay the same.
  for (let i = 0; i < 12_000; i++) assert.deepEqual(classify(i % 2 ? 'mqtt:lab' : 'mqtt:plant', `debug/${i}`), { priority: -5, evictable: true });
  assert.deepEqual(classify('mqtt:lab', 'alarms/fire'), { priority: 100, evictable: false });
  assert.deepEqual(classify('mqtt:lab', 'other/x'), { priority: 0, evictable: true });
});

test('defaults from a config without priority or overflow: nothing evictable under backpressure, all evictable under drop_oldest', () => {
  const base = '[[sink]]\nbrokers = ["k:9092"]\n[[sink.route]]\nmatch = "#"\ntopic = "all"\n';
  const keep = classifierForConfig(parseConfig(`[[mqtt]]\n[[mqtt.subscribe]]\ntopic = "#"\n${base}`));
  assert.deepEqual(keep('mqtt:mqtt', 'a/b'), { priority: 0, evictable: false });
  const drop = classifierForConfig(parseConfig(`[[mqtt]]\noverflow = "drop_oldest"\n[[mqtt.subscribe]]\ntopic = "#"\n${base}`));
  assert.deepEqual(drop('mqtt:mqtt', 'a/b'), { priority: 0, evictable: true });
});

/** Every seq the gap reports name. */
function gapSeqs(gaps: GapReport[]): Set<number> {
  const out = new Set<number>();
  for (const g of gaps) for (const [a, b] of g.ranges ?? [[g.firstSeq!, g.lastSeq!]]) for (let s = a; s <= b; s++) out.add(s);
  return out;
}

test('a real journal with the config\'s classifier: the low-priority route is evicted first, a backpressure route never', async () => {
  const config = parseConfig(`
[[mqtt]]
name = "plant"
overflow = "drop_oldest"
[[mqtt.subscribe]]
topic = "#"

[[sink]]
brokers = ["k:9092"]

[[sink.route]]
match = "critical/#"
topic = "critical"
priority = -100
overflow = "backpressure"

[[sink.route]]
match = "bulk/#"
topic = "bulk"
priority = -10

[[sink.route]]
match = "telemetry/#"
topic = "telemetry"
priority = 10
`);
  const gaps: GapReport[] = [];
  const j = new SqliteJournal({
    path: join(tmp.path, 'classes.db'),
    durability: 'crash',
    commitDelayMs: 1,
    commitMaxRecords: 100,
    maxBytes: 256 * 1024,
    classify: classifierForConfig(config),
    reportGap: (g) => gaps.push(g),
    logger: pino({ level: 'silent' }),
    clock: { now: () => 1700000000000 },
    maintenanceIntervalMs: 60_000,
  });
  await j.start();
  j.registerSinks(['kafka']);
  const topicOf = new Map<number, string>();
  const put = (topic: string, count: number) => {
    for (let i = 0; i < count; i++) {
      const r: NewRecord = { time: 1700000000000 + topicOf.size, source: 'mqtt:plant', topic, key: null, payload: Buffer.alloc(500, topicOf.size % 251), headers: null };
      topicOf.set(j.append(r), topic);
      if (i % 100 === 99) j.flush();
    }
    j.flush();
  };
  const kept = () => {
    const by = { 'critical/a': [] as number[], 'bulk/a': [] as number[], 'telemetry/a': [] as number[] };
    for (const r of j.read(0, 1e9, 1e12)) by[r.topic as keyof typeof by].push(r.seq);
    return by;
  };
  // ~50 kB critical (lowest priority of all, but backpressure), ~50 kB telemetry, ~750 kB bulk.
  put('critical/a', 100);
  put('telemetry/a', 100);
  put('bulk/a', 1500);
  let k = kept();
  assert.equal(k['critical/a'].length, 100, 'backpressure route: nothing evicted though its priority is the lowest');
  assert.equal(k['telemetry/a'].length, 100, 'higher priority: nothing evicted while bulk remains');
  assert.ok(k['bulk/a'].length < 1500 && k['bulk/a'].length > 0, `bulk was evicted (kept ${k['bulk/a'].length})`);

  // Now telemetry alone grows: every bulk record goes before the first telemetry one, critical stays.
  put('telemetry/a', 1500);
  k = kept();
  assert.equal(k['critical/a'].length, 100, 'backpressure route: still nothing evicted');
  assert.equal(k['bulk/a'].length, 0, 'all of the low-priority route went first');
  assert.ok(k['telemetry/a'].length < 1600, 'then the oldest telemetry');
  await j.stop(); // reports what the ledger holds
  const lost = gapSeqs(gaps.filter((g) => g.reason === 'evicted_max_bytes'));
  const lostTelemetry = [...lost].filter((s) => topicOf.get(s) === 'telemetry/a');
  assert.ok(lostTelemetry.length > 0);
  assert.ok(Math.max(...lostTelemetry) < Math.min(...k['telemetry/a']), 'telemetry went oldest first');
  for (const [seq, topic] of topicOf) {
    if (topic === 'critical/a') assert.ok(!lost.has(seq), `critical seq ${seq} named in a gap record`);
    const isKept = k[topic as keyof typeof k].includes(seq);
    assert.ok(isKept !== lost.has(seq), `seq ${seq} (${topic}): kept=${isKept} lost=${lost.has(seq)} (exactly one)`);
  }
});
