import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import type mqttPacketTypes from 'mqtt-packet';
import { encodeAcks, isEncodableAck, type EncodableAck } from '../../src/sources/ack-encoder.js';

// What MQTT.js itself sends for each ack: the mqtt-packet that mqtt resolves (its own dependency).
const fromMqtt = createRequire(createRequire(import.meta.url).resolve('mqtt'));
const mqttPacket = fromMqtt('mqtt-packet') as typeof mqttPacketTypes;
type Packet = mqttPacketTypes.Packet;
const reference = (acks: EncodableAck[], protocolVersion: number): Buffer => Buffer.concat(acks.map((a) => mqttPacket.generate(a as Packet, { protocolVersion })));

test('PUBACKs and PUBRECs encode to the bytes mqtt-packet writes, in every protocol version, with and without reason codes', () => {
  const acks: EncodableAck[] = [];
  for (const cmd of ['puback', 'pubrec'] as const) {
    for (const messageId of [1, 255, 256, 4660, 65535]) {
      acks.push({ cmd, messageId } as EncodableAck);
      acks.push({ cmd, messageId, reasonCode: 0 } as EncodableAck);
      acks.push({ cmd, messageId, reasonCode: 0x10 } as EncodableAck);
      acks.push({ cmd, messageId, reasonCode: 0x97 } as EncodableAck);
    }
  }
  for (const version of [3, 4, 5]) {
    // Version 3 and 4 have no reason codes on the wire; mqtt-packet leaves them out there.
    assert.deepEqual(encodeAcks(acks, version), reference(acks, version), `protocol version ${version}`);
    for (const a of acks) assert.deepEqual(encodeAcks([a], version), reference([a], version), `${a.cmd} ${a.messageId} rc ${a.reasonCode} v${version}`);
  }
  assert.equal(encodeAcks([], 5).length, 0);
});

test('an ack with MQTT 5 properties, or any other packet, is left to MQTT.js', () => {
  assert.equal(isEncodableAck({ cmd: 'puback', messageId: 1 } as Packet), true);
  assert.equal(isEncodableAck({ cmd: 'pubrec', messageId: 1, reasonCode: 0 } as Packet), true);
  assert.equal(isEncodableAck({ cmd: 'puback', messageId: 1, properties: { reasonString: 'x' } } as Packet), false);
  assert.equal(isEncodableAck({ cmd: 'pubcomp', messageId: 1 } as Packet), false);
  assert.equal(isEncodableAck({ cmd: 'pingreq' } as Packet), false);
  assert.equal(isEncodableAck({ cmd: 'puback' } as Packet), false);
});
