/**
 * zstd: one-shot compression (small replies) and streams both ways; the runtime's
 * implementation (#platform/zstd.ts).
 */
export { zstdCompress, zstdCompressStream, zstdDecompressStream } from "#platform/zstd.ts";
