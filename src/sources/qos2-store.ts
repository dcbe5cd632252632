import { Readable } from 'node:stream';
import type { IPublishPacket, Packet } from 'mqtt';

/*
 * MQTT.js's incomingStore for QoS 2, where the journal is the real store. The broker hands a
 * QoS 2 message over at PUBREC, so the record must be journaled before PUBREC goes out, not at
 * PUBREL when MQTT.js would deliver it; `put` is that moment, and the ack gate holds the PUBREC
 * until the group commit. After a restart the broker only
 * resends PUBREL, and `get` failing makes MQTT.js answer PUBCOMP, which is right: the record
 * was journaled before the PUBREC.
 */
export class Qos2Store {
  private readonly known = new Map<number, { topic: string }>();

  /**
   * `onPublish` journals a new QoS 2 PUBLISH; false means it could not, and no PUBREC may follow.
   * `proceed` lets MQTT.js go on to the next packet (now, or once a due commit happened).
   */
  constructor(
    private readonly onPublish: (packet: IPublishPacket, isRedelivery: boolean) => boolean,
    private readonly proceed: (next: () => void) => void = (next) => next(),
  ) {}

  put(packet: Packet, cb: (err?: Error) => void): this {
    const p = packet as IPublishPacket;
    const id = p.messageId!;
    const redelivery = this.known.has(id);
    if (!this.onPublish(p, redelivery)) return this; // no callback: no PUBREC; the source reconnects
    if (!redelivery) this.known.set(id, { topic: p.topic });
    this.proceed(() => cb());
    return this;
  }

  get(packet: Packet, cb: (err?: Error, packet?: Packet) => void): this {
    const id = (packet as { messageId?: number }).messageId!;
    const k = this.known.get(id);
    if (!k) {
      cb(new Error('unknown QoS 2 message id'));
      return this;
    }
    cb(undefined, { cmd: 'publish', qos: 2, dup: false, retain: false, topic: k.topic, payload: Buffer.alloc(0), messageId: id } as IPublishPacket);
    return this;
  }

  del(packet: Packet, cb: (err?: Error, packet?: Packet) => void): this {
    const id = (packet as { messageId?: number }).messageId!;
    this.known.delete(id);
    cb(undefined, packet);
    return this;
  }

  createStream(): Readable {
    return Readable.from([]);
  }

  close(cb: () => void): void {
    cb();
  }
}
