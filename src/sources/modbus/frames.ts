/*
 * Modbus application frames for the four read functions: requests built, responses checked. RTU
 * wraps them as unit id + PDU + CRC-16; TCP as MBAP header (transaction id, protocol 0, length) +
 * unit id + PDU. Everything here is pure: bytes in, bytes or a verdict out.
 */

/** Read functions by register table. */
export const FUNCTION_CODES = { coils: 1, discrete_inputs: 2, holding_registers: 3, input_registers: 4 } as const;
export type RegisterTable = keyof typeof FUNCTION_CODES;
export type FunctionCode = (typeof FUNCTION_CODES)[RegisterTable];

/** Protocol limits per request (Modbus Application Protocol v1.1b3, 6.1–6.4). */
export const MAX_REGISTERS_PER_READ = 125;
export const MAX_BITS_PER_READ = 2000;

export const isBitFunction = (fn: FunctionCode): boolean => fn === 1 || fn === 2;

/** Exception codes, as stable reason names (they label metrics and show in records). */
const EXCEPTIONS: Record<number, string> = {
  1: 'illegal_function',
  2: 'illegal_data_address',
  3: 'illegal_data_value',
  4: 'server_device_failure',
  5: 'acknowledge',
  6: 'server_device_busy',
  8: 'memory_parity_error',
  10: 'gateway_path_unavailable',
  11: 'gateway_target_failed_to_respond',
};

export function exceptionName(code: number): string {
  return EXCEPTIONS[code] ?? `exception_${code}`;
}

export interface ReadRequest {
  unit: number;
  fn: FunctionCode;
  address: number;
  count: number;
}

/** What one transaction yielded: the data words/bits, or why not. */
export type ReadResult =
  | { ok: true; registers?: Uint16Array; bits?: Uint8Array }
  | { ok: false; reason: string; detail?: string };

/** CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF); sent low byte first. */
export function crc16(buf: Uint8Array, end = buf.length): number {
  let crc = 0xffff;
  for (let i = 0; i < end; i++) {
    crc ^= buf[i]!;
    for (let b = 0; b < 8; b++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
  }
  return crc;
}

function pdu(req: ReadRequest, into: Buffer, at: number): void {
  into[at] = req.unit;
  into[at + 1] = req.fn;
  into.writeUInt16BE(req.address, at + 2);
  into.writeUInt16BE(req.count, at + 4);
}

export function rtuRequest(req: ReadRequest): Buffer {
  const b = Buffer.allocUnsafe(8);
  pdu(req, b, 0);
  b.writeUInt16LE(crc16(b, 6), 6);
  return b;
}

export function tcpRequest(req: ReadRequest, transactionId: number): Buffer {
  const b = Buffer.allocUnsafe(12);
  b.writeUInt16BE(transactionId & 0xffff, 0);
  b.writeUInt16BE(0, 2);
  b.writeUInt16BE(6, 4);
  pdu(req, b, 6);
  return b;
}

/** Data bytes a correct response to `req` carries. */
export function expectedDataBytes(req: ReadRequest): number {
  return isBitFunction(req.fn) ? Math.ceil(req.count / 8) : req.count * 2;
}

/**
 * Length of the RTU frame that starts at buf[0], once enough of it is there to tell (3 bytes),
 * else null: an exception is 5 bytes, a read response 5 + its byte count.
 */
export function rtuFrameLength(buf: Uint8Array): number | null {
  if (buf.length < 3) return null;
  return buf[1]! & 0x80 ? 5 : 5 + buf[2]!;
}

/**
 * Checks a whole RTU frame (length from rtuFrameLength) against the request it answers. A frame
 * for another unit or function is "unexpected" (a late answer to an earlier request); the caller
 * discards it and keeps waiting.
 */
export function parseRtuResponse(frame: Buffer, req: ReadRequest): ReadResult | 'unexpected' {
  const n = frame.length;
  if (n < 5) return { ok: false, reason: 'bad_response', detail: `${n}-byte frame` };
  const crc = frame.readUInt16LE(n - 2);
  if (crc16(frame, n - 2) !== crc) return { ok: false, reason: 'crc_error', detail: `CRC ${crc.toString(16).padStart(4, '0')} does not match the frame's ${crc16(frame, n - 2).toString(16).padStart(4, '0')}` };
  if (frame[0] !== req.unit || (frame[1]! & 0x7f) !== req.fn) return 'unexpected';
  return parsePdu(frame.subarray(1, n - 2), req);
}

/** Checks a response PDU (function code onward) against its request. */
export function parsePdu(p: Buffer, req: ReadRequest): ReadResult {
  const fn = p[0]!;
  if (fn === (req.fn | 0x80)) return { ok: false, reason: exceptionName(p[1] ?? 0), detail: `exception ${p[1] ?? '?'}` };
  if (fn !== req.fn) return { ok: false, reason: 'bad_response', detail: `function ${fn} answers ${req.fn}` };
  const bytes = p[1] ?? -1;
  const want = expectedDataBytes(req);
  if (bytes !== want || p.length !== 2 + want) return { ok: false, reason: 'bad_response', detail: `${bytes} data bytes for ${req.count} ${isBitFunction(req.fn) ? 'bits' : 'registers'}` };
  const data = p.subarray(2);
  if (isBitFunction(req.fn)) {
    const bits = new Uint8Array(req.count);
    for (let i = 0; i < req.count; i++) bits[i] = (data[i >> 3]! >> (i & 7)) & 1;
    return { ok: true, bits };
  }
  const registers = new Uint16Array(req.count);
  for (let i = 0; i < req.count; i++) registers[i] = data.readUInt16BE(i * 2);
  return { ok: true, registers };
}
