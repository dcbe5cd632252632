import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import type { GapReport } from '../../src/journal/gaps.js';
import type { Journal } from '../../src/journal/journal.js';
import { Metrics } from '../../src/metrics.js';
import type { HealthSource } from '../../src/ops/health-source.js';
import { healthProbe, mqttProbe, serialProbe, sinkProbe } from '../../src/ops/progress-probes.js';
import { StallMonitor, type ProgressProbe } from '../../src/ops/stall-monitor.js';
import type { KafkaSink } from '../../src/sinks/kafka-sink.js';
import type { MqttSource } from '../../src/sources/mqtt-source.js';
import type { SerialSource } from '../../src/sources/serial/serial-source.js';

/** A monitor on a hand-driven clock, with the probes given. */
function monitor(probes: ProgressProbe[], stallAfterMs = 10_000) {
  let now = 1_700_000_000_000;
  const gaps: GapReport[] = [];
  const metrics = new Metrics();
  const m = new StallMonitor({ stallAfterMs }, { probes: () => probes, metrics, logger: pino({ level: 'silent' }), clock: { now: () => now }, reportGap: (g) => gaps.push(g) });
  const advance = (ms: number): void => {
    for (let t = 0; t < ms; t += 1000) {
      now += 1000;
      m.check();
    }
  };
  return { m, gaps, metrics, advance };
}

const journalStub = (s: { committedSeq: number; cursor: number; full?: string | null }): Journal =>
  ({ get committedSeq() { return s.committedSeq; }, cursor: () => s.cursor, stats: () => ({ full: s.full ?? null }) }) as unknown as Journal;

test('source paused for a full journal: stalled after stall_after, once (log, metric, one alarm gap record); ends when it takes records again', () => {
  const src = { name: 'mqtt:local', paused: true, connected: false, heldAcks: 0 };
  const j = { committedSeq: 5, cursor: 5, full: 'max_bytes' };
  const { m, gaps, metrics, advance } = monitor([]);
  const probe = mqttProbe(src as unknown as MqttSource, metrics, journalStub(j));
  (m as unknown as { deps: { probes: () => ProgressProbe[] } }).deps.probes = () => [probe];
  advance(9000);
  assert.deepEqual(m.stalls(), [], 'not before stall_after');
  advance(2000);
  assert.equal(m.stalls().length, 1);
  assert.match(m.stalls()[0]!.reason, /paused: the journal is full \(max_bytes\)/);
  assert.equal(metrics.get('sluice_stalled', { component: 'mqtt:local' }), 1);
  advance(30_000);
  assert.equal(gaps.filter((g) => g.reason === 'stalled').length, 1, 'one alarm per stall');
  assert.equal(gaps[0]!.count, 0);
  assert.equal(gaps[0]!.source, 'mqtt:local');
  src.paused = false;
  metrics.inc('sluice_source_received_total', { source: 'mqtt:local' });
  advance(1000);
  assert.deepEqual(m.stalls(), []);
  assert.equal(metrics.get('sluice_stalled', { component: 'mqtt:local' }), 0);
});

test('source connected with messages taken from the broker that no commit releases: stalled; commits moving: not', () => {
  const src = { name: 'mqtt:local', paused: false, connected: true, heldAcks: 20 };
  const j = { committedSeq: 100, cursor: 100 };
  const { m, metrics, advance } = monitor([]);
  const probe = mqttProbe(src as unknown as MqttSource, metrics, journalStub(j));
  (m as unknown as { deps: { probes: () => ProgressProbe[] } }).deps.probes = () => [probe];
  for (let i = 0; i < 30; i++) {
    j.committedSeq += 10; // commits happen: acks are released as they come
    advance(1000);
  }
  assert.deepEqual(m.stalls(), [], 'held acks with commits moving is normal flow');
  advance(11_000);
  assert.equal(m.stalls().length, 1);
  assert.match(m.stalls()[0]!.reason, /20 message\(s\) taken from the broker wait for a journal commit/);
  src.heldAcks = 0;
  advance(1000);
  assert.deepEqual(m.stalls(), [], 'nothing held, nothing owed');
});

test('sink with lag that ships nothing while Kafka answers: stalled; a sink whose sends fail is failing, not stalled; caught up is idle', () => {
  const j = { committedSeq: 500, cursor: 200 };
  const { m, metrics, advance } = monitor([]);
  const probe = sinkProbe({ name: 'sink:cloud' } as unknown as KafkaSink, 'cloud', metrics, journalStub(j));
  (m as unknown as { deps: { probes: () => ProgressProbe[] } }).deps.probes = () => [probe];
  for (let i = 0; i < 30; i++) {
    metrics.inc('sluice_sink_errors_total', { sink: 'cloud' });
    advance(1000);
  }
  assert.deepEqual(m.stalls(), [], 'failing sends are progress of a kind: reported as failing, not stalled');
  advance(11_000);
  assert.equal(m.stalls().length, 1);
  assert.equal(m.stalls()[0]!.kind, 'sink');
  assert.match(m.stalls()[0]!.reason, /300 record\(s\) to ship, none shipped, no error from Kafka/);
  j.cursor = 500;
  advance(1000);
  assert.deepEqual(m.stalls(), []);
  advance(60_000);
  assert.deepEqual(m.stalls(), [], 'no lag, nothing owed');
});

test('serial bytes that become no frame: stalled; health records that stop: stalled after three intervals, not before', () => {
  const port = { name: 'serial:gps', isOpen: true, bufferedBytes: 4000 };
  const health = { name: 'sluice:health' };
  const { m, metrics, advance } = monitor([]);
  const probes = [serialProbe(port as unknown as SerialSource, metrics), healthProbe(health as unknown as HealthSource, metrics, 10)];
  (m as unknown as { deps: { probes: () => ProgressProbe[] } }).deps.probes = () => probes;
  advance(11_000);
  assert.deepEqual(m.stalls().map((s) => s.name), ['serial:gps']);
  assert.match(m.stalls()[0]!.reason, /4000 byte\(s\) received that became no frame/);
  advance(20_000);
  assert.deepEqual(m.stalls().map((s) => s.name).sort(), ['serial:gps', 'sluice:health']);
  metrics.inc('sluice_dropped_records_total', { source: 'sluice:health', reason: 'journal_full' });
  metrics.inc('sluice_source_rejected_total', { source: 'serial:gps', reason: 'frame_too_large' });
  advance(1000);
  assert.deepEqual(m.stalls(), [], 'a health record dropped with a gap record, and a frame rejected and counted, are not silent');
});
