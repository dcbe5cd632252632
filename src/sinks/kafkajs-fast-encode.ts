import { createRequire } from 'node:module';
import { crc32c } from './crc32c.js';

/**
 * A faster encoder for kafkajs's Produce request (API versions 3–7, record batch v2), byte for
 * byte the one kafkajs 2.2.4 writes (test/unit/kafkajs-fast-encode.test.ts proves it on random
 * batches, every codec, transactional and idempotent fields).
 *
 * Why: the drain's CPU profile is dominated by kafkajs's encoder, which builds a zero-filled
 * 512-byte `Encoder` for every record and every header, copies each into its parent, computes
 * varlongs with BigInt-backed `Long`s and allocates a `Buffer` per varint. Here one pass sizes a
 * partition's batch and a second writes it into one Buffer. Everything else stays kafkajs's:
 * the request framing, sequence numbers and epochs (eosManager), transactions, retries, SASL,
 * codecs (`lookupCodec`, so sluice's registered ones). The batch CRC-32C is ours (crc32c.ts),
 * eight bytes per step where kafkajs's takes one.
 *
 * How: `protocol` of kafkajs's Produce definition (protocol/requests/produce/index.js) is read by
 * the broker for every request, so wrapping that one property switches the request's `encode`
 * and nothing else. The only state is a marker on that module object, i.e. kafkajs's own module
 * cache: install is process-wide by kafkajs's design (like its codec registry) and idempotent.
 * A message this encoder was not written for (a number as key, a null header value, a timestamp
 * that is not an integer…) makes it hand the whole request to kafkajs's own encoder, so odd input
 * behaves (and fails) exactly as before. On any kafkajs other than 2.2.4 nothing is patched, and
 * the unit test fails so an upgrade is re-checked.
 */

const require = createRequire(import.meta.url);

export const PATCHED_FOR_KAFKAJS = '2.2.4';

interface KafkajsLong {
  getHighBits(): number;
  getLowBits(): number;
}
interface LongStatic {
  fromValue(v: unknown): KafkajsLong;
  fromInt(v: number): KafkajsLong;
}
interface KafkajsEncoder {
  buf: Buffer;
  offset: number;
  readonly buffer: Buffer;
}
interface Codec {
  compress(encoder: KafkajsEncoder): Promise<Buffer>;
}
type RequestBuilder = (args: ProduceArgs) => { request: { encode(): Promise<KafkajsEncoder> } };
interface ProduceDefinition {
  protocol(opts: { version: number }): RequestBuilder | undefined;
  [PATCH_MARK]?: true;
}

export interface ProduceMessage {
  key?: unknown;
  value?: unknown;
  headers?: unknown;
  timestamp?: unknown;
}
export interface ProduceArgs {
  acks: number;
  timeout: number;
  transactionalId?: string | null;
  producerId?: unknown;
  producerEpoch?: number;
  compression?: number;
  topicData: Array<{ topic: string; partitions: Array<{ partition: number; firstSequence?: number; messages: ProduceMessage[] }> }>;
}

const PATCH_MARK = Symbol.for('sluice.kafkajs-fast-encode');
const Long = require('kafkajs/src/utils/long.js') as LongStatic;
const Encoder = require('kafkajs/src/protocol/encoder.js') as new (size?: number) => KafkajsEncoder;
const { lookupCodec } = require('kafkajs/src/protocol/message/compression/index.js') as { lookupCodec(type: number): Codec | null };

/** Returned by a sizing step for input kafkajs's encoder must handle itself. */
class Unsupported extends Error {}
const UNSUPPORTED = new Unsupported();

const MAGIC_BYTE = 2;
const TRANSACTIONAL_MASK = 16;
const CODEC_MASK = 0x07;
/** int16 attributes … int32 record count: the batch fields after the CRC. */
const BODY_HEAD = 2 + 4 + 8 + 8 + 8 + 2 + 4 + 4;
/** Varlongs are computed in doubles; zigzag(±2^51) < 2^53 is still exact. */
const MAX_DELTA = 2 ** 51;

