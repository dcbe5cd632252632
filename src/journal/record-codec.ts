import type { JournalRecord, NewRecord } from './journal.js';

/*
 * Records are packed many to a row (one row per group commit): measured, that writes about half
 * the bytes per record to flash that one row per record does. Layout per record, little-endian:
 *   f64 time | u16 len + source | u16 len + topic | i32 len (-1 = null) + key
 *   | u32 len (0 = none) + headers JSON | u32 len + payload
 */

export function encodeRecords(records: readonly NewRecord[]): Buffer {
  // Strings are measured, then written straight into the row: no Buffer per field per record
  // (four allocations per record on the ingest path before). Only headers need a string built.
  const n = records.length;
  const headers: (string | null)[] = new Array(n);
  let size = 0;
  for (let i = 0; i < n; i++) {
    const r = records[i]!;
    const h = r.headers ? JSON.stringify(r.headers) : null;
    headers[i] = h;
    size += 8 + 2 + Buffer.byteLength(r.source, 'utf8') + 2 + Buffer.byteLength(r.topic, 'utf8') + 4 + (r.key === null ? 0 : Buffer.byteLength(r.key, 'utf8')) + 4 + (h === null ? 0 : Buffer.byteLength(h, 'utf8')) + 4 + r.payload.length;
  }
  const buf = Buffer.allocUnsafe(size);
  let o = 0;
  for (let i = 0; i < n; i++) {
    const r = records[i]!;
    o = buf.writeDoubleLE(r.time, o);
    const sl = buf.write(r.source, o + 2, 'utf8');
    buf.writeUInt16LE(sl, o);
    o += 2 + sl;
    const tl = buf.write(r.topic, o + 2, 'utf8');
    buf.writeUInt16LE(tl, o);
    o += 2 + tl;
    if (r.key === null) o = buf.writeInt32LE(-1, o);
    else {
      const kl = buf.write(r.key, o + 4, 'utf8');
      buf.writeInt32LE(kl, o);
      o += 4 + kl;
    }
    const h = headers[i]!;
    if (h === null) o = buf.writeUInt32LE(0, o);
    else {
      const hl = buf.write(h, o + 4, 'utf8');
      buf.writeUInt32LE(hl, o);
      o += 4 + hl;
    }
    o = buf.writeUInt32LE(r.payload.length, o);
    o += r.payload.copy(buf, o);
  }
  return buf;
}

/** Decodes the records of one row whose first record has `firstSeq`; payloads are copies, safe to keep. */
export function decodeRecords(buf: Buffer, firstSeq: number, count: number): JournalRecord[] {
  const out: JournalRecord[] = new Array(count);
  let o = 0;
  // A row's records nearly always share their source: the previous one's string is reused when
  // the bytes match, instead of a new string per record.
  let source = '';
  let sourceAt = -1;
  let sourceLen = -1;
  for (let i = 0; i < count; i++) {
    const time = buf.readDoubleLE(o);
    o += 8;
    const sl = buf.readUInt16LE(o);
    o += 2;
    if (sl !== sourceLen || buf.compare(buf, sourceAt, sourceAt + sl, o, o + sl) !== 0) {
      source = buf.toString('utf8', o, o + sl);
      sourceAt = o;
      sourceLen = sl;
    }
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
