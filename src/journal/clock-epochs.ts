import type { CaptureClock } from '../time/clock-watch.js';
import type { CommitHook } from './commit-hook.js';
import type { TimeQuality } from './journal.js';
import type { JournalStore } from './store.js';

/** A capture time as shipped: the best-known time and how good it is. */
export interface StampedTime {
  time: number;
  quality: TimeQuality;
}

/** Epochs always kept, however old: a handful per boot, a few kilobytes. */
const KEEP_EPOCHS = 64;

interface Epoch {
  id: number;
  firstSeq: number;
  boot: string;
  /** Wall minus boot-monotonic time while this epoch's records were captured, ms. */
  offset: number;
  synced: boolean;
}

/**
 * How each record's capture time relates to the monotonic clock, without a byte more per record.
 * An epoch is a run of seqs captured in one boot with one clock offset (wall − monotonic) and one
 * sync state; a new one begins only when the boot, the offset (a jump beyond the threshold) or the
 * sync state changes, so there are a handful per boot. A record's monotonic capture time is then
 * its wall time minus its epoch's offset, within the jump threshold.
 *
 * Correction, when encoding for Kafka: a record of an unsynced epoch whose boot later had a synced
 * epoch gets monotonic capture + that boot's latest synced offset ("corrected"); one of a boot that
 * never synced keeps its clock time ("unsynced"); one captured while synced keeps its time ("synced").
 * Epoch rows are written in the transaction of the commit whose records first use them.
 */
export class ClockEpochs implements CommitHook {
  /** Sorted by (firstSeq, id). */
  private epochs: Epoch[] = [];
  private unsaved: Epoch[] = [];
  private current: Epoch | null = null;
  /** Per boot, the offset of its latest synced epoch. */
  private readonly syncOffsets = new Map<string, number>();
  private nextId = 1;

  constructor(
    private readonly store: JournalStore,
    private readonly clock: CaptureClock,
  ) {}

  /** Reads the epochs the file has; an epoch of this boot may go on. */
  load(): void {
    this.epochs = this.store.epochRows().map((r) => ({ id: r.id, firstSeq: r.first_seq, boot: r.boot_id, offset: r.offset_ms, synced: r.synced === 1 }));
    this.epochs.sort(byOrder);
    this.unsaved = [];
    this.nextId = this.epochs.reduce((m, e) => Math.max(m, e.id), 0) + 1;
    this.syncOffsets.clear();
    for (const e of this.epochs) if (e.synced) this.syncOffsets.set(e.boot, e.offset);
    const last = this.epochs[this.epochs.length - 1];
    this.current = last && last.boot === this.clock.bootId ? last : null;
  }

  /** Per append, before `seq` is handed out: one monotonic clock read when nothing changed. */
  stamp(seq: number, time: number): void {
    const e = this.current;
    const c = this.clock;
    if (e !== null && e.synced === c.synced && Math.abs(time - c.mono() - e.offset) <= c.jumpThresholdMs) return;
    this.check(seq);
  }

  /**
   * Begins an epoch at `seq` if the clock changed. Measured afresh, not from a record's time: a
   * record may carry a time that is not "now" (a salvaged one), and a pause between a source
   * reading the clock and appending must not look like a jump.
   */
  check(seq: number): void {
    const c = this.clock;
    const offset = c.offsetNow();
    const e = this.current;
    if (e !== null && e.boot === c.bootId && e.synced === c.synced && Math.abs(offset - e.offset) <= c.jumpThresholdMs) return;
    const epoch: Epoch = { id: this.nextId++, firstSeq: seq, boot: c.bootId, offset, synced: c.synced };
    this.epochs.push(epoch);
    this.epochs.sort(byOrder);
    this.unsaved.push(epoch);
    this.current = epoch;
    if (epoch.synced) this.syncOffsets.set(epoch.boot, offset);
  }

  get hasUnsaved(): boolean {
    return this.unsaved.length > 0;
  }

