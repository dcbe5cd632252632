import type { Component } from '../component.js';

/**
 * How good a shipped capture time is: "synced" (the clock was synchronised when the record was
 * captured), "corrected" (captured before the first sync of the same boot; moved by the offset the
 * sync revealed), "unsynced" (the clock's guess: captured in a boot never synchronised, or before
 * sluice tracked clocks).
 */
export type TimeQuality = 'synced' | 'corrected' | 'unsynced';

/** One reading, as journaled and shipped. */
export interface JournalRecord {
  /** Gateway-wide sequence number: monotonic, never reused. */
  seq: number;
  /** Capture time, milliseconds since the epoch. */
  time: number;
  /** Source that produced it, e.g. "mqtt:local". */
  source: string;
  /** Source topic: the MQTT topic, or the serial port's topic. */
  topic: string;
  /** Partition key chosen at the source, if any (routes may set one at ship time instead). */
  key: string | null;
  payload: Buffer;
  /** Extra headers from the source, if any. */
  headers: Record<string, string> | null;
  /** Set by `read` when the journal tracks clocks: how good `time` is (then the best-known time). */
  timeQuality?: TimeQuality;
  /** Set by `read` for a corrected record: the capture time the gateway's clock said. */
  clockTime?: number;
}

export type NewRecord = Omit<JournalRecord, 'seq' | 'timeQuality' | 'clockTime'>;

export interface JournalStats {
  /** Records not yet confirmed by every sink (approximate while appends are pending). */
  backlogRecords: number;
  /** Capture time of the oldest record still journaled, or null when empty. */
  oldestTime: number | null;
  /** Highest seq committed to disk. */
  committedSeq: number;
  /** Bytes the database file holds in use (pages minus free pages). */
  usedBytes: number;
  /** Payload bytes of the records journaled (all sinks). */
  storedBytes: number;
  commits: number;
  /** Why the journal refuses records now ("max_bytes", "min_free_bytes", "disk_full", "commit_failing"), or null. */
  full: string | null;
}

/**
 * Small state a component keeps in step with the journal: written in the same transaction as a
 * group commit, so after a kill -9 it matches the records committed (the MQTT source keeps the
 * ids of messages journaled but not yet acknowledged to the broker this way).
 */
export interface CommitSidecar {
  /** Changes whenever the state changes; the journal writes only when it differs from the last written. */
  version(): number;
  /** The state, a few bytes. */
  encode(): Buffer;
}

/**
 * The store-and-forward journal: the only place a record lives between source and sink.
 * Appends are group-committed; each sink reads after its own cursor and acknowledges ranges.
 */
export interface Journal extends Component {
  /**
   * Queues a record for the next group commit and returns its seq. Not durable until `onCommit` reports a seq at or past it.
   * Throws SluiceError `SLUICE_JOURNAL_FULL` (retriable) when a bound (max_bytes, min_free_bytes, disk full, or too many
   * records waiting while commits fail) stops it taking
   * the record: sources that cannot wait (serial) count the record as dropped and report a gap.
   */
  append(record: NewRecord): number;
  /** Called after each group commit with the highest seq now durable. Returns an unsubscribe function. */
  onCommit(listener: (committedSeq: number) => void): () => void;
  /** False while a bound or a full disk holds appends off (they throw SLUICE_JOURNAL_FULL). */
  readonly accepting: boolean;
  /**
   * True while a full group (commit_max_records records or 4 MiB) is already due to commit and
   * commits succeed: a source that can stop reading should wait for the next `onCommit` rather
   * than pile more records in memory behind it.
   */
  readonly commitDue?: boolean;
  /** Commits whatever is pending now. */
  flush(): void;
  /** Highest seq durably committed. */
  readonly committedSeq: number;
  /** Highest seq handed out by `append` (committed or pending). */
  readonly lastAssignedSeq: number;
  /** Makes sure the named sinks have cursors; forgets cursors of sinks not named. */
  registerSinks(names: readonly string[]): void;
  /** The sink's cursor: every record at or below it is confirmed by that sink. */
  cursor(sink: string): number;
  /** Committed records after `afterSeq`, in seq order, up to the limits (at least one record if any). */
  read(afterSeq: number, maxRecords: number, maxBytes: number): JournalRecord[];
  /** Moves the sink's cursor to `seq` and deletes what every sink has confirmed. */
  ack(sink: string, seq: number): void;
  /**
   * The sink has records through `seq` on the wire (null: nothing). Eviction leaves those rows
   * alone, so a record is never both delivered and reported lost.
   */
  inFlight(sink: string, seq: number | null): void;
  stats(): JournalStats;
  /**
   * Optional: the best-known time of a time captured in the clock epoch of record `seq` (gap records
   * carry such times in their payload), and how good it is.
   */
  timeOf?(seq: number, time: number): { time: number; quality: TimeQuality };
  /**
   * Optional: keeps `sidecar`'s state under `name`, written in the transaction of every group
   * commit when it changed; null/undefined unsets it. Returns what the last run committed for `name`.
   */
  setCommitSidecar?(name: string, sidecar: CommitSidecar | null): Buffer | null;
  /**
   * Optional: writes the sidecars whose state changed now, in a transaction of their own, without
   * waiting for records to commit (the MQTT source's subscriptions change with no record to carry them).
   */
  commitSidecars?(): void;
}
