import type { RawConfig } from './schema.js';

type RawModbus = RawConfig['modbus'][number];

const WIDTH: Record<string, number> = { bool: 1, int16: 1, uint16: 1, int32: 2, uint32: 2, float32: 2, int64: 4, uint64: 4, float64: 4 };
const BIT_TABLES = ['coils', 'discrete_inputs'];

/**
 * Checks of a [[modbus]] bus that one field's schema cannot make: transport settings that go
 * together, types that fit their register count, ranges that stay inside the 65536 addresses,
 * unique names. Appends every problem as `dotted.path: message`.
 */
export function checkModbus(b: RawModbus, at: string, seen: Map<string, string>, errors: string[]): void {
  const prev = seen.get(`modbus:${b.name}`);
  if (prev) errors.push(`${at}.name: "${b.name}" is already used by ${prev}`);
  seen.set(`modbus:${b.name}`, at);
  if (b.transport === 'rtu') {
    if (b.path === undefined) errors.push(`${at}.path: transport = "rtu" needs path`);
    else {
      // A serial port has one reader: a [[serial]] and a [[modbus]] bus on it would fight over its bytes.
      const other = seen.get(`serial-path:${b.path}`);
      if (other) errors.push(`${at}.path: "${b.path}" is already read by ${other}`);
      seen.set(`serial-path:${b.path}`, at);
    }
    if (b.address !== undefined) errors.push(`${at}.address: only used with transport = "tcp"`);
  } else {
    if (b.address === undefined) errors.push(`${at}.address: transport = "tcp" needs address ("host:port")`);
    else {
      const port = Number(b.address.slice(b.address.lastIndexOf(':') + 1));
      if (port < 1 || port > 65535) errors.push(`${at}.address: port must be 1-65535`);
    }
    if (b.path !== undefined) errors.push(`${at}.path: only used with transport = "rtu"`);
    if (b.frame_gap_ms !== undefined) errors.push(`${at}.frame_gap_ms: only used with transport = "rtu"`);
  }
  if (!b.topic.includes('{device}') && b.device.length > 1) errors.push(`${at}.topic: must contain {device} when the bus has more than one device`);
  if (b.reopen_min_ms > b.reopen_max_ms) errors.push(`${at}.reopen_min_ms: must not exceed reopen_max_ms (${b.reopen_max_ms})`);
  const deviceNames = new Map<string, number>();
  b.device.forEach((d, i) => {
    const dat = `${at}.device[${i}]`;
    const dup = deviceNames.get(d.name);
    if (dup !== undefined) errors.push(`${dat}.name: "${d.name}" is already used by ${at}.device[${dup}]`);
    deviceNames.set(d.name, i);
    if (b.transport === 'rtu' && (d.unit_id < 1 || d.unit_id > 247)) errors.push(`${dat}.unit_id: must be 1-247 on RTU (0 is broadcast, which no device answers)`);
    if (d.timeout_ms >= d.poll_interval_ms) errors.push(`${dat}.timeout_ms: must be below poll_interval_ms (${d.poll_interval_ms})`);
    const regNames = new Map<string, number>();
    d.register.forEach((r, j) => {
      const rat = `${dat}.register[${j}]`;
      const dupR = regNames.get(r.name);
      if (dupR !== undefined) errors.push(`${rat}.name: "${r.name}" is already used by ${dat}.register[${dupR}]`);
      regNames.set(r.name, j);
      const bits = BIT_TABLES.includes(r.table);
      if (bits && r.type !== 'bool') errors.push(`${rat}.type: ${r.table} hold single bits: the type must be "bool"`);
      if (bits && r.count !== undefined && r.count !== 1) errors.push(`${rat}.count: a ${r.table} value is one bit`);
      if (bits && r.order !== 'ABCD') errors.push(`${rat}.order: a bit has no byte order`);
      if (bits && (r.scale !== 1 || r.offset !== 0)) errors.push(`${rat}: scale and offset do not apply to bits`);
      let width = 1;
      if (!bits) {
        if (r.type === 'string') {
          if (r.count === undefined) errors.push(`${rat}.count: type "string" needs count (registers, 2 characters each)`);
          width = r.count ?? 1;
          if (r.scale !== 1 || r.offset !== 0) errors.push(`${rat}: scale and offset do not apply to strings`);
        } else {
          width = WIDTH[r.type]!;
          if (r.count !== undefined && r.count !== width) errors.push(`${rat}.count: type "${r.type}" occupies ${width} register${width > 1 ? 's' : ''}, not ${r.count}`);
        }
      }
      if (r.address + width - 1 > 65535) errors.push(`${rat}.address: ${r.address} + ${width} register${width > 1 ? 's' : ''} runs past the last address (65535)`);
      if (r.deadband !== undefined && d.report !== 'on_change') errors.push(`${rat}.deadband: only used with report = "on_change" on its device`);
    });
  });
}
