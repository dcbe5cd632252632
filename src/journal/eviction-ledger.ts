import type { GapReport } from './gaps.js';
import type { JournalRecord } from './journal.js';

interface Entry {
  ranges: Array<[number, number]>;
  count: number;
  bytes: number;
  firstTime: number;
  lastTime: number;
  sources: Map<string, number>;
}

/**
 * Collects what evictions removed, per reason, between two reports, so a steady overflow
 * produces one gap record a second (with the exact seq ranges), not one per evicted row.
 */
export class EvictionLedger {
  private readonly entries = new Map<string, Entry>();

  /** Records at or below `confirmedThrough` were already shipped by every sink: not a loss. */
  add(reason: string, records: Iterable<JournalRecord>, confirmedThrough: number): void {
    let e = this.entries.get(reason);
    for (const r of records) {
      if (r.seq <= confirmedThrough) continue;
      if (!e) this.entries.set(reason, (e = { ranges: [], count: 0, bytes: 0, firstTime: Infinity, lastTime: -Infinity, sources: new Map() }));
      const last = e.ranges[e.ranges.length - 1];
      if (last && last[1] + 1 === r.seq) last[1] = r.seq;
      else e.ranges.push([r.seq, r.seq]);
      e.count++;
      e.bytes += r.payload.length;
      if (r.time < e.firstTime) e.firstTime = r.time;
      if (r.time > e.lastTime) e.lastTime = r.time;
      e.sources.set(r.source, (e.sources.get(r.source) ?? 0) + 1);
    }
  }

  get empty(): boolean {
    return this.entries.size === 0;
  }

  /** The ledger as rows to persist (reason, JSON), so a kill -9 cannot lose what was evicted. */
  serialize(): Array<[string, string]> {
    return [...this.entries].map(([reason, e]) => [reason, JSON.stringify({ ...e, sources: Object.fromEntries(e.sources) })]);
  }

  /** Restores persisted entries (after a restart), merging with what is there. */
  load(rows: Array<{ reason: string; entry: string }>): void {
    for (const { reason: key, entry } of rows) {
      const reason = key.split('#')[0]!;
      const e = JSON.parse(entry) as Omit<Entry, 'sources'> & { sources: Record<string, number> };
      const have = this.entries.get(reason);
      if (!have) {
        this.entries.set(reason, { ...e, sources: new Map(Object.entries(e.sources)) });
        continue;
      }
      have.ranges.push(...e.ranges);
      have.count += e.count;
      have.bytes += e.bytes;
      have.firstTime = Math.min(have.firstTime, e.firstTime);
      have.lastTime = Math.max(have.lastTime, e.lastTime);
      for (const [src, n] of Object.entries(e.sources)) have.sources.set(src, (have.sources.get(src) ?? 0) + n);
    }
  }

  /** Puts the ledger back to a state taken with `serialize` (an eviction whose transaction rolled back). */
  restore(rows: Array<[string, string]>): void {
    this.entries.clear();
    this.load(rows.map(([reason, entry]) => ({ reason, entry })));
  }

  /** The gaps collected since the last call, one per reason; empties the ledger. */
  drain(): GapReport[] {
    const out: GapReport[] = [];
    for (const [reason, e] of this.entries) {
      const ranges = e.ranges.sort((a, b) => a[0] - b[0]);
      const sources = Object.fromEntries(e.sources);
      out.push({
        reason,
        source: e.sources.size === 1 ? [...e.sources.keys()][0]! : 'multiple',
        firstSeq: ranges[0]![0],
        lastSeq: ranges[ranges.length - 1]![1],
        ranges,
        sources,
        firstTime: e.firstTime,
        lastTime: e.lastTime,
        count: e.count,
        bytes: e.bytes,
      });
    }
    this.entries.clear();
    return out;
  }
}
