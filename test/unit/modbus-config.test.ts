import assert from 'node:assert/strict';
import { test } from 'node:test';
import { configErrorLines, parseConfig } from '../../src/config/load.js';
import { SluiceError } from '../../src/errors.js';

function errorsOf(toml: string): string[] {
  try {
    parseConfig(toml);
  } catch (err) {
    assert.ok(err instanceof SluiceError && err.code === 'SLUICE_CONFIG_INVALID', String(err));
    return configErrorLines(err);
  }
  assert.fail('config should have been invalid');
}

test('a [[modbus]] bus parses with its defaults', () => {
  const c = parseConfig(`[[modbus]]\nname = "b"\npath = "/dev/ttyUSB0"\n[[modbus.device]]\nname = "m"\nunit_id = 3\n[[modbus.device.register]]\nname = "v"\naddress = 7\n`);
  const b = c.modbus[0]!;
  assert.equal(b.transport, 'rtu');
  assert.equal(b.baudRate, 9600);
  assert.equal(b.parity, 'even');
  assert.equal(b.topic, 'modbus/{name}/{device}');
  const d = b.device[0]!;
  assert.deepEqual([d.pollIntervalMs, d.timeoutMs, d.retries, d.report], [1000, 500, 1, 'every_poll']);
  assert.deepEqual(d.register[0], { name: 'v', table: 'holding_registers', address: 7, type: 'uint16', order: 'ABCD', scale: 1, offset: 0 });
});

test('invalid Modbus settings are all reported at once, each with its dotted path', () => {
  const toml = `
[[serial]]
name = "gps"
path = "/dev/ttyS0"

[[modbus]]
name = "b"
path = "/dev/ttyS0"
address = "10.0.0.1:502"
topic = "modbus/{name}"
reopen_min_ms = 5000
reopen_max_ms = 1000

[[modbus.device]]
name = "m"
unit_id = 0
timeout_ms = 2000
poll_interval_ms = 1000
[[modbus.device.register]]
name = "a"
address = 65535
type = "float32"
[[modbus.device.register]]
name = "a"
table = "coils"
address = 1
type = "int16"
[[modbus.device.register]]
name = "s"
type = "string"
address = 10
[[modbus.device.register]]
name = "c"
type = "int32"
count = 1
address = 20
deadband = 1
[[modbus.device.register]]
name = "big"
type = "string"
count = 126
address = 70000

[[modbus.device]]
name = "m"
unit_id = 300
[[modbus.device.register]]
name = "x"
address = 0

[[modbus]]
name = "b"
transport = "tcp"
frame_gap_ms = 3
[[modbus.device]]
name = "t"
unit_id = 1
[[modbus.device.register]]
name = "x"
address = 0
`;
  const lines = errorsOf(toml);
  const want = [
    'modbus[0].device[0].register[4].address: Too big: expected number to be <=65535',
    'modbus[0].device[0].register[4].count: Too big: expected number to be <=125',
    'modbus[0].device[1].unit_id: Too big: expected number to be <=255',
    'modbus[0].path: "/dev/ttyS0" is already read by serial[0]',
    'modbus[0].address: only used with transport = "tcp"',
    'modbus[0].topic: must contain {device} when the bus has more than one device',
    'modbus[0].reopen_min_ms: must not exceed reopen_max_ms (1000)',
    'modbus[0].device[0].unit_id: must be 1-247 on RTU (0 is broadcast, which no device answers)',
    'modbus[0].device[0].timeout_ms: must be below poll_interval_ms (1000)',
    'modbus[0].device[0].register[0].address: 65535 + 2 registers runs past the last address (65535)',
    'modbus[0].device[0].register[1].name: "a" is already used by modbus[0].device[0].register[0]',
    'modbus[0].device[0].register[1].type: coils hold single bits: the type must be "bool"',
    'modbus[0].device[0].register[2].count: type "string" needs count (registers, 2 characters each)',
    'modbus[0].device[0].register[3].count: type "int32" occupies 2 registers, not 1',
    'modbus[0].device[0].register[3].deadband: only used with report = "on_change" on its device',
    'modbus[0].device[1].name: "m" is already used by modbus[0].device[0]',
    'modbus[1].name: "b" is already used by modbus[0]',
    'modbus[1].address: transport = "tcp" needs address ("host:port")',
    'modbus[1].frame_gap_ms: only used with transport = "rtu"',
  ];
  // Zod's own checks (bounds) and, at the same time, the cross-field checks of every item that
  // parsed (modbus[0] did not: its devices failed the schema; modbus[1] did).
  assert.deepEqual(lines, [...want.slice(0, 3), 'modbus[1].address: transport = "tcp" needs address ("host:port")', 'modbus[1].frame_gap_ms: only used with transport = "rtu"']);
  // With the bounds fixed, every cross-field problem shows, all at once.
  const fixed = errorsOf(toml.replace(/\[\[modbus\.device\.register\]\]\nname = "big"[^[]*/, '').replace('unit_id = 300', 'unit_id = 30'));
  assert.deepEqual(fixed, want.slice(3));
});
