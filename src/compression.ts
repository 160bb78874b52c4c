/**
 * Stream (de)compression for both framings: zstd for protocol v11, gzip for legacy clients.
 * Web-standard CompressionStream/DecompressionStream; Bun implements the `zstd` format natively.
 */
export type Compression = "zstd" | "gzip" | "none";

export function decompressStream(
  stream: ReadableStream<Uint8Array>,
  format: Compression,
): ReadableStream<Uint8Array> {
  if (format === "none") return stream;
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
  const reader = stream.getReader();
  let text = "";
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) throw new BodyTooLarge(maxBytes);
      text += decodeChunk(decoder, value);
    }
    return text + decodeChunk(decoder);
  } catch (err) {
    // Stops the decompressor and the socket read instead of draining the rest.
    await reader.cancel().catch(() => {});
    throw err;
  }
}

export class NotUtf8 extends Error {
  constructor() {
    super("body is not UTF-8");
  }
}

function decodeChunk(decoder: TextDecoder, chunk?: Uint8Array): string {
  try {
    return chunk ? decoder.decode(chunk, { stream: true }) : decoder.decode();
  } catch {
    throw new NotUtf8();
  }
}
