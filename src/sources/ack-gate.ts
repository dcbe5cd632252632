import type { MqttClient, Packet } from 'mqtt';
import { SluiceError } from '../errors.js';
import { encodeAcks, isEncodableAck, type EncodableAck } from './ack-encoder.js';

/*
 * Holds PUBACK/PUBREC until the journal commit that contains the message, without stalling
 * MQTT.js's parser.
 *
 * MQTT.js handles one incoming packet at a time and sends PUBACK only after `handleMessage`
 * calls back; waiting for an fsync there caps a connection at one commit per message. Instead,
 * `handleMessage` calls back at once and this gate catches the acknowledgement on its way out
 * (`_sendPacket`, an MQTT.js internal), lets the parser go on, and sends the held acks in
 * arrival order once the journal reports them committed. mqtt is pinned to an exact version
 * for this; test/integration/mqtt-ack-gate.test.ts fails if an upgrade changes the internals.
 */

type SendPacket = (packet: Packet, cb?: (err?: Error) => void, cbStorePut?: () => void, noStore?: boolean) => void;

interface Held {
  packet: Packet;
  /** Send once the journal has committed through this seq. */
  waitFor: number;
  generation: number;
}

export class AckGate {
  private readonly held: Held[] = [];
  /** messageId → seq the ack for it must wait for; set by the source before MQTT.js sends the ack. */
  private readonly expected = new Map<number, number>();
  private generation = 0;
  private readonly send: SendPacket;
  /** PINGREQs written on this connection (MQTT.js's keepalive ones too) and PINGRESPs read back. */
  private pingsSent = 0;
  private pingsAnswered = 0;
  /** An ack went out after the last PINGREQ: its arrival is not yet confirmed. */
  private ackedSincePing = false;

  constructor(
    private readonly client: MqttClient,
    private readonly committedSeq: () => number,
    /**
     * Called when a held ack was written to the connection, with the number of PINGREQs written
     * before it: the ack reached the broker once that many + 1 PINGRESPs came back.
     */
    private readonly onAckSent: (messageId: number, pingsBefore: number) => void = () => undefined,
    /**
     * Called with the number of PINGRESPs read on this connection. TCP is ordered and the broker
     * handles packets in order, so a PINGRESP proves it read every ack written before its PINGREQ.
     * An ack written to the socket is not yet received: a kill -9 with unread input resets the
     * connection and discards what the kernel had not sent (the broker then redelivers).
     * This relies on the broker handling one client's packets in order, as Mosquitto does; a broker
     * that crashes after reading an ack but before saving it still redelivers (a duplicate, never a loss).
     */
    private readonly onAcksConfirmed: (pingsAnswered: number) => void = () => undefined,
  ) {
    const internal = client as unknown as { _sendPacket?: SendPacket };
    if (typeof internal._sendPacket !== 'function') {
      throw new SluiceError('SLUICE_MQTT_INTERNALS', 'this MQTT.js version has no _sendPacket; the acknowledgement gate cannot work with it (mqtt is pinned in package.json for this reason)');
    }
    this.send = internal._sendPacket.bind(client);
    // MQTT.js drops the connection when more QoS 2 messages are in flight than the receive maximum
    // it announced. Mosquitto frees its quota at PUBREC (not PUBCOMP) and resends all of a
    // session's in-flight messages at reconnect, so it overshoots; at small receive maximums that
    // became an endless reconnect-redeliver loop (test: receive maximum 3). Track, never refuse.
    const tracker = client as unknown as { _trackIncomingQoS2Publish?: (id: number) => boolean; _incomingQoS2Ids?: Set<number> };
    if (typeof tracker._trackIncomingQoS2Publish !== 'function' || !(tracker._incomingQoS2Ids instanceof Set)) {
      throw new SluiceError('SLUICE_MQTT_INTERNALS', 'this MQTT.js version has no _trackIncomingQoS2Publish; sluice is pinned to mqtt 5.16.0');
    }
    tracker._trackIncomingQoS2Publish = (id: number) => {
      tracker._incomingQoS2Ids!.add(id);
      return true;
    };
    client.on('packetreceive', (packet: Packet) => {
      if (packet.cmd !== 'pingresp' || this.pingsAnswered >= this.pingsSent) return;
      this.pingsAnswered++;
      this.onAcksConfirmed(this.pingsAnswered);
      this.pingIfUnconfirmed();
    });
    internal._sendPacket = (packet, cb, cbStorePut, noStore) => {
      if (packet.cmd === 'pingreq') {
        this.pingsSent++;
        this.ackedSincePing = false;
      }
      if ((packet.cmd === 'puback' || packet.cmd === 'pubrec') && packet.messageId !== undefined && !client.connected) {
        // The ack of a message from a connection that is gone (MQTT.js's parser went on after the
        // close): MQTT.js would queue it for the next connection, where the id may name another
        // message. The broker redelivers the message instead.
        this.expected.delete(packet.messageId);
        cb?.();
        return;
      }
      if ((packet.cmd === 'puback' || packet.cmd === 'pubrec') && packet.messageId !== undefined && this.expected.has(packet.messageId)) {
        const waitFor = this.expected.get(packet.messageId)!;
        this.expected.delete(packet.messageId);
        this.held.push({ packet, waitFor, generation: this.generation });
        this.release();
        // Let MQTT.js parse the next packet now; the ack goes out later, in order.
        cb?.();
        return;
      }
      this.send(packet, cb, cbStorePut, noStore);
    };
  }

