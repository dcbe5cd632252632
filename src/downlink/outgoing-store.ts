import { Readable } from 'node:stream';
import type { IPublishPacket, Packet } from 'mqtt';
import type { CommandStore } from './command-store.js';

/** What the store tells its publisher. */
export interface OutgoingEvents {
  /** The command whose PUBLISH MQTT.js is storing now (the publisher sets it around `publish`). */
  current(): number | null;
  /** MQTT.js removed the packet: the broker answered PUBACK (QoS 1) or PUBCOMP (QoS 2), or refused it. */
  acked(n: number, messageId: number): void;
  /** A stored PUBLISH not yet acknowledged may still be sent (on a connect): false drops it. */
  mayResend(n: number): boolean;
}

type StoredPacket = { cmd: 'publish'; topic: string; payload: string; qos: 1 | 2; retain: boolean; messageId: number } | { cmd: 'pubrel'; messageId: number };

/*
 * MQTT.js's outgoingStore for a downlink client, in the journal's SQLite file. MQTT.js puts a
 * QoS 1/2 PUBLISH here before it writes it to the socket, replaces it by the PUBREL when the
 * PUBREC comes, and deletes it at PUBACK/PUBCOMP; on every connect it sends again what is here,
 * with the same packet ids. So a kill -9 anywhere leaves the packet id on disk, and the resend
 * after the restart carries the id the broker already knows: Mosquitto keeps a QoS 2 message
 * by packet id until the PUBREL and does not deliver it twice. The row names the command, so an
 * acknowledgement that arrives for a packet of the last run still finishes the right command.
 */
export class OutgoingStore {
  constructor(
    private readonly store: CommandStore,
    private readonly client: string,
    private readonly events: OutgoingEvents,
  ) {}

  put(packet: Packet, cb: (err?: Error) => void): this {
    const id = (packet as { messageId?: number }).messageId;
    if (id === undefined) {
      cb();
      return this;
    }
    try {
      if (packet.cmd === 'pubrel') {
        this.store.replaceOutgoing(this.client, id, encode({ cmd: 'pubrel', messageId: id }));
      } else if (packet.cmd === 'publish') {
        const p = packet as IPublishPacket;
        const n = this.events.current();
        if (n === null) throw new Error('a PUBLISH the downlink did not send');
        const payload = typeof p.payload === 'string' ? Buffer.from(p.payload) : Buffer.from(p.payload);
        this.store.putOutgoing(this.client, id, n, encode({ cmd: 'publish', topic: p.topic, payload: payload.toString('base64'), qos: p.qos as 1 | 2, retain: p.retain, messageId: id }));
      }
    } catch (err) {
      cb(err as Error);
      return this;
    }
    cb();
    return this;
  }

  get(packet: Packet, cb: (err?: Error, packet?: Packet) => void): this {
    const id = (packet as { messageId?: number }).messageId!;
    const row = this.store.getOutgoing(this.client, id);
    if (!row) cb(new Error('missing packet'));
    else cb(undefined, decode(row.packet));
    return this;
  }

  del(packet: Packet, cb: (err?: Error, packet?: Packet) => void): this {
    const id = (packet as { messageId?: number }).messageId!;
    const row = this.store.getOutgoing(this.client, id);
    if (!row) {
      cb(new Error('missing packet'));
      return this;
    }
    // The row goes in the transaction that finishes the command: a kill -9 between the two would leave
    // the command waiting with no packet id, published again under a new one (a QoS 2 command twice).
    this.store.atomically(() => {
      this.store.delOutgoing(this.client, id);
      this.events.acked(row.n, id);
    });
    cb(undefined, decode(row.packet));
    return this;
  }

  /** What to send again on a connect; a PUBLISH its command may no longer have (expired) is dropped here. */
  createStream(): Readable {
    const out: Packet[] = [];
    for (const row of this.store.listOutgoing(this.client)) {
      const p = decode(row.packet);
      if (p.cmd === 'publish' && !this.events.mayResend(row.n)) continue;
      out.push(p);
    }
    return Readable.from(out, { objectMode: true });
  }

  close(cb: () => void): void {
    cb();
  }
}

function encode(p: StoredPacket): Buffer {
  return Buffer.from(JSON.stringify(p));
}

function decode(b: Buffer): Packet {
  const p = JSON.parse(b.toString('utf8')) as StoredPacket;
  if (p.cmd === 'pubrel') return { cmd: 'pubrel', qos: 2, messageId: p.messageId } as Packet;
  // A resend: the broker may have seen it; dup tells it so.
  return { cmd: 'publish', topic: p.topic, payload: Buffer.from(p.payload, 'base64'), qos: p.qos, retain: p.retain, dup: true, messageId: p.messageId } as Packet;
}