/** The number kafkajs's produce Request encodes as its payload, or `null` for kafkajs to do it. */
export async function encodeProduceRequest(args: ProduceArgs): Promise<KafkajsEncoder | null> {
  const { acks, timeout, transactionalId = null, producerId = Long.fromInt(-1), producerEpoch = 0, compression = 0, topicData } = args;
  if (typeof compression !== 'number' || !Array.isArray(topicData)) return null;
  const parts: Buffer[] = [];
  const head = Buffer.allocUnsafe(2 + (transactionalId == null ? 0 : Buffer.byteLength(transactionalId, 'utf8')) + 2 + 4 + 4);
  let at = writeString(head, 0, transactionalId);
  at = head.writeInt16BE(acks, at);
  at = head.writeInt32BE(timeout, at);
  head.writeInt32BE(topicData.length, at);
  parts.push(head);
  try {
    for (const { topic, partitions } of topicData) {
      const th = Buffer.allocUnsafe(2 + Buffer.byteLength(topic, 'utf8') + 4);
      th.writeInt32BE(partitions.length, writeString(th, 0, topic));
      parts.push(th);
      for (const p of partitions) parts.push(await encodePartition(compression, p, transactionalId, producerId, producerEpoch));
    }
  } catch (err) {
    if (err === UNSUPPORTED) return null;
    throw err;
  }
  const enc = new Encoder(1);
  enc.buf = Buffer.concat(parts);
  enc.offset = enc.buf.length;
  return enc;
}

async function encodePartition(
  compression: number,
  { partition, messages, firstSequence = 0 }: { partition: number; firstSequence?: number; messages: ProduceMessage[] },
  transactionalId: string | null,
  producerId: unknown,
  producerEpoch: number,
): Promise<Buffer> {
  const dateNow = Date.now();
  // kafkajs takes first/max from `.sort()` of the non-null timestamps: a string order, kept as is.
  let first: unknown;
  let max: unknown;
  let firstS = '';
  let maxS = '';
  for (const m of messages) {
    const t = m.timestamp;
    if (t == null) continue;
    if (typeof t !== 'string' && typeof t !== 'number') throw UNSUPPORTED;
    const s = String(t);
    if (first === undefined || s < firstS) {
      first = t;
      firstS = s;
    }
    if (max === undefined || s >= maxS) {
      max = t;
      maxS = s;
    }
  }
  if (first === undefined) first = max = dateNow;

  // Pass 1: sizes. Per record: body size, timestamp delta, and key/value/header byte lengths.
  const n = messages.length;
  const deltas = new Array<number>(n);
  const bodies = new Array<number>(n);
  const headerCounts = new Array<number>(n);
  let recordsLen = 0;
  for (let i = 0; i < n; i++) {
    const m = messages[i]!;
    const delta = ((m.timestamp || dateNow) as number) - (first as number);
    if (!Number.isInteger(delta) || Math.abs(delta) > MAX_DELTA) throw UNSUPPORTED;
    deltas[i] = delta;
    const hSize = sizeHeaders(m.headers, headerCounts, i);
    const body = 1 + sizeOfVarLong(delta) + sizeOfUVarInt(zigzag(i)) + sizeOfBytes(m.key) + sizeOfBytes(m.value) + hSize;
    bodies[i] = body;
    recordsLen += sizeOfUVarInt(zigzag(body)) + body;
  }

  // Pass 2: the records, into the batch itself or, to be compressed, into their own buffer.
  const none = compression === 0;
  let records: Buffer | undefined;
  if (!none) {
    const raw = Buffer.allocUnsafe(recordsLen);
    writeRecords(raw, 0, messages, deltas, bodies, headerCounts);
    const codec = lookupCodec(compression);
    const enc = new Encoder(1);
    enc.buf = raw;
    enc.offset = raw.length;
    // Same call kafkajs makes; a codec that was not registered throws kafkajs's own error here.
    records = await codec!.compress(enc);
  }
  const bodyLen = BODY_HEAD + (none ? recordsLen : records!.length);
  const batchLen = 4 + 1 + 4 + bodyLen;
  const out = Buffer.allocUnsafe(4 + 4 + 8 + 4 + batchLen);
  let at = out.writeInt32BE(partition, 0);
  at = out.writeInt32BE(8 + 4 + batchLen, at);
  at = writeInt64(out, at, 0);
  at = out.writeInt32BE(batchLen, at);
  at = out.writeInt32BE(0, at); // partitionLeaderEpoch
  at = out.writeInt8(MAGIC_BYTE, at);
  const crcAt = at;
  const bodyAt = at + 4;
  at = out.writeInt16BE((compression & CODEC_MASK) | (transactionalId ? TRANSACTIONAL_MASK : 0), bodyAt);
  at = out.writeInt32BE(n - 1, at); // lastOffsetDelta
  at = writeInt64(out, at, first);
  at = writeInt64(out, at, max);
  at = writeInt64(out, at, producerId);
  at = out.writeInt16BE(producerEpoch, at);
  at = out.writeInt32BE(firstSequence, at);
  at = out.writeInt32BE(n, at);
  if (none) writeRecords(out, at, messages, deltas, bodies, headerCounts);
  else records!.copy(out, at);
  out.writeUInt32BE(crc32c(out.subarray(bodyAt)), crcAt);
  return out;
}

