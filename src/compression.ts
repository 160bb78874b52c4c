/**
 * Stream (de)compression for both framings: zstd for protocol v11, gzip for legacy clients.
 * gzip through web-standard CompressionStream/DecompressionStream; zstd through the runtime's
 * implementation (platform/zstd.ts).
 */
import { zstdCompressStream, zstdDecompressStream } from "./platform/zstd.ts";

export type Compression = "zstd" | "gzip" | "none";

export function decompressStream(
  stream: ReadableStream<Uint8Array>,
  format: Compression,
): ReadableStream<Uint8Array> {
  if (format === "none") return stream;
  if (format === "zstd") return stream.pipeThrough(zstdDecompressStream());
  return stream.pipeThrough(
    new DecompressionStream(format as CompressionFormat) as unknown as TransformStream<
      Uint8Array,
      Uint8Array
    >,
  );
}

export function compressStream(
  stream: ReadableStream<Uint8Array>,
  format: Compression,
): ReadableStream<Uint8Array> {
  if (format === "none") return stream;
  if (format === "zstd") return stream.pipeThrough(zstdCompressStream());
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

/** A whole (small) stream in memory as one buffer, refusing more than `maxBytes`. */
export async function readBytes(
  stream: ReadableStream<Uint8Array>,
  maxBytes: number,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const total = await readBounded(stream, maxBytes, (chunk) => chunks.push(chunk));
  return Buffer.concat(chunks, total);
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
