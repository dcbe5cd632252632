import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { registerCodec, type CompressionName } from '../../src/sinks/compression.js';
import { crc32c } from '../../src/sinks/crc32c.js';
import { encodeProduceRequest, installFastProduceEncoding, PATCHED_FOR_KAFKAJS, type ProduceArgs, type ProduceMessage } from '../../src/sinks/kafkajs-fast-encode.js';

const require = createRequire(import.meta.url);
type Encoded = { buffer: Buffer };
type Build = (args: ProduceArgs) => { request: { encode(): Promise<Encoded> } };
const produce = require('kafkajs/src/protocol/requests/produce/index.js') as { protocol(o: { version: number }): Build };
// kafkajs's own v3 and v7 request modules, untouched by the patch (it wraps `produce.protocol`).
const kafkajsV3 = require('kafkajs/src/protocol/requests/produce/v3/request.js') as (a: ProduceArgs) => { encode(): Promise<Encoded> };
const kafkajsV7 = require('kafkajs/src/protocol/requests/produce/v7/request.js') as (a: ProduceArgs) => { encode(): Promise<Encoded> };
const Long = require('kafkajs/src/utils/long.js') as { fromValue(v: unknown): unknown };

const CODECS: Array<[CompressionName, number]> = [['none', 0], ['gzip', 1], ['snappy', 2], ['lz4', 3], ['zstd', 4]];

