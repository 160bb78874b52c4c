/**
 * A request body as text: decompressed chunk by chunk, bounded, and a 400 when its compression
 * is broken, it is not UTF-8 or it decompresses past the limit. The same check whether the main
 * thread reads a body or a collection worker unpacks the bytes it was handed.
 */
import {
  BodyTooLarge,
  type Compression,
  decompressSmall,
  decompressStream,
  NotUtf8,
  readText,
} from "../compression.ts";
import { badRequest } from "./errors.ts";

/** A request body as the client sent it (still compressed), with what decoding it takes. */
export interface RawBody {
  bytes: Uint8Array;
  compression: Compression;
  /** The most it may decompress to. */
  maxBytes: number;
}

export async function bodyText(
  body: ReadableStream<Uint8Array>,
  compression: Compression,
  maxBytes: number,
): Promise<string> {
  try {
    return await readText(decompressStream(body, compression), maxBytes);
  } catch (err) {
    if (err instanceof BodyTooLarge || err instanceof NotUtf8)
      throw badRequest(err.message, { cause: err });
    throw badRequest(`cannot decompress body: ${(err as Error).message}`, { cause: err });
  }
}

export function rawBodyText({ bytes, compression, maxBytes }: RawBody): Promise<string> {
  const text = smallBodyText(bytes, compression, maxBytes);
  if (text !== null) return Promise.resolve(text);
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      if (bytes.byteLength > 0) controller.enqueue(bytes);
      controller.close();
    },
  });
  return bodyText(stream, compression, maxBytes);
}

/**
 * Whether a body, decoded now without streams, is the empty arguments `chunk`, `finish` and
 * `abort` take: an object with no key but `_pad`. False for anything else, including what
 * would be a 400: the caller then takes the path that checks and answers it.
 */
export function isEmptyArgsBody(raw: RawBody): boolean {
  let text: string | null;
  try {
    text = smallBodyText(raw.bytes, raw.compression, raw.maxBytes);
  } catch {
    return false;
  }
  if (text === null) return false;
  if (text === "") return true;
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
    return Object.keys(value).every((key) => key === "_pad");
  } catch {
    return false;
  }
}

/** A small body decoded without streams (compression.ts `decompressSmall`); null: stream it. */
function smallBodyText(
  bytes: Uint8Array,
  compression: Compression,
  maxBytes: number,
): string | null {
  let plain: Uint8Array | null;
  try {
    plain = decompressSmall(bytes, compression, maxBytes);
  } catch (err) {
    if (err instanceof BodyTooLarge) throw badRequest(err.message, { cause: err });
    throw badRequest(`cannot decompress body: ${(err as Error).message}`, { cause: err });
  }
  if (plain === null) return null;
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(plain);
  } catch (err) {
    const notUtf8 = new NotUtf8({ cause: err });
    throw badRequest(notUtf8.message, { cause: notUtf8 });
  }
}
