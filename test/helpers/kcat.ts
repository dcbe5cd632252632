import { waitFor } from './wait-for.js';
import { execFile } from 'node:child_process';
import { LEGACY_HEADERS, METADATA_HEADER, metadataOf } from '../../src/sinks/record-metadata.js';

export interface KafkaMessage {
  topic: string;
  partition: number;
  offset: number;
  key: string | null;
  payload: string | null;
  ts: number;
  /** The headers, with the legacy `sluice.*` names filled in from the compact header (see expandMetadata). */
  headers: Record<string, string>;
  /** The headers exactly as they are in Kafka (what the record costs on the wire). */
  wireHeaders: Record<string, string>;
}

/**
 * Reads every message of a topic from the beginning with kcat (librdkafka), an independent
 * consumer: what it returns is what actually landed in Kafka.
 */
export function consumeAll(bootstrap: string, topic: string, extra: string[] = []): Promise<KafkaMessage[]> {
  return new Promise((resolve, reject) => {
    execFile(
      'kcat',
      ['-C', '-b', bootstrap, '-t', topic, '-o', 'beginning', '-e', '-J', '-q', ...extra],
      { maxBuffer: 1 << 30, timeout: 60000 },
      (err, stdout, stderr) => {
        if (err) return reject(new Error(`kcat failed: ${stderr || err.message}`));
        const out: KafkaMessage[] = [];
        const lines = stdout.split('\n').filter((l) => l.trim());
        for (const [i, line] of lines.entries()) {
          let parsed: unknown;
          try {
            parsed = JSON.parse(line);
          } catch {
            // kcat -e can exit in the middle of printing the last message while the topic is being
            // written to: that message is simply not read this time (the next read sees it).
            if (i === lines.length - 1) break;
            // A reject, not an exception thrown in a callback that would take the whole test file down.
            const at = stdout.indexOf(line);
            return reject(new Error(`kcat printed a line that is not JSON (stderr: ${stderr.slice(0, 300)}): ${JSON.stringify(stdout.slice(at, at + 800))}`));
          }
          const m = parsed as { topic: string; partition: number; offset: number; key: string | null; payload: string | null; ts: number; headers?: string[] };
          const headers: Record<string, string> = {};
          const h = m.headers ?? [];
          for (let i = 0; i + 1 < h.length; i += 2) headers[h[i]!] = h[i + 1]!;
          const wireHeaders = { ...headers };
          expandMetadata(headers);
          out.push({ topic: m.topic, partition: m.partition, offset: m.offset, key: m.key, payload: m.payload, ts: m.ts, headers, wireHeaders });
        }
        resolve(out);
      },
    );
  });
}

/**
 * Adds the legacy `sluice.*` names for what the compact `sluice` header says, so tests can read a
 * record's seq, source, topic and time the same way whichever `metadata_headers` the sink used.
 * (test/e2e/wire-format.test.ts decodes the header on its own, from kcat's raw output.)
 */
function expandMetadata(headers: Record<string, string>): void {
  if (headers[METADATA_HEADER] === undefined) return;
  const m = metadataOf(headers);
  if (!m) return;
  headers[LEGACY_HEADERS.gateway] ??= m.gateway;
  headers[LEGACY_HEADERS.seq] ??= String(m.seq);
  headers[LEGACY_HEADERS.source] ??= m.source;
  headers[LEGACY_HEADERS.topic] ??= m.topic;
  headers[LEGACY_HEADERS.time] ??= m.time;
  if (m.timeQuality !== undefined) headers[LEGACY_HEADERS.timeQuality] ??= m.timeQuality;
  if (m.clockTime !== undefined) headers[LEGACY_HEADERS.clockTime] ??= m.clockTime;
}

/** Like consumeAll, but an absent topic reads as empty. */
export async function consumeOrEmpty(bootstrap: string, topic: string, extra: string[] = []): Promise<KafkaMessage[]> {
  try {
    return await consumeAll(bootstrap, topic, extra);
  } catch (err) {
    if (/Unknown topic|not available|UNKNOWN_TOPIC/i.test(String(err))) return [];
    throw err;
  }
}

/** kcat options for a consumer that sees committed transactions only. */
export const READ_COMMITTED = ['-X', 'isolation.level=read_committed'];

/** Reads a topic again and again until `done` holds for what landed; returns that. */
export function consumeUntil(bootstrap: () => string, topic: string, done: (m: KafkaMessage[]) => boolean, what: string, timeoutMs = 120000): Promise<KafkaMessage[]> {
  return waitFor(
    async () => {
      const m = await consumeOrEmpty(bootstrap(), topic);
      return done(m) ? m : null;
    },
    { timeoutMs, intervalMs: 1000, what },
  );
}

/**
 * kcat options for a topic still being written to: librdkafka reports the end of a partition only
 * when a fetch comes back empty, and with its default fetch wait (500 ms) a partition written a few
 * times a second never does, so `-e` waits for a lull (tens of seconds, measured). A short wait ends the read at once.
 */
export const LIVE_TOPIC = ['-X', 'fetch.wait.max.ms=10'];
