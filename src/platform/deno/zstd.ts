/**
 * zstd on Deno, which has no CompressionStream("zstd"): node:zlib. Its decompressor accepts a
 * truncated frame silently (partial output, no error), so streams go through zstdFrameCheck
 * first.
 */
import { Duplex } from "node:stream";
import { promisify } from "node:util";
import * as zlib from "node:zlib";
import { zstdFrameCheck } from "./zstdFrames.ts";

const compress = promisify(zlib.zstdCompress);

export async function zstdCompress(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await compress(data));
}

function web(node: Duplex): TransformStream<Uint8Array, Uint8Array> {
  return Duplex.toWeb(node) as unknown as TransformStream<Uint8Array, Uint8Array>;
}

export function zstdCompressStream(): TransformStream<Uint8Array, Uint8Array> {
  return web(zlib.createZstdCompress());
}

/** Fails on a truncated or malformed frame. */
export function zstdDecompressStream(): TransformStream<Uint8Array, Uint8Array> {
  const check = zstdFrameCheck();
  return {
    writable: check.writable,
    readable: check.readable.pipeThrough(web(zlib.createZstdDecompress())),
  };
}
