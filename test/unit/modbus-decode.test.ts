import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfig } from '../../src/config/load.js';
import { decodeRegisters, shortestFloat32, toBigEndian } from '../../src/sources/modbus/data-types.js';
import { crc16, parsePdu, parseRtuResponse, rtuFrameLength, rtuRequest, tcpRequest } from '../../src/sources/modbus/frames.js';
import { planReads } from '../../src/sources/modbus/register-plan.js';
import { frameGapMs } from '../../src/sources/modbus/rtu-transport.js';

const words = (hex: string): number[] => Array.from({ length: hex.length / 4 }, (_, i) => parseInt(hex.slice(i * 4, i * 4 + 4), 16));

test('CRC-16/MODBUS and request frames match the specification\'s examples', () => {
  assert.deepEqual(rtuRequest({ unit: 1, fn: 3, address: 0, count: 2 }), Buffer.from('010300000002c40b', 'hex'));
  // Modbus over Serial Line v1.02, 6.2.2 example: 02 07 -> CRC 41 12 (low byte first).
  assert.equal(crc16(Buffer.from('0207', 'hex')), 0x1241);
  assert.deepEqual(tcpRequest({ unit: 17, fn: 4, address: 8, count: 1 }, 0x1234), Buffer.from('123400000006110400080001', 'hex'));
});

test('RTU responses: length from the third byte, CRC checked, exceptions named, late answers of another unit set aside', () => {
  const req = { unit: 1, fn: 3 as const, address: 0, count: 2 };
  const body = Buffer.from('010304000a0014', 'hex');
  const frame = Buffer.concat([body, Buffer.alloc(2)]);
  frame.writeUInt16LE(crc16(body), body.length);
  assert.equal(rtuFrameLength(frame.subarray(0, 2)), null);
  assert.equal(rtuFrameLength(frame), 9);
  const ok = parseRtuResponse(frame, req);
  assert.ok(ok !== 'unexpected' && ok.ok);
  assert.deepEqual([...ok.registers!], [10, 20]);
  const bad = Buffer.from(frame);
  bad[4] = bad[4]! ^ 0xff;
  const crc = parseRtuResponse(bad, req);
  assert.ok(crc !== 'unexpected' && !crc.ok && crc.reason === 'crc_error');
  const exc = Buffer.from([1, 0x83, 2, 0, 0]);
  exc.writeUInt16LE(crc16(exc, 3), 3);
  assert.equal(rtuFrameLength(exc), 5);
  assert.deepEqual(parseRtuResponse(exc, req), { ok: false, reason: 'illegal_data_address', detail: 'exception 2' });
  assert.equal(parseRtuResponse(frame, { ...req, unit: 2 }), 'unexpected');
  const short = parsePdu(Buffer.from('0302000a', 'hex'), req);
  assert.ok(!short.ok && short.reason === 'bad_response', 'a byte count that does not fit the request is refused');
  const bits = parsePdu(Buffer.from('01020501', 'hex'), { unit: 1, fn: 1, address: 0, count: 9 });
  assert.ok(bits.ok);
  assert.deepEqual([...bits.bits!], [1, 0, 1, 0, 0, 0, 0, 0, 1], 'coils come LSB first');
});

