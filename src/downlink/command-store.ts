import type Database from 'better-sqlite3';
import type { Command } from './command.js';

/** How a command ended. */
export type Outcome = 'delivered' | 'expired' | 'rejected' | 'failed';

/** A command row as the dispatcher sees it. */
export interface StoredCommand {
  /** Arrival order in this file (never reused): order per target. */
  n: number;
  id: string;
  target: string;
  payload: Buffer;
  deadline: number;
  received: number;
  attempts: number;
  origin: string | null;
}

/** A finished command whose result record is to be journaled (or was). */
export interface FinishedCommand {
  n: number;
  id: string;
  target: string | null;
  outcome: Outcome;
  reason: string | null;
  doneAt: number;
  received: number;
  attempts: number;
  origin: string | null;
}

/** A command as it arrives from Kafka: parsed, or rejected at once with a reason. */
export type Arrival = { command: Command; origin: string } | { rejected: { id: string; target: string | null; reason: string }; origin: string };

import { DOWNLINK_TABLES } from '../journal/component-tables.js';

export class CommandStore {
  private readonly s: ReturnType<CommandStore['prepare']>;

  constructor(
    private readonly db: Database.Database,
    private readonly downlink: string,
  ) {
    db.exec(DOWNLINK_TABLES);
    this.s = this.prepare();
  }

  private prepare() {
    const db = this.db;
    return {
      insert: db.prepare("INSERT OR IGNORE INTO downlink_commands (downlink, id, target, payload, received, deadline, origin, state) VALUES (?, ?, ?, ?, ?, ?, ?, 'waiting')"),
      insertRejected: db.prepare("INSERT OR IGNORE INTO downlink_commands (downlink, id, target, received, origin, state, outcome, reason, done_at, result) VALUES (?, ?, ?, ?, ?, 'done', 'rejected', ?, ?, 1)"),
      has: db.prepare('SELECT 1 FROM downlink_commands WHERE downlink = ? AND id = ?').pluck(),
      waitingCount: db.prepare("SELECT count(*) FROM downlink_commands WHERE downlink = ? AND state = 'waiting'").pluck(),
      oldestWaiting: db.prepare("SELECT min(received) FROM downlink_commands WHERE downlink = ? AND state = 'waiting'").pluck(),
      // In-flight commands are not expired by the dispatcher (their acknowledgement or a resend ends them): not a reason to wake it.
      nextDeadlines: db.prepare("SELECT n, deadline FROM downlink_commands WHERE downlink = ? AND state = 'waiting' AND n NOT IN (SELECT n FROM downlink_outgoing) ORDER BY deadline LIMIT ?"),
      heads: db.prepare("SELECT n, id, target, payload, deadline, received, attempts, origin FROM downlink_commands WHERE n IN (SELECT min(n) FROM downlink_commands WHERE downlink = ? AND state = 'waiting' GROUP BY target) ORDER BY n"),
      expired: db.prepare("SELECT n, id, target, payload, deadline, received, attempts, origin FROM downlink_commands WHERE downlink = ? AND state = 'waiting' AND deadline <= ? ORDER BY n"),
      oldestDroppable: db.prepare("SELECT n FROM downlink_commands WHERE downlink = ? AND state = 'waiting' AND n NOT IN (SELECT n FROM downlink_outgoing) ORDER BY n LIMIT ?").pluck(),
      get: db.prepare('SELECT n, id, target, payload, deadline, received, attempts, origin FROM downlink_commands WHERE n = ?'),
      finish: db.prepare("UPDATE downlink_commands SET state = 'done', outcome = ?, reason = ?, done_at = ?, result = 1, payload = NULL WHERE n = ? AND state = 'waiting'"),
      attempt: db.prepare('UPDATE downlink_commands SET attempts = attempts + 1 WHERE n = ?'),
      pendingResults: db.prepare('SELECT n, id, target, outcome, reason, done_at AS doneAt, received, attempts, origin FROM downlink_commands WHERE downlink = ? AND result = 1 ORDER BY n'),
      markResult: db.prepare('UPDATE downlink_commands SET result = 2 WHERE n = ? AND result = 1'),
      pruneAge: db.prepare("DELETE FROM downlink_commands WHERE downlink = ? AND state = 'done' AND result = 2 AND done_at < ?"),
      doneCount: db.prepare("SELECT count(*) FROM downlink_commands WHERE downlink = ? AND state = 'done'").pluck(),
      pruneCount: db.prepare("DELETE FROM downlink_commands WHERE n IN (SELECT n FROM downlink_commands WHERE downlink = ? AND state = 'done' AND result = 2 ORDER BY n LIMIT ?)"),
      putOutgoing: db.prepare('INSERT INTO downlink_outgoing (client, message_id, n, packet) VALUES (?, ?, ?, ?) ON CONFLICT (client, message_id) DO UPDATE SET packet = excluded.packet'),
      replaceOutgoing: db.prepare('UPDATE downlink_outgoing SET packet = ? WHERE client = ? AND message_id = ?'),
      getOutgoing: db.prepare('SELECT n, packet FROM downlink_outgoing WHERE client = ? AND message_id = ?'),
      delOutgoing: db.prepare('DELETE FROM downlink_outgoing WHERE client = ? AND message_id = ?'),
      listOutgoing: db.prepare('SELECT message_id AS messageId, n, packet FROM downlink_outgoing WHERE client = ? ORDER BY n'),
      inFlight: db.prepare('SELECT o.n FROM downlink_outgoing o JOIN downlink_commands c ON c.n = o.n WHERE c.downlink = ?').pluck(),
      delOutgoingOf: db.prepare('DELETE FROM downlink_outgoing WHERE n = ?'),
      outgoingClients: db.prepare('SELECT o.n, o.client FROM downlink_outgoing o JOIN downlink_commands c ON c.n = o.n WHERE c.downlink = ? ORDER BY o.n'),
    };
  }

