/** zstd through Bun's native implementation (off the JS thread for the async forms). */
export function zstdCompress(data: Uint8Array): Promise<Uint8Array> {
  return Bun.zstdCompress(data);
}

export function zstdDecompress(data: Uint8Array): Promise<Uint8Array> {
  return Bun.zstdDecompress(data);
}