test('every type in every byte/word order decodes the bytes of the big-endian value', () => {
  // float32 123.456 is 42F6E979 big-endian.
  assert.equal(decodeRegisters(words('42F6E979'), 'float32', 'ABCD'), 123.456);
  assert.equal(decodeRegisters(words('E97942F6'), 'float32', 'CDAB'), 123.456);
  assert.equal(decodeRegisters(words('F64279E9'), 'float32', 'BADC'), 123.456);
  assert.equal(decodeRegisters(words('79E9F642'), 'float32', 'DCBA'), 123.456);
  assert.equal(decodeRegisters(words('FFFE'), 'int16', 'ABCD'), -2);
  assert.equal(decodeRegisters(words('FEFF'), 'int16', 'DCBA'), -2);
  assert.equal(decodeRegisters(words('FFFE'), 'int16', 'CDAB'), -2, 'one word: only the byte order matters');
  assert.equal(decodeRegisters(words('1234'), 'uint16', 'BADC'), 0x3412);
  assert.equal(decodeRegisters(words('FFFFFFFE'), 'int32', 'ABCD'), -2);
  assert.equal(decodeRegisters(words('0001 0000'.replace(' ', '')), 'uint32', 'CDAB'), 1);
  assert.equal(decodeRegisters(words('FFFFFFFFFFFFFFFE'), 'int64', 'ABCD'), -2);
  assert.equal(decodeRegisters(words('0000000000000001'), 'uint64', 'ABCD'), 1);
  assert.equal(decodeRegisters(words('0001000000000000'), 'uint64', 'CDAB'), 1, 'four words reversed');
  assert.equal(decodeRegisters(words('0020000000000001'), 'uint64', 'ABCD'), '9007199254740993', 'beyond 2^53: exact, as a string');
  assert.equal(decodeRegisters(words('400921FB54442D18'), 'float64', 'ABCD'), Math.PI);
  assert.equal(decodeRegisters(words('182D4454FB210940'), 'float64', 'DCBA'), Math.PI);
  assert.equal(decodeRegisters(words('414243440000'), 'string', 'ABCD'), 'ABCD');
  assert.equal(decodeRegisters(words('42414443'), 'string', 'BADC'), 'ABCD');
  assert.equal(decodeRegisters(words('0001'), 'bool', 'ABCD'), true);
  assert.deepEqual(toBigEndian([0x0102, 0x0304], 'DCBA'), Buffer.from('04030201', 'hex'));
  assert.equal(shortestFloat32(Math.fround(230.1)), 230.1);
  assert.equal(shortestFloat32(Math.fround(1e-7)), 1e-7);
});

function device(registers: string): Parameters<typeof planReads>[0] {
  const cfg = parseConfig(`[[modbus]]\nname = "b"\ntransport = "tcp"\naddress = "127.0.0.1:502"\n[[modbus.device]]\nname = "d"\nunit_id = 1\n${registers}`);
  return cfg.modbus[0]!.device[0]!;
}

test('the plan reads touching ranges together, up to 125 registers or 2000 bits, never across a hole or a table', () => {
  const regs = (list: [string, number, string][]): string => list.map(([table, address, type]) => `[[modbus.device.register]]\nname = "r${table}${address}"\ntable = "${table}"\naddress = ${address}\ntype = "${type}"\n`).join('');
  const plan = planReads(
    device(
      regs([
        ['holding_registers', 10, 'float32'],
        ['holding_registers', 0, 'uint16'],
        ['holding_registers', 1, 'int64'],
        ['holding_registers', 5, 'int32'],
        ['holding_registers', 7, 'uint16'],
        ['holding_registers', 20, 'uint16'],
        ['input_registers', 7, 'uint16'],
        ['coils', 3, 'bool'],
        ['coils', 4, 'bool'],
      ]),
    ),
  );
  assert.deepEqual(
    plan.map((r) => [r.fn, r.address, r.count, r.values.map((v) => v.offset)]),
    [
      [1, 3, 2, [0, 1]],
      [3, 0, 8, [0, 1, 5, 7]],
      [3, 10, 2, [0]],
      [3, 20, 1, [0]],
      [4, 7, 1, [0]],
    ],
  );
  const many = planReads(device(Array.from({ length: 130 }, (_, i) => `[[modbus.device.register]]\nname = "h${i}"\naddress = ${i * 2}\ntype = "float32"\n`).join('')));
  assert.deepEqual(many.map((r) => [r.address, r.count]), [[0, 124], [124, 124], [248, 12]], 'a float32 is never split across requests; each request ≤ 125 registers');
  const bits = planReads(device(Array.from({ length: 2100 }, (_, i) => `[[modbus.device.register]]\nname = "c${i}"\ntable = "discrete_inputs"\naddress = ${i}\ntype = "bool"\n`).join('')));
  assert.deepEqual(bits.map((r) => [r.address, r.count]), [[0, 2000], [2000, 100]]);
});

test('the RTU frame gap is 3.5 characters at the baud rate, 1.75 ms above 19200 baud, or as configured', () => {
  assert.equal(frameGapMs({ baudRate: 9600, dataBits: 8, parity: 'even', stopBits: 1 }), 5, '11 bits × 3.5 / 9600 = 4.01 ms, rounded up');
  assert.equal(frameGapMs({ baudRate: 1200, dataBits: 8, parity: 'none', stopBits: 1 }), 30);
  assert.equal(frameGapMs({ baudRate: 115200, dataBits: 8, parity: 'none', stopBits: 1 }), 2);
  assert.equal(frameGapMs({ baudRate: 115200, dataBits: 8, parity: 'none', stopBits: 1, frameGapMs: 10 }), 10);
});