  /** Writes new epochs (and forgets ones whose records are all gone); inside the commit's transaction. */
  inCommit(): (() => void) | null {
    if (this.unsaved.length === 0) return null;
    const rows = this.unsaved.slice();
    for (const e of rows) this.store.putEpoch({ id: e.id, first_seq: e.firstSeq, boot_id: e.boot, offset_ms: e.offset, synced: e.synced ? 1 : 0 });
    const gone = this.prunable((this.store.firstStoredSeq() ?? rows[0]!.firstSeq) - 1);
    for (const e of gone) this.store.deleteEpoch(e.id);
    return () => {
      this.unsaved = this.unsaved.filter((e) => !rows.includes(e));
      if (gone.length) this.epochs = this.epochs.filter((e) => !gone.includes(e));
    };
  }

  /** Writes new epochs now, outside a group commit (the clock synced or jumped while nothing was appended). Throws when the write fails; they stay unsaved. */
  saveNow(): void {
    let done: (() => void) | null = null;
    this.store.transaction(() => {
      done = this.inCommit();
    });
    (done as (() => void) | null)?.();
  }

  /**
   * Epochs all of whose seqs are gone from the journal, except a boot's latest synced one while that
   * boot has records, and the last KEEP_EPOCHS (a gap record may still name seqs evicted from them).
   */
  private prunable(goneThrough: number): Epoch[] {
    const out: Epoch[] = [];
    const liveBoots = new Set<string>();
    for (let i = 0; i < this.epochs.length; i++) {
      const e = this.epochs[i]!;
      const next = this.epochs[i + 1];
      const dead = next !== undefined && next.firstSeq <= goneThrough + 1 && i < this.epochs.length - KEEP_EPOCHS;
      if (dead) out.push(e);
      else liveBoots.add(e.boot);
    }
    // A boot's latest synced epoch stays while records of that boot remain: it corrects them.
    return out.filter((e) => !(liveBoots.has(e.boot) && this.latestSynced(e.boot) === e));
  }

  private latestSynced(boot: string): Epoch | undefined {
    for (let i = this.epochs.length - 1; i >= 0; i--) if (this.epochs[i]!.boot === boot && this.epochs[i]!.synced) return this.epochs[i];
    return undefined;
  }

  /** The best-known capture time (whole ms when corrected) of a time `time` the clock said in record `seq`'s epoch. */
  timeOf(seq: number, time: number): StampedTime {
    const s = this.span(seq);
    // Whole milliseconds, like the clock's own times.
    return { time: s.delta === 0 ? time : Math.round(time + s.delta), quality: s.quality };
  }

  /**
   * The correction of the epoch holding `seq`, and the seqs it holds ([from, to)): a reader walking
   * seqs in order looks an epoch up once, not once per record.
   */
  span(seq: number): { from: number; to: number; quality: TimeQuality; delta: number } {
    const list = this.epochs;
    let lo = 0;
    let hi = list.length - 1;
    let at = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid]!.firstSeq <= seq) {
        at = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    const to = at + 1 < list.length ? list[at + 1]!.firstSeq : Number.POSITIVE_INFINITY;
    // The epoch holding `seq` is the last to begin at or before it (the later one when two begin at the same seq).
    const e = at >= 0 ? list[at]! : undefined;
    const from = e ? e.firstSeq : Number.NEGATIVE_INFINITY;
    if (!e) return { from, to, quality: 'unsynced', delta: 0 };
    if (e.synced) return { from, to, quality: 'synced', delta: 0 };
    const synced = this.syncOffsets.get(e.boot);
    if (synced === undefined) return { from, to, quality: 'unsynced', delta: 0 };
    return { from, to, quality: 'corrected', delta: synced - e.offset };
  }

  /** Epochs known, for tests and `journal check`. */
  get count(): number {
    return this.epochs.length;
  }
}

function byOrder(a: Epoch, b: Epoch): number {
  return a.firstSeq - b.firstSeq || a.id - b.id;
}