  /** The ack MQTT.js is about to send for `messageId` must wait until `seq` is committed. */
  expect(messageId: number, seq: number): void {
    this.expected.set(messageId, seq);
  }

  /** Sends every held ack whose record is committed, stopping at the first that is not (order). */
  release(): void {
    const committed = this.committedSeq();
    let n = 0;
    while (n < this.held.length && this.held[n]!.waitFor <= committed) n++;
    if (n === 0) return;
    const ready = this.held.splice(0, n);
    // Written as one Buffer (ack-encoder.ts); an ack it cannot encode goes through MQTT.js, in order.
    const batch: EncodableAck[] = [];
    for (const h of ready) {
      if (h.generation !== this.generation || !this.client.connected) continue;
      if (isEncodableAck(h.packet)) batch.push(h.packet);
      else {
        this.write(batch);
        this.send(h.packet);
      }
      this.ackedSincePing = true;
      this.onAckSent(h.packet.messageId!, this.pingsSent);
    }
    this.write(batch);
    this.pingIfUnconfirmed();
  }

  /** Writes (and empties) `batch` straight to the connection's stream, as MQTT.js would have. */
  private write(batch: EncodableAck[]): void {
    if (batch.length === 0) return;
    // MQTT.js announces every packet it writes; listeners (tests, debugging) still see each ack.
    if (this.client.listenerCount('packetsend') > 0) for (const p of batch) this.client.emit('packetsend', p);
    this.client.stream.write(encodeAcks(batch, this.client.options.protocolVersion ?? 4));
    batch.length = 0;
  }

  /** One PINGREQ in flight at a time, only while some ack's arrival is unconfirmed. */
  private pingIfUnconfirmed(): void {
    if (!this.ackedSincePing || this.pingsAnswered < this.pingsSent || !this.client.connected) return;
    // Through the patched _sendPacket, so it is counted like MQTT.js's own keepalive pings.
    (this.client as unknown as { _sendPacket: SendPacket })._sendPacket({ cmd: 'pingreq' } as Packet);
  }

  /**
   * The connection is gone: acks held for it must never reach a later connection, where the
   * same message id may name another message. The broker redelivers those messages.
   */
  connectionLost(): number {
    const dropped = this.held.length;
    this.held.length = 0;
    this.expected.clear();
    this.generation++;
    this.pingsSent = 0;
    this.pingsAnswered = 0;
    this.ackedSincePing = false;
    return dropped;
  }

  get heldCount(): number {
    return this.held.length;
  }
}
