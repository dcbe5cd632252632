import { consumeAll } from '../../test/helpers/kcat.js';

/** One record of a latency run: when the load generator sent it and how long it took to reach Kafka, in ms. */
export interface Latency {
  sent: number;
  lat: number;
}

/**
 * Every record of `topic` with its latency: the payload's `ts` (the load generator's clock) against
 * the broker's LogAppendTime. Returns the records and the earliest send time.
 */
export async function latencies(bootstrap: string, topic: string): Promise<{ msgs: Latency[]; first: number }> {
  const msgs = (await consumeAll(bootstrap, topic)).map((m) => {
    const sent = (JSON.parse(m.payload!) as { ts: number }).ts;
    return { sent, lat: m.ts - sent };
  });
  // A loop, not Math.min(...xs): a spread of ~100,000 arguments can overflow the stack.
  const first = msgs.reduce((a, m) => Math.min(a, m.sent), Infinity);
  return { msgs, first };
}
