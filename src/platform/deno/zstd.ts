/**
 * zstd on Deno, which has no CompressionStream("zstd"): node:zlib. Its decompressor accepts a
 * truncated frame silently (partial output, no error), so streams go through zstdFrameCheck
 * first.
 */
import { promisify } from "node:util";
import * as zlib from "node:zlib";
import { zstdFrameCheck } from "./zstdFrames.ts";

const compress = promisify(zlib.zstdCompress);

/** Level 1, as on Bun (platform/bun/zstd.ts says why). */
const LEVEL = { params: { [zlib.constants.ZSTD_c_compressionLevel]: 1 } };

export async function zstdCompress(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await compress(data, LEVEL));
}

/**
 * A node:zlib transform as a web TransformStream. Not Duplex.toWeb: Deno's adapter keeps
 * enqueueing the zlib output after the reader cancelled (a body cut at its size limit) or the
 * stream failed, and that throws "cannot close or enqueue" outside any promise, which ends the
 * process. Here every event checks that the readable side is still open, a cancel destroys the
 * zlib stream, and the zlib stream is paused while nobody asks for more (backpressure).
 */
function web(
  node: zlib.ZstdCompress | zlib.ZstdDecompress,
): TransformStream<Uint8Array, Uint8Array> {
  let open = true;
  const readable = new ReadableStream<Uint8Array>(
    {
      start(controller) {
        const finish = (end: () => void): void => {
          if (!open) return;
          open = false;
          end();
        };
        node.on("data", (chunk: Buffer) => {
          if (!open) return;
          controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
          if ((controller.desiredSize ?? 0) <= 0) node.pause();
        });
        node.on("end", () => finish(() => controller.close()));
        node.on("error", (err: Error) => finish(() => controller.error(err)));
        node.on("close", () =>
          finish(() => controller.error(new Error("zstd: stream closed early"))),
        );
        node.pause();
      },
      pull() {
        node.resume();
      },
      cancel() {
        open = false;
        node.destroy();
      },
    },
    { highWaterMark: 1 },
  );
  const writable = new WritableStream<Uint8Array>({
    write(chunk) {
      return new Promise((resolve, reject) => {
        node.write(chunk, (err) => (err ? reject(err) : resolve()));
      });
    },
    close() {
      // A failure while flushing reaches the reader through the readable side.
      return new Promise((resolve) => {
        node.once("close", resolve);
        node.end(() => resolve());
      });
    },
    abort(reason) {
      node.destroy(reason instanceof Error ? reason : new Error(String(reason)));
    },
  });
  return { readable, writable };
}

/** Not on Deno: its zlib's one-shot call is lenient with truncated frames; callers stream. */
export function zstdDecompressSmall(_data: Uint8Array): null {
  return null;
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
