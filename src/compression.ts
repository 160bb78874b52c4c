/**
 * Stream (de)compression for both framings: zstd for protocol v11, gzip for legacy clients.
 * gzip through web-standard CompressionStream/DecompressionStream; zstd through the runtime's
 * implementation (platform/zstd.ts).
 */

import { concatBytes } from "./platform/files.ts";
import {
  type ZstdEffort,
  zstdCompress,
  zstdCompressStream,
  zstdDecompressSmall,
  zstdDecompressStream,
} from "./platform/zstd.ts";

export type Compression = "zstd" | "gzip" | "none";

export function decompressStream(
  stream: ReadableStream<Uint8Array>,
  format: Compression,
): ReadableStream<Uint8Array> {
  if (format === "none") return stream;
  return stream.pipeThrough(decompressor(format));
}

/** The decompressing stage for `format` on its own (a pass-through for "none"). */
export function decompressor(format: Compression): TransformStream<Uint8Array, Uint8Array> {
  if (format === "none") return new TransformStream<Uint8Array, Uint8Array>();
  if (format === "zstd") return zstdDecompressStream();
  return new DecompressionStream(format as CompressionFormat) as unknown as TransformStream<
    Uint8Array,
    Uint8Array
  >;
}

/** `effort`: zstd only (platform/zstdStreams.ts); gzip keeps the runtime's default. */
export function compressStream(
  stream: ReadableStream<Uint8Array>,
  format: Compression,
  effort: ZstdEffort = "small",
): ReadableStream<Uint8Array> {
  if (format === "none") return stream;
  if (format === "zstd") return stream.pipeThrough(zstdCompressStream(effort));
  return stream.pipeThrough(
    new CompressionStream(format as CompressionFormat) as unknown as TransformStream<
      Uint8Array,
      Uint8Array
    >,
  );
}

export class BodyTooLarge extends Error {
  constructor(readonly limit: number) {
    super(`body exceeds ${limit} bytes`);
  }
}

/**
 * Reads a stream as UTF-8 text, refusing more than `maxBytes` of it. Each chunk is decoded as it
 * arrives and dropped, so a body is never held both as chunks and as one joined copy; a
 * decompression bomb stops at the limit (decompressors here emit 64 KiB chunks).
 */
export async function readText(
  stream: ReadableStream<Uint8Array>,
  maxBytes: number,
): Promise<string> {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let text = "";
  await readBounded(stream, maxBytes, (chunk) => {
    text += decodeChunk(decoder, chunk);
  });
  return text + decodeChunk(decoder);
}

/**
 * A whole (small) stream in memory as one buffer of its own (so it can be transferred to
 * another thread), refusing more than `maxBytes`.
 */
export async function readBytes(
  stream: ReadableStream<Uint8Array>,
  maxBytes: number,
): Promise<Uint8Array<ArrayBuffer>> {
  const chunks: Uint8Array[] = [];
  const total = await readBounded(stream, maxBytes, (chunk) => chunks.push(chunk));
  return concatBytes(chunks, total);
}

/** Hands each chunk on as it arrives; past `maxBytes` the read stops and BodyTooLarge is thrown. */
async function readBounded(
  stream: ReadableStream<Uint8Array>,
  maxBytes: number,
  onChunk: (chunk: Uint8Array) => void,
): Promise<number> {
  const reader = stream.getReader();
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return total;
      total += value.byteLength;
      if (total > maxBytes) throw new BodyTooLarge(maxBytes);
      onChunk(value);
    }
  } catch (err) {
    // Stops the decompressor and the socket read instead of draining the rest.
    await reader.cancel().catch(() => {});
    throw err;
  }
}

export class NotUtf8 extends Error {
  constructor(options?: ErrorOptions) {
    super("body is not UTF-8", options);
  }
}

function decodeChunk(decoder: TextDecoder, chunk?: Uint8Array): string {
  try {
    return chunk ? decoder.decode(chunk, { stream: true }) : decoder.decode();
  } catch (err) {
    throw new NotUtf8({ cause: err });
  }
}

/**
 * A zstd frame holding `payload` uncompressed (one raw block), for replies so small that
 * compressing them costs more time than it saves bytes: clients of protocol v11 decode any
 * valid frame. RFC 8878: magic, a single-segment header with the content size, one last block.
 */
export function zstdStoredFrame(payload: Uint8Array): Uint8Array<ArrayBuffer> {
  const size = payload.byteLength;
  if (size > STORED_FRAME_MAX_BYTES) throw new RangeError(`${size} bytes: too large for one frame`);
  const small = size < 256;
  // Descriptor: content-size field of 1 byte (flag 0) or 2 bytes (flag 1, value - 256), single segment.
  const header = small ? [0x20, size] : [0x60, (size - 256) & 0xff, (size - 256) >> 8];
  const block = (size << 3) | 1; // last block, type raw
  const frame = new Uint8Array(4 + header.length + 3 + size);
  frame.set([0x28, 0xb5, 0x2f, 0xfd, ...header, block & 0xff, (block >> 8) & 0xff, block >> 16]);
  frame.set(payload, 4 + header.length + 3);
  return frame;
}

