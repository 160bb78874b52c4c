/**
 * zstd: one-shot compression (small replies), one-shot decompression of small bodies whose size
 * the caller has bounded (or null: stream it), and streams both ways; the runtime's
 * implementation (#platform/zstd.ts).
 */
export {
  zstdCompress,
  zstdCompressStream,
  zstdDecompressSmall,
  zstdDecompressStream,
} from "#platform/zstd.ts";
export type { ZstdEffort } from "./zstdStreams.ts";
