/** zstd on Bun: its native one-shot compression (off the JS thread) and web streams. */
export function zstdCompress(data: Uint8Array): Promise<Uint8Array> {
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