function writeRecords(buf: Buffer, at: number, messages: ProduceMessage[], deltas: number[], bodies: number[], headerCounts: number[]): number {
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i]!;
    at = writeUVarInt(buf, at, zigzag(bodies[i]!));
    buf[at++] = 0; // record attributes: unused
    at = writeVarLong(buf, at, deltas[i]!);
    at = writeUVarInt(buf, at, zigzag(i));
    at = writeBytes(buf, at, m.key as Buffer | string | null | undefined);
    at = writeBytes(buf, at, m.value as Buffer | string | null | undefined);
    at = writeUVarInt(buf, at, zigzag(headerCounts[i]!));
    // sizeHeaders checked every value in pass 1, and nothing ran in between.
    const h = m.headers as Record<string, Buffer | string | Array<Buffer | string>> | undefined;
    if (h === undefined) continue;
    for (const k in h) {
      if (!Object.hasOwn(h, k)) continue;
      const v = h[k]!;
      if (Array.isArray(v)) {
        for (const e of v) {
          at = writeBytes(buf, at, k);
          at = writeBytes(buf, at, e);
        }
      } else {
        at = writeBytes(buf, at, k);
        at = writeBytes(buf, at, v);
      }
    }
  }
  return at;
}

/**
 * Encoded size of a message's headers, as kafkajs flattens them (an array value is one header per
 * element, in `Object.keys` order, which is for…in's over own properties); their count goes to
 * `counts[i]`. Walks the object instead of building a list: a list and a pair per header were
 * ~250 B of garbage per record on the drain.
 */
function sizeHeaders(headers: unknown, counts: number[], i: number): number {
  let count = 0;
  let size = 0;
  if (headers !== undefined) {
    if (headers === null || typeof headers !== 'object') throw UNSUPPORTED;
    const h = headers as Record<string, unknown>;
    for (const k in h) {
      if (!Object.hasOwn(h, k)) continue;
      const v = h[k];
      const kl = Buffer.byteLength(k, 'utf8');
      const keySize = sizeOfUVarInt(zigzag(kl)) + kl;
      if (Array.isArray(v)) {
        for (const e of v) {
          size += keySize + headerValueSize(e);
          count++;
        }
      } else {
        size += keySize + headerValueSize(v);
        count++;
      }
    }
  }
  counts[i] = count;
  return sizeOfUVarInt(zigzag(count)) + size;
}

