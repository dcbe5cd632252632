import type { KafkaMessage } from './kcat.js';

export interface Delivery {
  /** Distinct (device, n) pairs that arrived. */
  distinct: number;
  duplicates: number;
  /** Expected (device, n) pairs that did not arrive. */
  missing: string[];
  /** Keys whose first arrivals are not in publish order. */
  outOfOrder: string[];
}

/**
 * Compares what landed in Kafka with what was published: readings carry device and n; the Kafka
 * key is the device. Order per key is judged on first arrivals (a redelivered duplicate may
 * repeat an earlier reading, which at-least-once allows).
 */
export function checkDelivery(messages: KafkaMessage[], expected: Map<string, number[]>): Delivery {
  const seen = new Map<string, Set<number>>();
  const firsts = new Map<string, number[]>();
  let duplicates = 0;
  for (const m of [...messages].sort((a, b) => a.partition - b.partition || a.offset - b.offset)) {
    const r = JSON.parse(m.payload ?? '{}') as { device: string; n: number };
    let s = seen.get(r.device);
    if (!s) seen.set(r.device, (s = new Set()));
    if (s.has(r.n)) {
      duplicates++;
      continue;
    }
    s.add(r.n);
    let f = firsts.get(m.key ?? '');
    if (!f) firsts.set(m.key ?? '', (f = []));
    f.push(r.n);
  }
  const missing: string[] = [];
  for (const [device, ns] of expected) {
    for (const n of ns) if (!seen.get(device)?.has(n)) missing.push(`${device}#${n}`);
  }
  const outOfOrder: string[] = [];
  for (const [key, ns] of firsts) {
    for (let i = 1; i < ns.length; i++) {
      if (ns[i]! < ns[i - 1]!) {
        outOfOrder.push(`${key}: ${ns[i - 1]} before ${ns[i]}`);
        break;
      }
    }
  }
  let distinct = 0;
  for (const s of seen.values()) distinct += s.size;
  return { distinct, duplicates, missing, outOfOrder };
}

/** expected map for publishMany(devices, perDevice, {start}) */
export function expectedReadings(devices: number, perDevice: number, start = 0, into = new Map<string, number[]>()): Map<string, number[]> {
  for (let d = 0; d < devices; d++) {
    const list = into.get(`d${d}`) ?? [];
    for (let n = start; n < start + perDevice; n++) list.push(n);
    into.set(`d${d}`, list);
  }
  return into;
}

/**
 * Duplicates with the same sluice.seq: one journal record sent twice (the sink's at-least-once
 * resends). A reading twice under two seqs would instead be an MQTT redelivery journaled twice.
 */
export function sinkDuplicates(messages: KafkaMessage[]): number {
  const seqs = new Set<string>();
  let dup = 0;
  for (const m of messages) {
    const seq = m.headers['sluice.seq']!;
    if (seqs.has(seq)) dup++;
    seqs.add(seq);
  }
  return dup;
}

/** Random delays for kill tests: a kill lands at a different moment each time. */
export const randomMs = (min: number, max: number): number => min + Math.floor(Math.random() * (max - min));
