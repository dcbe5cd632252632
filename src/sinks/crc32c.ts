/*
 * CRC-32C (Castagnoli), the checksum of every Kafka record batch, eight bytes per step
 * ("slicing-by-8"). kafkajs's own goes one byte per step and was 4% of the drain's CPU; Node has
 * CRC-32 (zlib.crc32) but not CRC-32C. test/unit/kafkajs-fast-encode.test.ts checks it against
 * kafkajs's on random buffers.
 */

const POLY = 0x82f63b78; // reflected Castagnoli polynomial

/** T[k * 256 + b]: the CRC of byte b followed by k zero bytes. */
function tables(): Int32Array {
  const t = new Int32Array(8 * 256);
  for (let b = 0; b < 256; b++) {
    let c = b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t[b] = c;
  }
  for (let b = 0; b < 256; b++) {
    let c = t[b]!;
    for (let k = 1; k < 8; k++) {
      c = t[c & 0xff]! ^ (c >>> 8);
      t[k * 256 + b] = c;
    }
  }
  return t;
}

/** CRC-32C of `buf`, as an unsigned 32-bit integer. */
export function crc32c(buf: Uint8Array): number {
  const T = CRC32C_TABLES;
  let crc = -1;
  const n = buf.length;
  let i = 0;
  for (const end = n - (n % 8); i < end; i += 8) {
    const a = crc ^ (buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24));
    crc =
      T[1792 + (a & 0xff)]! ^
      T[1536 + ((a >>> 8) & 0xff)]! ^
      T[1280 + ((a >>> 16) & 0xff)]! ^
      T[1024 + (a >>> 24)]! ^
      T[768 + buf[i + 4]!]! ^
      T[512 + buf[i + 5]!]! ^
      T[256 + buf[i + 6]!]! ^
      T[buf[i + 7]!]!;
  }
  for (; i < n; i++) crc = T[(crc ^ buf[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ -1) >>> 0;
}

/** 8 KiB of constants, a pure function of the polynomial (no state). */
const CRC32C_TABLES = tables();
