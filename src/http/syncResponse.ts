/**
 * Encoding of successful responses: v11 clients get a zstd body and `anki-original-size`
 * (they refuse a success without it); legacy clients get the raw bytes.
 */
import { encodeReply } from "../compression.ts";

export async function bytesResponse(payload: Uint8Array, legacy: boolean): Promise<Response> {
  const body = await encodeReply(payload, legacy ? "none" : "zstd");
  return encodedResponse(body, payload.byteLength, legacy);
}

export function jsonResponse(value: unknown, legacy: boolean): Promise<Response> {
  return textResponse(JSON.stringify(value), legacy);
}

export function textResponse(text: string, legacy: boolean): Promise<Response> {
  return bytesResponse(new TextEncoder().encode(text), legacy);
}

/**
 * A body in memory that is already in its final encoding (a media zip or a normal-sync reply,
 * zstd-compressed for v11 by the worker). content-length is what Bun would send anyway; set
 * here, the metrics can read it. A v11 body of `ONE_SEND_STREAM` size goes as a stream of one
 * chunk instead (see there), unless `sameTurn`: the answer is made in the event-loop turn its
 * request was read in (no wait for another thread), where Bun writes a plain body with its
 * headers in one `send()` at any size and a stream's terminator would add a second.
 */
export function encodedResponse(
  body: Uint8Array,
  originalSize: number,
  legacy: boolean,
  { sameTurn = false }: { sameTurn?: boolean } = {},
): Response {
  const sized = body.byteLength >= ONE_SEND_STREAM.from && body.byteLength < ONE_SEND_STREAM.below;
  if (!legacy && !sameTurn && sized) return oneChunkResponse(body, originalSize);
  const headers: Record<string, string> = {
    "content-type": "application/octet-stream",
    "content-length": String(body.byteLength),
  };
  if (!legacy) headers["anki-original-size"] = String(originalSize);
  return new Response(body as Uint8Array<ArrayBuffer>, { headers });
}

/**
 * Bun (1.4.5) writes a response that is produced after an event-loop turn (ours: after the
 * worker's reply) corked, in one `send()`, only while its body is under ~15 KiB; a larger
 * in-memory body goes out as ~19 `send()`s (status line, each header name, `: `, value and
 * CRLF apart; one TCP segment and one client wake-up each). The same body as a stream of one
 * chunk leaves in two: headers and chunk in one `sendmsg`, the chunked terminator after. Anki's
 * server streams its replies the same way (chunked, no content-length), so every v11 client
 * reads them. Bodies from 1 MiB on (media zips) keep the plain path: there the headers' sends
 * are nothing beside the body's.
 */
export const ONE_SEND_STREAM = { from: 14 * 1024, below: 1024 * 1024 } as const;

function oneChunkResponse(body: Uint8Array, originalSize: number): Response {
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(body);
      controller.close();
    },
  });
  return new Response(stream, { headers: { "anki-original-size": String(originalSize) } });
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

/**
 * `body` as it comes, except that its last byte waits for `settled`: if that fails, the body
 * fails there and the client never has all of it (a truncated zstd frame or short file is
 * refused), so it cannot keep a copy the server did not commit to. Only one byte is held, not
 * the last chunk: which chunk is last shows only at the end, and holding whole chunks kept the
 * first bytes (and the headers, which go out with them) back until a second chunk was
 * compressed (~8 ms of a 10 MB download here).
 */
export function endingAfter(
  body: ReadableStream<Uint8Array>,
  settled: Promise<unknown>,
): ReadableStream<Uint8Array> {
  let held: Uint8Array | undefined;
  return body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        if (chunk.byteLength === 0) return;
        // The previous chunk's byte goes out on its own, not joined: no copy of the chunk.
        if (held) controller.enqueue(held);
        held = chunk.subarray(chunk.byteLength - 1);
        if (chunk.byteLength > 1) controller.enqueue(chunk.subarray(0, chunk.byteLength - 1));
      },
      async flush(controller) {
        await settled;
        if (held) controller.enqueue(held);
      },
    }),
  );
}
