import type { ModbusEntry, ModbusSpec } from './modbus-server.js';

/** A value of a test register map: what the server holds and how sluice is told to read it. */
export interface MapValue extends ModbusEntry {
  name: string;
  scale?: number;
  offset?: number;
  unit?: string;
}

export interface MapDevice {
  name: string;
  unitId: number;
  values: MapValue[];
  timeoutMs?: number;
  retries?: number;
  /** The server holds no such values (they lie past its tables): only in sluice's map. */
  beyond?: MapValue[];
}

/** Every type in every byte/word order, plus scale/offset, strings, bits and an out-of-range read. */
export function fullMap(): MapDevice[] {
  const abcd: MapValue[] = [
    { name: 'i16', table: 'holding_registers', address: 0, type: 'int16', value: -12345 },
    { name: 'u16', table: 'holding_registers', address: 1, type: 'uint16', value: 54321 },
    { name: 'i32', table: 'holding_registers', address: 2, type: 'int32', value: -123456789 },
    { name: 'u32', table: 'holding_registers', address: 4, type: 'uint32', value: 3000000000 },
    { name: 'i64', table: 'holding_registers', address: 6, type: 'int64', value: -1234567890123 },
    { name: 'u64_big', table: 'holding_registers', address: 10, type: 'uint64', value: '9007199254740993' },
    { name: 'f32', table: 'holding_registers', address: 14, type: 'float32', value: 230.1, unit: 'V' },
    { name: 'f64', table: 'holding_registers', address: 16, type: 'float64', value: -0.000123456789 },
    { name: 'serial_no', table: 'holding_registers', address: 20, type: 'string', count: 5, value: 'SLX-42' },
    { name: 'scaled', table: 'holding_registers', address: 30, type: 'uint16', value: 2301, scale: 0.1, offset: -100, unit: 'degC' },
    { name: 'flag', table: 'holding_registers', address: 31, type: 'bool', value: true },
    { name: 'relay1', table: 'coils', address: 0, type: 'bool', value: true },
    { name: 'relay2', table: 'coils', address: 1, type: 'bool', value: false },
    { name: 'relay3', table: 'coils', address: 2, type: 'bool', value: true },
    { name: 'door', table: 'discrete_inputs', address: 5, type: 'bool', value: true },
    { name: 'ir_i16', table: 'input_registers', address: 0, type: 'int16', value: 42 },
  ];
  const swapped: MapValue[] = [];
  (['CDAB', 'BADC', 'DCBA'] as const).forEach((order, i) => {
    let a = i * 20;
    const add = (type: string, width: number, value: number | string): void => {
      swapped.push({ name: `${type}_${order}`, table: i === 1 ? 'input_registers' : 'holding_registers', address: a, type, order, value });
      a += width;
    };
    add('int16', 1, -2 - i);
    add('uint16', 1, 0x1234 + i);
    add('int32', 2, -100000 - i);
    add('uint32', 2, 4000000000 + i);
    add('float32', 2, 1234.5 + i);
    add('int64', 4, -9000000000000 - i);
    add('uint64', 4, 123456789012 + i);
    add('float64', 4, Math.PI * (i + 1));
  });
  return [
    { name: 'plc', unitId: 1, values: abcd },
    { name: 'meter', unitId: 2, values: swapped, beyond: [{ name: 'past_end', table: 'holding_registers', address: 199, type: 'uint32', value: 0 }] },
  ];
}

export function serverSpec(devices: MapDevice[], silent: number[] = []): ModbusSpec {
  const units: ModbusSpec['units'] = {};
  for (const d of devices) units[String(d.unitId)] = d.values.map(({ table, address, type, order, count, value }) => ({ table, address, type, order, count, value }));
  return { units, silent, size: 200 };
}

/** The [[modbus.device]] tables for the map. */
export function deviceToml(devices: MapDevice[], pollIntervalMs: number): string {
  return devices
    .map((d) => {
      const regs = [...d.values, ...(d.beyond ?? [])]
        .map((v) =>
          [
            '[[modbus.device.register]]',
            `name = "${v.name}"`,
            `table = "${v.table}"`,
            `address = ${v.address}`,
            `type = "${v.type}"`,
            v.order ? `order = "${v.order}"` : '',
            v.count !== undefined ? `count = ${v.count}` : '',
            v.scale !== undefined ? `scale = ${v.scale}` : '',
            v.offset !== undefined ? `offset = ${v.offset}` : '',
            v.unit !== undefined ? `unit = "${v.unit}"` : '',
          ]
            .filter(Boolean)
            .join('\n'),
        )
        .join('\n\n');
      return `[[modbus.device]]\nname = "${d.name}"\nunit_id = ${d.unitId}\npoll_interval_ms = ${pollIntervalMs}\ntimeout_ms = ${d.timeoutMs ?? 300}\nretries = ${d.retries ?? 1}\n\n${regs}\n`;
    })
    .join('\n');
}

/** What sluice must report for a value the server holds: scaled numbers, exact big integers as strings. */
export function expectedValue(v: MapValue): number | boolean | string {
  if (typeof v.value !== 'number') return v.value;
  return v.value * (v.scale ?? 1) + (v.offset ?? 0);
}

/** Checks one polled value against the server's; float32 compares as float32 (the register holds no more). */
export function sameValue(v: MapValue, got: unknown): boolean {
  const want = expectedValue(v);
  if (v.type === 'float32') return typeof got === 'number' && Math.fround(got) === Math.fround(want as number);
  return got === want;
}
