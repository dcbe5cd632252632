import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeValue, envelopePayload } from '../../src/sinks/envelope.js';

const rec = (payload: Buffer) => ({ seq: 42, time: Date.UTC(2026, 0, 2, 3, 4, 5, 678), source: 'mqtt:local', topic: 'dev/d1/reading', key: null, payload, headers: null });

test('envelope: payload as JSON when it parses, else UTF-8 text, else base64, named in payload_encoding', () => {
  assert.deepEqual(envelopePayload(Buffer.from('{"t":21.5}')), { payload_encoding: 'json', payload: { t: 21.5 } });
  assert.deepEqual(envelopePayload(Buffer.from('21.5 °C')), { payload_encoding: 'utf8', payload: '21.5 °C' });
  assert.deepEqual(envelopePayload(Buffer.from('42')), { payload_encoding: 'json', payload: 42 });
  const binary = Buffer.from([0xff, 0xfe, 0x00, 0x80]);
  assert.deepEqual(envelopePayload(binary), { payload_encoding: 'base64', payload: binary.toString('base64') });
});

test('envelope carries gateway, seq, source, original topic, capture time and key; raw leaves the payload untouched', () => {
  const r = rec(Buffer.from('{"t":1}'));
  assert.equal(encodeValue('raw', r, 'gw-1', 'd1'), r.payload);
  assert.deepEqual(JSON.parse(encodeValue('envelope', r, 'gw-1', 'd1').toString()), {
    gateway: 'gw-1',
    seq: 42,
    source: 'mqtt:local',
    topic: 'dev/d1/reading',
    time: '2026-01-02T03:04:05.678Z',
    key: 'd1',
    payload_encoding: 'json',
    payload: { t: 1 },
  });
});