function headerValueSize(v: unknown): number {
  // kafkajs throws for null/undefined/numbers (Buffer.byteLength); let it.
  const vl = typeof v === 'string' ? Buffer.byteLength(v, 'utf8') : Buffer.isBuffer(v) ? v.length : -1;
  if (vl < 0) throw UNSUPPORTED;
  return sizeOfUVarInt(zigzag(vl)) + vl;
}

function sizeOfBytes(v: unknown): number {
  if (v == null) return 1; // varint -1
  const len = typeof v === 'string' ? Buffer.byteLength(v, 'utf8') : Buffer.isBuffer(v) ? v.length : -1;
  if (len < 0) throw UNSUPPORTED;
  return sizeOfUVarInt(zigzag(len)) + len;
}

function writeBytes(buf: Buffer, at: number, v: Buffer | string | null | undefined): number {
  if (v == null) return writeUVarInt(buf, at, zigzag(-1));
  if (typeof v === 'string') {
    const len = Buffer.byteLength(v, 'utf8');
    at = writeUVarInt(buf, at, zigzag(len));
    return at + buf.write(v, at, len, 'utf8');
  }
  at = writeUVarInt(buf, at, zigzag(v.length));
  return at + v.copy(buf, at);
}

function writeString(buf: Buffer, at: number, v: string | null): number {
  if (v == null) return buf.writeInt16BE(-1, at);
  const len = Buffer.byteLength(v, 'utf8');
  at = buf.writeInt16BE(len, at);
  return at + buf.write(v, at, len, 'utf8');
}

/** kafkajs's Encoder.writeInt64, so strings, numbers and Longs convert exactly as there. */
function writeInt64(buf: Buffer, at: number, v: unknown): number {
  const l = Long.fromValue(v);
  buf.writeInt32BE(l.getHighBits(), at);
  return buf.writeInt32BE(l.getLowBits(), at + 4);
}

/** 32-bit zigzag, as kafkajs's Encoder.encodeZigZag. */
const zigzag = (v: number): number => (v << 1) ^ (v >> 31);

function sizeOfUVarInt(v: number): number {
  let bytes = 1;
  while ((v & 0xffffff80) !== 0) {
    bytes++;
    v >>>= 7;
  }
  return bytes;
}

function writeUVarInt(buf: Buffer, at: number, v: number): number {
  while ((v & 0xffffff80) !== 0) {
    buf[at++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  buf[at++] = v & 0x7f;
  return at;
}

/** 64-bit zigzag of an integer |v| ≤ 2^51, exact in a double. */
const zigzag64 = (v: number): number => (v >= 0 ? 2 * v : -2 * v - 1);

function sizeOfVarLong(v: number): number {
  let z = zigzag64(v);
  let bytes = 1;
  while (z >= 0x80) {
    bytes++;
    z = Math.floor(z / 128);
  }
  return bytes;
}

function writeVarLong(buf: Buffer, at: number, v: number): number {
  let z = zigzag64(v);
  while (z >= 0x80) {
    buf[at++] = (z % 128) | 0x80;
    z = Math.floor(z / 128);
  }
  buf[at++] = z;
  return at;
}

function kafkajsVersion(): string {
  return (require('kafkajs/package.json') as { version: string }).version;
}

/**
 * Routes kafkajs's Produce requests (v3+) through `encodeProduceRequest`. Idempotent; does
 * nothing (returns false) on a kafkajs other than the one this was written for.
 */
export function installFastProduceEncoding(): boolean {
  if (kafkajsVersion() !== PATCHED_FOR_KAFKAJS) return false;
  const produce = require('kafkajs/src/protocol/requests/produce/index.js') as ProduceDefinition;
  if (produce[PATCH_MARK]) return true;
  const original = produce.protocol.bind(produce);
  produce.protocol = ({ version }) => {
    const build = original({ version });
    if (!build || Number(version) < 3) return build;
    return (args) => {
      const built = build(args);
      const kafkajsEncode = built.request.encode.bind(built.request);
      built.request.encode = async () => (await encodeProduceRequest(args)) ?? kafkajsEncode();
      return built;
    };
  };
  produce[PATCH_MARK] = true;
  return true;
}