/** mulberry32: reproducible batches, so a failure names its seed. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomBatch(seed: number, compression: number): ProduceArgs {
  const r = rng(seed);
  const int = (n: number): number => Math.floor(r() * n);
  const pick = <T>(xs: T[]): T => xs[int(xs.length)]!;
  const text = (): string => Array.from({ length: int(40) }, () => pick(['a', 'Z', '0', ' ', 'é', 'ß', '€', '日本', '🌡️', '\u0000', '\n'])).join('');
  const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => int(256)));
  // Large values (past 2^14, three-byte varints) are rare, or kafkajs's own encoder takes minutes.
  const value = (): Buffer | string | null => (r() < 0.01 ? bytes(20000 + int(50000)) : pick<() => Buffer | string | null>([() => bytes(int(300)), () => bytes(int(300)), () => text(), () => null, () => Buffer.alloc(0)])());
  const base = 1_700_000_000_000 + int(1e9);
  const timestamp = (): unknown =>
    pick<() => unknown>([() => String(base + int(5000)), () => String(base - int(5000)), () => base + int(1000), () => undefined, () => String(int(10000)), () => 0, () => '0'])();
  const header = (): Buffer | string | Array<Buffer | string> => pick<() => Buffer | string | Array<Buffer | string>>([() => text(), () => bytes(int(60)), () => [text(), bytes(int(20))], () => []])();
  const message = (): ProduceMessage => {
    const m: ProduceMessage = { key: pick<() => unknown>([() => null, () => undefined, () => text(), () => bytes(int(40))])(), value: value() };
    const hn = int(6);
    if (hn > 0 || r() < 0.5) m.headers = Object.fromEntries(Array.from({ length: hn }, (_, i) => [`${pick(['sluice', 'x-é', '🔑', ''])}${i}`, header()]));
    const ts = timestamp();
    if (ts !== undefined) m.timestamp = ts;
    return m;
  };
  const transactional = r() < 0.5;
  const idempotent = transactional || r() < 0.5;
  return {
    acks: pick([-1, 0, 1]),
    timeout: int(60000),
    transactionalId: transactional ? `tx-${text()}` : pick([null, undefined]),
    producerId: idempotent ? Long.fromValue(BigInt(int(2 ** 31)) * 1000003n) : undefined,
    producerEpoch: idempotent ? int(32767) : undefined,
    compression,
    topicData: Array.from({ length: 1 + int(3) }, (_, t) => ({
      topic: `topic-${t}-${text()}`,
      partitions: Array.from({ length: 1 + int(3) }, (_, p) => ({
        partition: p * 7 + int(3),
        firstSequence: idempotent ? int(2 ** 31) : undefined,
        messages: Array.from({ length: pick([0, 1, 2, 5, 40, 200]) }, message),
      })),
    })),
  };
}

test(`kafkajs is the version the fast produce encoder was written for (${PATCHED_FOR_KAFKAJS}); re-check src/sinks/kafkajs-fast-encode.ts against its protocol/requests/produce and recordBatch before changing this`, () => {
  assert.equal((require('kafkajs/package.json') as { version: string }).version, PATCHED_FOR_KAFKAJS);
});

test('the fast encoder writes byte for byte what kafkajs writes: random batches, every codec, transactional and idempotent fields', async (t) => {
  // kafkajs stamps records without a timestamp with Date.now(); both encoders must see one clock.
  t.mock.method(Date, 'now', () => 1_700_000_123_456);
  assert.equal(installFastProduceEncoding(), true);
  let records = 0;
  for (const [name, type] of CODECS) {
    await registerCodec(name);
    for (let seed = 1; seed <= 16; seed++) {
      const args = randomBatch(seed * 31 + type, type);
      const expected = (await kafkajsV3(args).encode()).buffer;
      const direct = await encodeProduceRequest(args);
      assert.ok(direct, `seed ${seed} ${name}: the fast path took the batch`);
      assert.ok(direct.buffer.equals(expected), `seed ${seed} ${name}: direct encoding differs`);
      // And through kafkajs's Produce definition as the broker uses it, every version the patch covers.
      for (const version of [3, 7]) {
        const viaProtocol = (await produce.protocol({ version })(args).request.encode()).buffer;
        assert.ok(viaProtocol.equals(version === 7 ? (await kafkajsV7(args).encode()).buffer : expected), `seed ${seed} ${name} v${version}: patched request differs`);
      }
      records += args.topicData.flatMap((d) => d.partitions).reduce((n, p) => n + p.messages.length, 0);
    }
  }
  assert.ok(records > 5000, `exercised ${records} records`);
});

test('input the fast encoder was not written for goes to kafkajs unchanged, same bytes or same error', async (t) => {
  t.mock.method(Date, 'now', () => 1_700_000_123_456);
  installFastProduceEncoding();
  const batch = (m: ProduceMessage): ProduceArgs => ({ acks: -1, timeout: 1000, topicData: [{ topic: 't', partitions: [{ partition: 0, messages: [{ value: Buffer.from('ok') }, m] }] }] });
  const odd: ProduceMessage[] = [
    { key: 42, value: 'v' }, // Buffer.byteLength(42) throws in kafkajs
    { value: 'v', headers: { h: null } },
    { value: 'v', headers: null },
    { value: 'v', timestamp: '1700000000000.5' },
    { value: 'v', timestamp: 'not a time' },
    { value: new Uint8Array([1, 2, 3]) },
  ];
  for (const m of odd) {
    const args = batch(m);
    assert.equal(await encodeProduceRequest(args).catch(() => 'threw'), null, `${JSON.stringify(m)} is handed to kafkajs`);
    const patched = await produce.protocol({ version: 7 })(args).request.encode().then((e) => e.buffer, (e: Error) => e.message);
    const original = await kafkajsV7(args).encode().then((e) => e.buffer, (e: Error) => e.message);
    assert.deepEqual(patched, original, JSON.stringify(m));
  }
});

test('installing twice patches once', () => {
  assert.equal(installFastProduceEncoding(), true);
  const protocol = produce.protocol;
  assert.equal(installFastProduceEncoding(), true);
  assert.equal(produce.protocol, protocol);
});

test("the batch CRC-32C is kafkajs's own, for every length and content", () => {
  const kafkajsCrc32C = require('kafkajs/src/protocol/recordBatch/crc32C/index.js') as (b: Buffer) => number;
  // The check value of CRC-32C (RFC 3720 B.4): "123456789" -> 0xe3069283.
  assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
  assert.equal(crc32c(Buffer.alloc(0)), kafkajsCrc32C(Buffer.alloc(0)));
  for (let len = 1; len < 300; len++) {
    const b = Buffer.alloc(len);
    for (let i = 0; i < len; i++) b[i] = (Math.random() * 256) | 0;
    assert.equal(crc32c(b), kafkajsCrc32C(b), `length ${len}`);
    // A view at an odd offset in a larger buffer, as the encoder passes the batch body.
    const big = Buffer.concat([Buffer.from([1, 2, 3]), b]);
    assert.equal(crc32c(big.subarray(3)), kafkajsCrc32C(b));
  }
  const large = Buffer.alloc(1 << 20);
  for (let i = 0; i < large.length; i++) large[i] = (i * 2654435761) >>> 24;
  assert.equal(crc32c(large), kafkajsCrc32C(large));
  assert.equal(crc32c(Buffer.alloc(4096, 0xff)), kafkajsCrc32C(Buffer.alloc(4096, 0xff)));
});
