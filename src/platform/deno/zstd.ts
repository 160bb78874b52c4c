/**
 * zstd on Deno, which has no CompressionStream("zstd"): node:zlib. Its decompressor accepts a
 * truncated frame silently (partial output, no error), so streams go through zstdFrameCheck
 * first.
 */
import { promisify } from "node:util";
import * as zlib from "node:zlib";
import { zlibWebStream } from "../zstdStreams.ts";
import { zstdFrameCheck } from "./zstdFrames.ts";

const compress = promisify(zlib.zstdCompress);

/** Level 1, as on Bun (platform/bun/zstd.ts says why). */
const LEVEL = { params: { [zlib.constants.ZSTD_c_compressionLevel]: 1 } };

export async function zstdCompress(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await compress(data, LEVEL));
}

/** Not on Deno: its zlib's one-shot call is lenient with truncated frames; callers stream. */
export function zstdDecompressSmall(_data: Uint8Array): null {
  return null;
}

export { zstdCompressStream } from "../zstdStreams.ts";

/** Fails on a truncated or malformed frame. */
export function zstdDecompressStream(): TransformStream<Uint8Array, Uint8Array> {
  const check = zstdFrameCheck();
  return {
    writable: check.writable,
    readable: check.readable.pipeThrough(zlibWebStream(zlib.createZstdDecompress())),
  };
}
