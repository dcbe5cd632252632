import assert from 'node:assert/strict';
import type { Daemon } from './daemon.js';
import { gapPayloads } from './gaps.js';
import type { KafkaMessage } from './kcat.js';
import { checkDelivery, sinkDuplicates } from './verify.js';
import { waitFor } from './wait-for.js';

/** A daemon log line, parsed: its own timestamp (pino `time`, ms) and message. */
export interface LogEvent {
  time: number;
  msg: string;
  fields: Record<string, unknown>;
}

/** The space keeper turned the journal full / took records again. */
export const JOURNAL_FULL = /^journal full: sources with overflow/;
export const JOURNAL_ROOM = /^journal takes records again$/;
/** The MQTT source paused for a full journal / came back by itself. */
export const SOURCE_PAUSED = /^journal full: disconnecting from the MQTT broker/;
export const SOURCE_RESUMED = /^journal has room again: reconnecting to the MQTT broker$/;
export const KAFKA_BACK = /^Kafka reachable again/;
export const EVICTED = /^journal evicted records/;

/** Every log line of the daemon whose message matches, in order, with the daemon's own timestamps. */
export function logEvents(daemon: Daemon, msg: RegExp): LogEvent[] {
  const out: LogEvent[] = [];
  for (const line of daemon.lines) {
    if (!line.startsWith('{')) continue;
    let fields: Record<string, unknown>;
    try {
      fields = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue;
    }
    const m = typeof fields.msg === 'string' ? fields.msg : '';
    if (!msg.test(m)) continue;
    const t = fields.time;
    out.push({ time: typeof t === 'number' ? t : Date.parse(String(t)), msg: m, fields });
  }
  return out;
}

/** The first event matching `msg` at or after `since` (ms), or undefined. */
export function firstEventAfter(daemon: Daemon, msg: RegExp, since: number): LogEvent | undefined {
  return logEvents(daemon, msg).find((e) => e.time >= since);
}

/** Waits for the first event matching `msg` at or after `since` (ms). */
export function waitForEvent(daemon: Daemon, msg: RegExp, opts: { since?: number; timeoutMs?: number } = {}): Promise<LogEvent> {
  return waitFor(() => firstEventAfter(daemon, msg, opts.since ?? 0), { timeoutMs: opts.timeoutMs ?? 60000, intervalMs: 100, what: () => `log message ${msg}; got:\n${daemon.lines.slice(-15).join('\n')}` });
}

/**
 * Every pause of the MQTT source was followed by a resume it did by itself, and every "journal
 * full" by one "takes records again": the log says each once, in turn. Returns them.
 */
export function assertEveryPauseEnded(daemon: Daemon, opts: { mustPause?: boolean } = {}): { pauses: LogEvent[]; resumes: LogEvent[]; fulls: LogEvent[]; rooms: LogEvent[] } {
  const pauses = logEvents(daemon, SOURCE_PAUSED);
  const resumes = logEvents(daemon, SOURCE_RESUMED);
  const fulls = logEvents(daemon, JOURNAL_FULL);
  const rooms = logEvents(daemon, JOURNAL_ROOM);
  if (opts.mustPause !== false) assert.ok(pauses.length > 0, 'the MQTT source paused for the full journal');
  assert.equal(resumes.length, pauses.length, `every pause of the source ended by itself (${pauses.length} pauses, ${resumes.length} resumes)`);
  assert.equal(rooms.length, fulls.length, `every "journal full" was followed by one "journal takes records again" (${fulls.length} full, ${rooms.length} room)`);
  for (let i = 0; i < pauses.length; i++) {
    assert.ok(resumes[i]!.time >= pauses[i]!.time, `resume ${i} follows pause ${i}`);
    if (i + 1 < pauses.length) assert.ok(pauses[i + 1]!.time >= resumes[i]!.time, `pause ${i + 1} comes after resume ${i}`);
  }
  for (let i = 0; i < fulls.length; i++) {
    assert.ok(rooms[i]!.time >= fulls[i]!.time, `room ${i} follows full ${i}`);
    if (i + 1 < fulls.length) assert.ok(fulls[i + 1]!.time >= rooms[i]!.time, `full ${i + 1} comes after room ${i}`);
  }
  return { pauses, resumes, fulls, rooms };
}

/** Prints a measured interval in the test output (never asserted: no timed assertions). */
export function printTiming(label: string, fromMs: number, toMs: number): number {
  const ms = toMs - fromMs;
  console.log(`TIMING ${label}: ${ms} ms`);
  return ms;
}

/**
 * The final accounting, by kcat: every reading the broker acknowledged is in Kafka or was evicted
 * (then gap records name exactly as many records as are missing), and none arrived twice.
 */
export function accountReadings(readings: KafkaMessage[], gaps: KafkaMessage[], acked: Map<string, number[]>, label: string): { delivered: number; evicted: number; duplicates: number; resent: number } {
  const r = checkDelivery(readings, acked);
  const evicted = gapPayloads(gaps)
    .filter((g) => g.reason.startsWith('evicted_'))
    .reduce((n, g) => n + g.count, 0);
  const resent = sinkDuplicates(readings);
  console.log(`${label}: acknowledged ${[...acked.values()].reduce((n, l) => n + l.length, 0)}, delivered ${r.distinct}, missing ${r.missing.length}, evicted by gap records ${evicted}, duplicates ${r.duplicates} (same seq twice: ${resent})`);
  assert.equal(r.missing.length, evicted, `every acknowledged reading not in Kafka was evicted and named by a gap record (${r.missing.length} missing, ${evicted} evicted)`);
  assert.deepEqual(r.outOfOrder, []);
  assert.equal(resent, 0, 'no batch Kafka confirmed was sent again');
  assert.equal(r.duplicates, 0, 'no reading journaled twice');
  return { delivered: r.distinct, evicted, duplicates: r.duplicates, resent };
}

/** Waits until every pause of the source and every "journal full" has ended, then asserts the log says so in turn. */
export async function waitForEveryPauseEnded(daemon: Daemon, opts: { mustPause?: boolean; timeoutMs?: number } = {}): Promise<ReturnType<typeof assertEveryPauseEnded>> {
  await waitFor(() => logEvents(daemon, SOURCE_PAUSED).length === logEvents(daemon, SOURCE_RESUMED).length && logEvents(daemon, JOURNAL_FULL).length === logEvents(daemon, JOURNAL_ROOM).length, {
    timeoutMs: opts.timeoutMs ?? 30000,
    intervalMs: 200,
    what: () => `every pause to end (${logEvents(daemon, SOURCE_PAUSED).length} pauses, ${logEvents(daemon, SOURCE_RESUMED).length} resumes, ${logEvents(daemon, JOURNAL_FULL).length} full, ${logEvents(daemon, JOURNAL_ROOM).length} room)`,
  });
  return assertEveryPauseEnded(daemon, opts);
}
