/**
 * Encoding of successful responses: v11 clients get a zstd body and `anki-original-size`
 * (they refuse a success without it); legacy clients get the raw bytes.
 */
import { zstdStoredFrame } from "../compression.ts";
import { zstdCompress } from "../platform/zstd.ts";

/**
 * Replies up to this size (most of them: meta, a normal sync's steps, media JSON) go out in a
 * zstd frame without compression; compressing a few hundred bytes took more time than the
 * bytes saved.
 */
const STORE_UNCOMPRESSED_BYTES = 1024;

export async function bytesResponse(
  payload: Uint8Array<ArrayBuffer>,
  legacy: boolean,
): Promise<Response> {
  // content-length is what Bun would send anyway; set here, the metrics can read it.
  if (legacy)
    return new Response(payload, {
      headers: {
        "content-type": "application/octet-stream",
        "content-length": String(payload.byteLength),
      },
    });
  const body =
    payload.byteLength <= STORE_UNCOMPRESSED_BYTES
      ? zstdStoredFrame(payload)
      : ((await zstdCompress(payload)) as Uint8Array<ArrayBuffer>);
  return new Response(body, {
    headers: {
      "content-type": "application/octet-stream",
      "content-length": String(body.byteLength),
      "anki-original-size": String(payload.byteLength),
    },
  });
}

export function jsonResponse(value: unknown, legacy: boolean): Promise<Response> {
  return textResponse(JSON.stringify(value), legacy);
}

export function textResponse(text: string, legacy: boolean): Promise<Response> {
  return bytesResponse(new TextEncoder().encode(text), legacy);
}

/** A body in memory that is already in its final encoding (a media zip, zstd-compressed for v11). */
export function encodedResponse(body: Uint8Array, originalSize: number, legacy: boolean): Response {
  const headers: Record<string, string> = {
    "content-type": "application/octet-stream",
    "content-length": String(body.byteLength),
  };
  if (!legacy) headers["anki-original-size"] = String(originalSize);
  return new Response(body as Uint8Array<ArrayBuffer>, { headers });
}

/** A streamed body that is already in its final encoding (e.g. a file compressed as it is read). */
export function streamResponse(
  body: ReadableStream<Uint8Array>,
  originalSize: number,
  legacy: boolean,
): Response {
  const headers: Record<string, string> = { "content-type": "application/octet-stream" };
  if (!legacy) headers["anki-original-size"] = String(originalSize);
  else headers["content-length"] = String(originalSize);
  return new Response(body, { headers });
}
