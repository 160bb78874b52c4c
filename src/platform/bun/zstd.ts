/** zstd on Bun: its native one-shot compression (off the JS thread) and web streams. */

/**
 * Below this, compressing takes microseconds, less than handing the work to the thread pool
 * and back; most sync replies are a few hundred bytes.
 */
const INLINE_COMPRESS_BYTES = 64 * 1024;

export function zstdCompress(data: Uint8Array): Promise<Uint8Array> {
  if (data.byteLength <= INLINE_COMPRESS_BYTES) return Promise.resolve(Bun.zstdCompressSync(data));
  return Bun.zstdCompress(data);
}

export function zstdCompressStream(): TransformStream<Uint8Array, Uint8Array> {
  return new CompressionStream("zstd" as CompressionFormat) as unknown as TransformStream<
    Uint8Array,
    Uint8Array
  >;
}

/** Fails on a truncated or malformed frame. */
export function zstdDecompressStream(): TransformStream<Uint8Array, Uint8Array> {
  return new DecompressionStream("zstd" as CompressionFormat) as unknown as TransformStream<
    Uint8Array,
    Uint8Array
  >;
}
