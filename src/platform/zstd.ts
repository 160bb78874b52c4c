/** zstd, one-shot and streaming: the runtime's implementation (#platform/zstd.ts). */
export {
  zstdCompress,
  zstdCompressStream,
  zstdDecompress,
  zstdDecompressStream,
} from "#platform/zstd.ts";
