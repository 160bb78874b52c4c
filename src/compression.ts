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

/** Reads a whole (small) stream, refusing more than `maxBytes`. */
export async function readAll(
  stream: ReadableStream<Uint8Array>,
  maxBytes: number,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of stream) {
    total += chunk.byteLength;
    if (total > maxBytes) throw new BodyTooLarge(maxBytes);
    chunks.push(chunk);
  }
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}
