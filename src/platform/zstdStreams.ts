/**
 * Streamed zstd compression through node:zlib, on both runtimes (#platform/zstd.ts re-exports
 * it), at a chosen level, and the adapter that makes a node:zlib transform a web stream.
 */
import * as zlib from "node:zlib";

/**
 * How hard a stream is compressed. "small": level 3 (zstd's default, Anki's server's), the
 * fewest bytes. "fast": level 1, ~40% less CPU for ~16% more bytes on a collection (10 MB:
 * ~55 against ~95 ms, 3.63 against 3.12 MB); on media that is compressed already, ~4x less CPU
 * for the same bytes. Level 3 still compresses faster (~250 Mbit/s out here) than most links
 * carry, so "fast" pays only where the link is faster than that.
 */
export type ZstdEffort = "fast" | "small";

const LEVELS: Record<ZstdEffort, number> = { fast: 1, small: 3 };

/**
 * One zstd frame (the Rust client reads only the first), compressed on the thread pool. Not
 * Bun's CompressionStream: it compresses at level 3 with no way to choose.
 */
export function zstdCompressStream(
  effort: ZstdEffort = "small",
): TransformStream<Uint8Array, Uint8Array> {
  return zlibWebStream(
    zlib.createZstdCompress({
      chunkSize: STREAM_CHUNK_BYTES,
      params: { [zlib.constants.ZSTD_c_compressionLevel]: LEVELS[effort] },
    }),
  );
}

/** The encoder's output chunks: 4x zlib's default 16 KiB, fewer writes to the socket. */
const STREAM_CHUNK_BYTES = 64 * 1024;

/**
 * A node:zlib transform as a web TransformStream. Not Duplex.toWeb: Deno's adapter keeps
 * enqueueing the zlib output after the reader cancelled (a body cut at its size limit) or the
 * stream failed, and that throws "cannot close or enqueue" outside any promise, which ends the
 * process. Here every event checks that the readable side is still open, a cancel destroys the
 * zlib stream, and the zlib stream is paused while nobody asks for more (backpressure).
 */
export function zlibWebStream(
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
