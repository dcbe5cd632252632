import { createRequire } from 'node:module';
import kafkajs from './kafkajs.js';

// kafkajs is CommonJS; these two are not seen as named exports by Node's ESM loader.
const { CompressionCodecs, CompressionTypes } = kafkajs;
type CompressionTypes = kafkajs.CompressionTypes;

/** Codec names as the config spells them. */
export type CompressionName = 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd';

const require = createRequire(import.meta.url);

/** kafkajs' codec shape: compress gets its Encoder (we need only `.buffer`). */
interface Codec {
  compress(encoder: { buffer: Buffer }): Promise<Buffer>;
  decompress(buffer: Buffer): Promise<Buffer>;
}

/** xerial snappy-java stream header: Java producers frame snappy this way; we must read it back. */
const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]);

function snappyCodec(): Codec {
  // snappy (napi-rs): prebuilt binaries for x64 and arm64 glibc/musl, no build at install.
  const snappy = require('snappy') as typeof import('snappy');
  return {
    // Raw snappy, as librdkafka and kafkajs-snappy send it; the broker's snappy-java reads both forms.
    compress: async (encoder) => snappy.compressSync(encoder.buffer),
    async decompress(buffer) {
      if (buffer.length < 16 || !buffer.subarray(0, 8).equals(XERIAL_MAGIC)) return snappy.uncompressSync(buffer) as Buffer;
      const parts: Buffer[] = [];
      for (let at = 16; at + 4 <= buffer.length; ) {
        const size = buffer.readUInt32BE(at);
        parts.push(snappy.uncompressSync(buffer.subarray(at + 4, at + 4 + size)) as Buffer);
        at += 4 + size;
      }
      return Buffer.concat(parts);
    },
  };
}

function lz4Codec(): Codec {
  // lz4-napi (napi-rs over lz4_flex): the LZ4 frame format Kafka uses since message format v1.
  const lz4 = require('lz4-napi') as typeof import('lz4-napi');
  return {
    compress: async (encoder) => lz4.compressFrameSync(encoder.buffer),
    decompress: async (buffer) => lz4.decompressFrameSync(buffer),
  };
}

async function zstdCodec(): Promise<Codec> {
  // @bokuweb/zstd-wasm: zstd compiled to WebAssembly; no native build, same on every CPU.
  const zstd = require('@bokuweb/zstd-wasm') as { init(): Promise<void>; compress(b: Uint8Array, level?: number): Uint8Array; decompress(b: Uint8Array): Uint8Array };
  await zstd.init();
  return {
    compress: async (encoder) => Buffer.from(zstd.compress(encoder.buffer, 3)),
    decompress: async (buffer) => Buffer.from(zstd.decompress(buffer)),
  };
}

const registered = new Map<CompressionName, Promise<void>>();

/**
 * Registers the codec a sink uses with kafkajs (it ships only gzip). Process-wide by kafkajs'
 * design; idempotent. Only the configured codec is loaded, so a codec package that cannot load
 * on some platform does not affect sinks using another one. Call before the first send.
 */
export function registerCodec(name: CompressionName): Promise<void> {
  let p = registered.get(name);
  if (!p) {
    p = (async () => {
      if (name === 'snappy') {
        const codec = snappyCodec();
        CompressionCodecs[CompressionTypes.Snappy] = () => codec;
      } else if (name === 'lz4') {
        const codec = lz4Codec();
        CompressionCodecs[CompressionTypes.LZ4] = () => codec;
      } else if (name === 'zstd') {
        const codec = await zstdCodec();
        CompressionCodecs[CompressionTypes.ZSTD] = () => codec;
      }
    })();
    // A failed load is tried again on the next connect.
    p.catch(() => registered.delete(name));
    registered.set(name, p);
  }
  return p;
}

/** The kafkajs compression attribute for a configured codec name. */
export function compressionType(name: CompressionName): CompressionTypes {
  switch (name) {
    case 'none':
      return CompressionTypes.None;
    case 'gzip':
      return CompressionTypes.GZIP;
    case 'snappy':
      return CompressionTypes.Snappy;
    case 'lz4':
      return CompressionTypes.LZ4;
    case 'zstd':
      return CompressionTypes.ZSTD;
  }
}
