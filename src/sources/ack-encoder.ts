import type { Packet } from 'mqtt';

/*
 * PUBACK and PUBREC, many to one Buffer. mqtt-packet writes each acknowledgement to the socket as
 * three or four small Buffers, and Node's stream keeps every one as its own entry (~250 B of heap)
 * while a write is pending. Mosquitto delivering a session's backlog reads nothing from a client
 * until it has written its queue, so one commit's acks then waited as ~100,000 entries (~30 MB at
 * 60,000 messages, measured). One Buffer per commit is the same bytes on the wire.
 */

/** Fixed header byte of each acknowledgement this encodes (MQTT 3.1.1 and 5, §3.4 and §3.5). */
const FIRST_BYTE = { puback: 0x40, pubrec: 0x50 } as const;

/** An acknowledgement `encodeAcks` writes. */
export type EncodableAck = Packet & { cmd: 'puback' | 'pubrec'; messageId: number; reasonCode?: number; properties?: object };

/** True when `encodeAcks` can write this packet: a PUBACK or PUBREC without MQTT 5 properties. */
export function isEncodableAck(packet: Packet): packet is EncodableAck {
  const p = packet as Partial<EncodableAck>;
  return (p.cmd === 'puback' || p.cmd === 'pubrec') && typeof p.messageId === 'number' && (p.properties === undefined || p.properties === null);
}

/**
 * The acknowledgements' bytes, in order, exactly as mqtt-packet 9 generates them: in MQTT 5 a
 * reason code of 0 is left out (length 2); any other, or none given, is written with an empty
 * property length, as mqtt-packet does.
 */
export function encodeAcks(acks: readonly EncodableAck[], protocolVersion: number): Buffer {
  const v5 = protocolVersion === 5;
  let size = 0;
  for (const a of acks) size += v5 && a.reasonCode !== 0 ? 6 : 4;
  const out = Buffer.allocUnsafe(size);
  let o = 0;
  for (const a of acks) {
    const long = v5 && a.reasonCode !== 0;
    out[o] = FIRST_BYTE[a.cmd];
    out[o + 1] = long ? 4 : 2;
    out[o + 2] = a.messageId >> 8;
    out[o + 3] = a.messageId & 0xff;
    if (long) {
      out[o + 4] = a.reasonCode ?? 0;
      out[o + 5] = 0;
    }
    o += long ? 6 : 4;
  }
  return out;
}