  /**
   * Stores commands as they came from one Kafka batch, in one transaction (before the offsets are
   * committed). An id already known (a redelivery, or produced twice) is ignored. Returns how
   * many were new and how many were duplicates.
   */
  insert(arrivals: Arrival[], now: number, admit: (arrival: Arrival) => Arrival = (a) => a): { added: number; rejected: number; duplicates: number } {
    const out = { added: 0, rejected: 0, duplicates: 0 };
    this.db.transaction(() => {
      for (const given of arrivals) {
        // The bound on waiting commands may turn an arrival into a rejection.
        const a = admit(given);
        if ('command' in a) {
          const c = a.command;
          if (this.s.insert.run(this.downlink, c.id, c.target, c.payload, now, c.deadline, a.origin).changes) out.added++;
          else out.duplicates++;
        } else {
          if (this.s.insertRejected.run(this.downlink, a.rejected.id, a.rejected.target, now, a.origin, a.rejected.reason, now).changes) out.rejected++;
          else out.duplicates++;
        }
      }
    })();
    return out;
  }

  has(id: string): boolean {
    return this.s.has.get(this.downlink, id) !== undefined;
  }

  waitingCount(): number {
    return this.s.waitingCount.get(this.downlink) as number;
  }

  oldestWaitingReceived(): number | null {
    return (this.s.oldestWaiting.get(this.downlink) as number | null) ?? null;
  }

  /** The earliest deadline of a waiting command not in flight (a row of downlink_outgoing, or one of `inFlight`), or null. */
  nextDeadline(inFlight: ReadonlySet<number> | ReadonlyMap<number, unknown> = new Set()): number | null {
    const rows = this.s.nextDeadlines.all(this.downlink, inFlight.size + 1) as { n: number; deadline: number }[];
    return rows.find((r) => !inFlight.has(r.n))?.deadline ?? null;
  }

  /** The oldest waiting command of each target, oldest first. */
  heads(): StoredCommand[] {
    return this.s.heads.all(this.downlink) as StoredCommand[];
  }

  expiredBy(now: number): StoredCommand[] {
    return this.s.expired.all(this.downlink, now) as StoredCommand[];
  }

  /**
   * The oldest waiting command not in flight (for overflow = "drop_oldest"), or null: not a row of
   * downlink_outgoing, nor one of `inFlight` (the dispatcher's, e.g. a serial write under way).
   */
  oldestDroppable(inFlight: ReadonlySet<number> | ReadonlyMap<number, unknown> = new Set()): number | null {
    const ns = this.s.oldestDroppable.all(this.downlink, inFlight.size + 1) as number[];
    return ns.find((n) => !inFlight.has(n)) ?? null;
  }

  get(n: number): StoredCommand | null {
    return (this.s.get.get(n) as StoredCommand | undefined) ?? null;
  }

  /** Decides a waiting command's outcome (once: false if it was finished already). */
  finish(n: number, outcome: Outcome, reason: string | null, at: number): boolean {
    return this.db.transaction(() => {
      this.s.delOutgoingOf.run(n);
      return this.s.finish.run(outcome, reason, at, n).changes === 1;
    })();
  }

  /** This downlink's packets in flight, with the MQTT client each was sent on. */
  outgoingClients(): { n: number; client: string }[] {
    return this.s.outgoingClients.all(this.downlink) as { n: number; client: string }[];
  }

  countAttempt(n: number): void {
    this.s.attempt.run(n);
  }

  /** Finished commands whose result record is not yet journaled, in order. */
  pendingResults(): FinishedCommand[] {
    return this.s.pendingResults.all(this.downlink) as FinishedCommand[];
  }

  /** Marks result records journaled; call inside the journal's commit transaction. */
  markResults(ns: readonly number[]): void {
    for (const n of ns) this.s.markResult.run(n);
  }

  /** Forgets finished ids older than `before` and past `max`; returns how many went. */
  prune(before: number, max: number): number {
    let removed = this.s.pruneAge.run(this.downlink, before).changes;
    const over = (this.s.doneCount.get(this.downlink) as number) - max;
    if (over > 0) removed += this.s.pruneCount.run(this.downlink, over).changes;
    return removed;
  }

  // --- MQTT.js outgoing store rows ---

  putOutgoing(client: string, messageId: number, n: number, packet: Buffer): void {
    this.s.putOutgoing.run(client, messageId, n, packet);
  }

  /** Replaces the stored packet of a message id (the PUBREL after PUBREC); false if unknown. */
  replaceOutgoing(client: string, messageId: number, packet: Buffer): boolean {
    return this.s.replaceOutgoing.run(packet, client, messageId).changes === 1;
  }

  getOutgoing(client: string, messageId: number): { n: number; packet: Buffer } | null {
    return (this.s.getOutgoing.get(client, messageId) as { n: number; packet: Buffer } | undefined) ?? null;
  }

  /** Runs `fn` in one transaction (nested ones become savepoints). */
  atomically<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  delOutgoing(client: string, messageId: number): void {
    this.s.delOutgoing.run(client, messageId);
  }

  listOutgoing(client: string): { messageId: number; n: number; packet: Buffer }[] {
    return this.s.listOutgoing.all(client) as { messageId: number; n: number; packet: Buffer }[];
  }

  /** Commands of this downlink with a packet in flight (any client). */
  inFlight(): number[] {
    return this.s.inFlight.all(this.downlink) as number[];
  }
}
