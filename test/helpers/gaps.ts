import type { KafkaMessage } from './kcat.js';

export interface GapPayload {
  type: string;
  reason: string;
  source: string;
  count: number;
  bytes: number;
  ranges: Array<[number, number]>;
  detail: string | null;
}

export function gapPayloads(messages: KafkaMessage[]): GapPayload[] {
  return messages.map((m) => JSON.parse(m.payload ?? '{}') as GapPayload);
}

/** Every seq named by eviction gap records. */
export function evictedSeqs(gaps: GapPayload[]): Set<number> {
  const out = new Set<number>();
  for (const g of gaps) {
    if (!g.reason.startsWith('evicted_')) continue;
    for (const [a, b] of g.ranges) for (let s = a; s <= b; s++) out.add(s);
  }
  return out;
}

/**
 * The accounting invariant: every seq up to the highest one seen is exactly one of a delivered
 * record, an evicted record named by a gap record, or a gap record itself. Returns the violations.
 */
export function accountSeqs(delivered: KafkaMessage[], gapMessages: KafkaMessage[]): { unaccounted: number[]; both: number[]; maxSeq: number; delivered: number; evicted: number } {
  const got = new Set(delivered.map((m) => Number(m.headers['sluice.seq'])));
  const gapOwn = new Set(gapMessages.map((m) => Number(m.headers['sluice.seq'])));
  const evicted = evictedSeqs(gapPayloads(gapMessages));
  const maxSeq = Math.max(0, ...got, ...gapOwn, ...evicted);
  const unaccounted: number[] = [];
  const both: number[] = [];
  for (let s = 1; s <= maxSeq; s++) {
    const n = Number(got.has(s)) + Number(evicted.has(s)) + Number(gapOwn.has(s));
    if (n === 0) unaccounted.push(s);
    if (n > 1) both.push(s);
  }
  return { unaccounted, both, maxSeq, delivered: got.size, evicted: evicted.size };
}
