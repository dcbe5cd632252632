import type { ModbusDeviceConfig, ModbusRegisterConfig } from '../../config/load.js';
import { registersFor } from './data-types.js';
import { FUNCTION_CODES, isBitFunction, MAX_BITS_PER_READ, MAX_REGISTERS_PER_READ, type FunctionCode } from './frames.js';

/** One value of the register map, placed inside the request that reads it. */
export interface PlannedValue {
  register: ModbusRegisterConfig;
  /** Offset of its first register (or bit) within the request's data. */
  offset: number;
  width: number;
}

/** One read request of a device's poll and the values it carries. */
export interface PlannedRead {
  fn: FunctionCode;
  address: number;
  count: number;
  values: PlannedValue[];
}

/** Registers (or bits) a configured value occupies. */
export function widthOf(r: ModbusRegisterConfig): number {
  if (r.table === 'coils' || r.table === 'discrete_inputs') return 1;
  return registersFor(r.type) ?? r.count ?? 1;
}

/**
 * The fewest reads that cover a device's register map: values of one table whose ranges touch or
 * overlap are read together, up to the protocol's limit per request (125 registers, 2000 bits).
 * Ranges with a hole between them are not joined: reading addresses nobody asked for can make a
 * device answer "illegal data address" for the whole request. Reads come in table, then address
 * order, so a poll walks the device's memory the same way every time.
 */
export function planReads(device: Pick<ModbusDeviceConfig, 'register'>): PlannedRead[] {
  const reads: PlannedRead[] = [];
  const byFn = new Map<FunctionCode, ModbusRegisterConfig[]>();
  for (const r of device.register) {
    const fn = FUNCTION_CODES[r.table];
    const list = byFn.get(fn) ?? [];
    list.push(r);
    byFn.set(fn, list);
  }
  for (const fn of [...byFn.keys()].sort()) {
    const limit = isBitFunction(fn) ? MAX_BITS_PER_READ : MAX_REGISTERS_PER_READ;
    const regs = byFn.get(fn)!.slice().sort((a, b) => a.address - b.address || widthOf(b) - widthOf(a));
    let cur: PlannedRead | null = null;
    for (const r of regs) {
      const width = widthOf(r);
      const end = r.address + width;
      if (cur && r.address <= cur.address + cur.count && Math.max(end, cur.address + cur.count) - cur.address <= limit) {
        cur.count = Math.max(end, cur.address + cur.count) - cur.address;
        cur.values.push({ register: r, offset: r.address - cur.address, width });
        continue;
      }
      cur = { fn, address: r.address, count: width, values: [{ register: r, offset: 0, width }] };
      reads.push(cur);
    }
  }
  return reads;
}