/**
 * Replies up to this size (most of them: meta, a normal sync's steps, media JSON) go out in a
 * zstd frame without compression; compressing a few hundred bytes took more time than the
 * bytes saved.
 */
const STORE_UNCOMPRESSED_BYTES = 1024;

/**
 * A reply body in its final encoding: zstd for protocol v11 (stored when tiny), the bytes as
 * they are for legacy clients. Run by whichever thread made the reply, so a collection
 * worker's large replies are not compressed on the main thread.
 */
export async function encodeReply(
  payload: Uint8Array,
  format: "zstd" | "none",
): Promise<Uint8Array<ArrayBuffer>> {
  if (format === "none") return payload as Uint8Array<ArrayBuffer>;
  if (payload.byteLength <= STORE_UNCOMPRESSED_BYTES) return zstdStoredFrame(payload);
  return (await zstdCompress(payload)) as Uint8Array<ArrayBuffer>;
}

/**
 * The most compressed bytes a body that decompresses to `maxBytes` can take, in either format
 * (a stored zstd block costs 3 bytes per 128 KiB, a stored deflate block 5 per 64 KiB, plus
 * headers): a reader that holds a body whole before decompressing it is bounded by this.
 */
export function compressedBound(maxBytes: number): number {
  return maxBytes + Math.ceil(maxBytes / 1024) + 1024;
}

/** What a 2-byte content size holds (256 + 65535). */
const STORED_FRAME_MAX_BYTES = 65791;

/** Largest zstd block after decompression (RFC 8878: Block_Maximum_Size). */
const ZSTD_BLOCK_MAX = 128 * 1024;

/** Bodies decompressed in one call at most decompress to this; larger ones are streamed. */
const ONE_SHOT_MAX_BYTES = 1024 * 1024;

/**
 * A small body decompressed in one call instead of through a stream (the streams' promises and
 * buffers cost more than the work on a body of a few hundred bytes), when its frames alone
 * show that it decompresses to at most `maxBytes` (and ONE_SHOT_MAX_BYTES): null otherwise, and
 * for gzip, so the caller streams it, which stops at the limit and reports a malformed frame.
 * A frame whose layout is sound but whose content is not throws, as its stream would fail.
 */
export function decompressSmall(
  bytes: Uint8Array,
  format: Compression,
  maxBytes: number,
): Uint8Array | null {
  if (format === "none") return bytes.byteLength <= maxBytes ? bytes : null;
  if (format !== "zstd") return null;
  const bound = zstdOutputBound(bytes);
  if (bound === null || bound > Math.min(maxBytes, ONE_SHOT_MAX_BYTES)) return null;
  const out = zstdDecompressSmall(bytes);
  if (out && out.byteLength > maxBytes) throw new BodyTooLarge(maxBytes);
  return out;
}

/**
 * The most `bytes` can decompress to, read from its frames' layout (RFC 8878): raw and RLE
 * blocks give their size, a compressed block at most ZSTD_BLOCK_MAX. Null unless it is whole,
 * well-formed zstd (one or more frames, skippable frames allowed, no dictionary) ending exactly
 * at the end of `bytes`.
 */
export function zstdOutputBound(bytes: Uint8Array): number | null {
  const end = bytes.byteLength;
  const u32 = (at: number) =>
    ((bytes[at] as number) |
      ((bytes[at + 1] as number) << 8) |
      ((bytes[at + 2] as number) << 16) |
      ((bytes[at + 3] as number) << 24)) >>>
    0;
  let at = 0;
  let total = 0;
  let frames = 0;
  while (at < end) {
    if (at + 4 > end) return null;
    const magic = u32(at);
    at += 4;
    if ((magic & 0xfffffff0) === 0x184d2a50) {
      if (at + 4 > end) return null;
      at += 4 + u32(at);
      continue;
    }
    if (magic !== 0xfd2fb528 || at >= end) return null;
    const descriptor = bytes[at++] as number;
    const single = (descriptor >> 5) & 1;
    if (descriptor & 0x0b) return null; // reserved bit, or a dictionary id
    const contentSizeBytes = [single, 2, 4, 8][descriptor >> 6] as number;
    at += (single ? 0 : 1) + contentSizeBytes;
    for (let last = 0; !last; ) {
      if (at + 3 > end) return null;
      const header =
        (bytes[at] as number) |
        ((bytes[at + 1] as number) << 8) |
        ((bytes[at + 2] as number) << 16);
      at += 3;
      last = header & 1;
      const type = (header >> 1) & 3;
      const size = header >>> 3;
      if (type === 3 || size > ZSTD_BLOCK_MAX) return null;
      total += type === 2 ? ZSTD_BLOCK_MAX : size;
      at += type === 1 ? 1 : size;
    }
    at += (descriptor >> 2) & 1 ? 4 : 0; // content checksum
    frames++;
  }
  return at === end && frames > 0 ? total : null;
}
