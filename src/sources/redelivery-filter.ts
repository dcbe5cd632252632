import { crc32 } from 'node:zlib';
import type { CommitSidecar } from '../journal/journal.js';

/*
 * Recognises a QoS 1/2 PUBLISH the broker redelivers (DUP=1) after sluice journaled it but its
 * PUBACK/PUBREC never reached the broker: the connection dropped with the ack held for the group
 * commit, or sluice was killed between the commit and the ack. Such a message is not journaled
 * again; its ack waits for the original record's commit.
 *
 * An entry per message journaled whose ack the broker has not surely read: message id → (hash of topic and
 * payload, seq). The journal persists the set in the same transaction as every group commit
 * (`sidecar`), so after a kill -9 the set of the last commit is loaded back: it holds every
 * message whose ack may not have left. Loaded entries' records are committed (seq 0 = no wait).
 *
 * Never dedupe wrongly (that would lose a message): a match needs DUP=1 (the broker's own "I sent
 * this before"), the same id, topic and payload. Entries go away once a PINGRESP proves the broker
 * read their ack (an ack written to a socket is lost if sluice dies before the kernel sends it), when the
 * id shows up with another message (the broker reused it), when a session is not present (nothing
 * will be redelivered), and once a new connection delivers its first non-DUP message: the broker
 * resends its in-flight messages first, so every redelivery has come by then. Clearing too early
 * can only let a duplicate through, never drop a message.
 */

interface Entry {
  /** CRC-32 of topic and payload. */
  crc: number;
  /** Seq whose commit the ack must wait for; 0 when loaded from disk (committed). */
  seq: number;
  /** Connection generation the entry was taken (or last matched) on. */
  generation: number;
  /** Set once its ack was written: PINGREQs written before it (see AckGate). Kept until a PINGRESP confirms the broker read it. */
  ackedAfterPings?: number;
}

/** Bytes per persisted entry: message id (2) + CRC-32 of topic and payload (4). */
const ENTRY_BYTES = 6;
/** Topics repeat: their CRC is remembered (a few hundred topics at most on a gateway). */
const TOPIC_CACHE_MAX = 1024;

export class RedeliveryFilter {
  private readonly entries = new Map<number, Entry>();
  private generation = 0;
  /** Entries from earlier connections (or runs) are still present until the first non-DUP message. */
  private carriedOver = false;
  private changes = 0;
  private readonly topicCrcs = new Map<string, number>();
  /** Entries whose ack was written, in the order the acks left. */
  private unconfirmed: { id: number; entry: Entry }[] = [];

  /** A false match needs the same id, DUP=1 and this 32-bit value of another message: see above. */
  private hash(topic: string, payload: Buffer): number {
    let t = this.topicCrcs.get(topic);
    if (t === undefined) {
      if (this.topicCrcs.size >= TOPIC_CACHE_MAX) this.topicCrcs.clear();
      t = crc32(topic);
      this.topicCrcs.set(topic, t);
    }
    return crc32(payload, t);
  }

  /** Restores the set persisted with the last commit of the previous run. */
  load(data: Buffer | null): void {
    if (!data) return;
    for (let o = 0; o + ENTRY_BYTES <= data.length; o += ENTRY_BYTES) {
      this.entries.set(data.readUInt16BE(o), { crc: data.readUInt32BE(o + 2), seq: 0, generation: -1 });
    }
    this.carriedOver = this.entries.size > 0;
  }

  /**
   * Seq of the original record if this PUBLISH is a redelivery of a message already journaled;
   * null if it is to be journaled (and then `journaled` called).
   */
  match(messageId: number, dup: boolean, topic: string, payload: Buffer): number | null {
    if (this.carriedOver && !dup) this.dropCarriedOver();
    const e = this.entries.get(messageId);
    if (!e) return null;
    if (dup && e.crc === this.hash(topic, payload)) {
      e.generation = this.generation; // waits for its ack on this connection
      e.ackedAfterPings = undefined;
      return e.seq;
    }
    // The broker reused the id for another message: the old one was acknowledged.
    this.entries.delete(messageId);
    this.changes++;
    return null;
  }

  /** The message was journaled under `seq`; its ack is not sent yet. */
  journaled(messageId: number, topic: string, payload: Buffer, seq: number): void {
    this.entries.set(messageId, { crc: this.hash(topic, payload), seq, generation: this.generation });
    this.changes++;
  }

  /**
   * The ack for `messageId` was written to the connection after `pingsBefore` PINGREQs. Written is
   * not received: the entry stays (and is persisted) until `confirmed` says the broker read it.
   */
  acked(messageId: number, pingsBefore: number): void {
    const e = this.entries.get(messageId);
    if (!e || e.generation !== this.generation) return;
    e.ackedAfterPings = pingsBefore;
    this.unconfirmed.push({ id: messageId, entry: e });
  }

  /** `pingsAnswered` PINGRESPs came back on this connection: acks written before that PINGREQ arrived. */
  confirmed(pingsAnswered: number): void {
    // Acks leave in order, so their ping counts only grow: confirm from the front.
    let n = 0;
    for (; n < this.unconfirmed.length; n++) {
      const { id, entry } = this.unconfirmed[n]!;
      if (entry.generation !== this.generation) continue; // an old connection's: dropCarriedOver's job
      if (entry.ackedAfterPings === undefined) continue; // matched again by a redelivery: waits anew
      if (entry.ackedAfterPings >= pingsAnswered) break;
      if (this.entries.get(id) === entry) {
        this.entries.delete(id);
        this.changes++;
      }
    }
    if (n > 0) this.unconfirmed.splice(0, n);
  }

  /** A new connection: entries not acked so far may come back as redeliveries on it. */
  connected(sessionPresent: boolean): void {
    this.generation++;
    this.unconfirmed = [];
    if (!sessionPresent) {
      // No session, nothing is redelivered.
      if (this.entries.size > 0) this.changes++;
      this.entries.clear();
      this.carriedOver = false;
      return;
    }
    this.carriedOver = this.entries.size > 0;
  }

  private dropCarriedOver(): void {
    for (const [id, e] of this.entries) {
      if (e.generation < this.generation) {
        this.entries.delete(id);
        this.changes++;
      }
    }
    this.carriedOver = false;
  }

  get size(): number {
    return this.entries.size;
  }

  /** What the journal writes with each commit (only when the set changed since the last one). */
  readonly sidecar: CommitSidecar = {
    version: () => this.changes,
    encode: () => {
      const out = Buffer.allocUnsafe(this.entries.size * ENTRY_BYTES);
      let o = 0;
      // forEach, not for…of: it runs with every group commit over up to receive_maximum entries,
      // and the iterator's [id, entry] pairs were a visible share of the ingest's garbage.
      this.entries.forEach((e, id) => {
        out.writeUInt16BE(id, o);
        out.writeUInt32BE(e.crc, o + 2);
        o += ENTRY_BYTES;
      });
      return out;
    },
  };
}
