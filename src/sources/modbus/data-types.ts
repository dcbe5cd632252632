/** The value types a register map can name, and how many 16-bit registers each occupies. */
export const MODBUS_TYPES = ['bool', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'float32', 'float64', 'string'] as const;
export type ModbusType = (typeof MODBUS_TYPES)[number];

/**
 * Byte and word order, named by where the bytes of the big-endian value ABCD(EFGH) land:
 * "ABCD" big-endian (the Modbus default), "CDAB" words swapped, "BADC" bytes swapped within each
 * word, "DCBA" little-endian. For 64-bit values the same rule applies to four words.
 */
export const WORD_ORDERS = ['ABCD', 'CDAB', 'BADC', 'DCBA'] as const;
export type WordOrder = (typeof WORD_ORDERS)[number];

/** Registers a type needs; strings take as many as configured (two characters each). */
export function registersFor(type: ModbusType): number | null {
  switch (type) {
    case 'bool':
    case 'int16':
    case 'uint16':
      return 1;
    case 'int32':
    case 'uint32':
    case 'float32':
      return 2;
    case 'int64':
    case 'uint64':
    case 'float64':
      return 4;
    case 'string':
      return null;
  }
}

/** The registers' bytes rearranged into big-endian order (ABCD…), whatever order the device uses. */
export function toBigEndian(words: Uint16Array | readonly number[], order: WordOrder): Buffer {
  const n = words.length;
  const out = Buffer.allocUnsafe(n * 2);
  const reverseWords = order === 'CDAB' || order === 'DCBA';
  const swapBytes = order === 'BADC' || order === 'DCBA';
  for (let i = 0; i < n; i++) {
    const w = words[reverseWords ? n - 1 - i : i]!;
    if (swapBytes) out.writeUInt16LE(w, i * 2);
    else out.writeUInt16BE(w, i * 2);
  }
  return out;
}

/**
 * Decodes the registers of one value. Numbers come back as JS numbers; a 64-bit integer beyond
 * 2^53 comes back as a decimal string so no digit is silently lost. Strings end at the first NUL
 * and lose trailing spaces (devices pad both ways).
 */
export function decodeRegisters(words: Uint16Array | readonly number[], type: ModbusType, order: WordOrder): number | boolean | string {
  // 16-bit values have one word: only the byte order matters ("CDAB" reads like "ABCD").
  const b = toBigEndian(words, order);
  switch (type) {
    case 'bool':
      return b.readUInt16BE(0) !== 0;
    case 'int16':
      return b.readInt16BE(0);
    case 'uint16':
      return b.readUInt16BE(0);
    case 'int32':
      return b.readInt32BE(0);
    case 'uint32':
      return b.readUInt32BE(0);
    case 'float32':
      return shortestFloat32(b.readFloatBE(0));
    case 'float64':
      return b.readDoubleBE(0);
    case 'int64':
      return safeNumber(b.readBigInt64BE(0));
    case 'uint64':
      return safeNumber(b.readBigUInt64BE(0));
    case 'string': {
      const nul = b.indexOf(0);
      return b.subarray(0, nul < 0 ? b.length : nul).toString('latin1').trimEnd();
    }
  }
}

/**
 * The shortest decimal that reads back as the same float32: 230.1, not 230.10000610351562 (the
 * double nearest to that float32), so a meter's reading looks in Kafka as it does on its display.
 */
export function shortestFloat32(v: number): number {
  if (!Number.isFinite(v)) return v;
  for (let p = 6; p < 9; p++) {
    const d = Number(v.toPrecision(p));
    if (Math.fround(d) === v) return d;
  }
  return Number(v.toPrecision(9));
}

function safeNumber(v: bigint): number | string {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
}

/** value × scale + offset for numbers; booleans, strings and unscalable big integers pass unchanged. */
export function scaleValue(v: number | boolean | string, scale: number, offset: number): number | boolean | string {
  if (typeof v !== 'number' || (scale === 1 && offset === 0)) return v;
  return v * scale + offset;
}
