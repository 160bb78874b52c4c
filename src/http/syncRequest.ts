/**
 * Decoding of sync requests in both framings:
 * - v11: an `anki-sync` JSON header (version, host key, client version, session key) and a
 *   zstd body;
 * - legacy (v8-v10): multipart/form-data with fields data, c (gzip flag), k/sk, s, v;
 * - the old `GET /msync/begin?k=<host key>&v=<client version>`: no body at all.
 * The v11 body is left as a stream, unread until the host key in the header has been checked:
 * JSON methods then read it (bounded per method), uploads stream it to disk. A legacy request
 * carries its host key inside the multipart body, so that body is read first, bounded by the
 * (compressed) payload limit; its `data` field is only decompressed after authentication.
 */
import {
  BodyTooLarge,
  type Compression,
  decompressStream,
  NotUtf8,
  readText,
} from "../compression.ts";
import { addressedBase } from "../placement/addressing.ts";
import { badRequest } from "../sync/errors.ts";
import {
  isSupportedVersion,
  SYNC_VERSION_10_V2_TIMEZONE,
  SYNC_VERSION_11_DIRECT_POST,
} from "../sync/version.ts";

export interface SyncRequest {
  /** Effective protocol version: legacy requests count as 10, as in Anki's server. */
  version: number;
  legacy: boolean;
  /** Multipart framing: its `v` field is the client version (used by `msync/begin`). */
  multipart: boolean;
  hostKey: string;
  skey: string;
  clientVersion: string;
  body: ReadableStream<Uint8Array>;
  compression: Compression;
  /** The node base the client addressed (scale-out: placement/addressing.ts). */
  addressedBase?: string;
}

const EMPTY_BODY = new TextEncoder().encode("{}");

export async function decodeSyncRequest(
  request: Request,
  maxLegacyBodyBytes: number,
): Promise<SyncRequest> {
  if (request.method === "GET") return decodeQuery(request);
  const header = request.headers.get("anki-sync");
  const decoded =
    header !== null
      ? decodeHeaderRequest(header, request)
      : await decodeMultipart(request, maxLegacyBodyBytes);
  return { ...decoded, addressedBase: addressedBase(request.headers) };
}

function decodeQuery(request: Request): SyncRequest {
  const query = new URL(request.url).searchParams;
  const hostKey = query.get("k");
  const clientVersion = query.get("v");
  if (hostKey === null || clientVersion === null) throw badRequest("GET msync/begin needs k and v");
  return {
    version: SYNC_VERSION_10_V2_TIMEZONE,
    legacy: true,
    multipart: false,
    hostKey,
    skey: "",
    clientVersion,
    body: streamOf(new TextEncoder().encode(JSON.stringify({ v: clientVersion }))),
    compression: "none",
  };
}

function decodeHeaderRequest(header: string, request: Request): SyncRequest {
  const parsed = parseSyncHeader(header);
  if (!isSupportedVersion(parsed.v)) throw badRequest(`unsupported sync version ${parsed.v}`);
  return {
    version: parsed.v,
    legacy: parsed.v < SYNC_VERSION_11_DIRECT_POST,
    multipart: false,
    hostKey: parsed.k,
    skey: parsed.s,
    clientVersion: parsed.c,
    body: request.body ?? streamOf(new Uint8Array()),
    compression: "zstd",
  };
}

interface SyncHeader {
  v: number;
  k: string;
  c: string;
  s: string;
}

function parseSyncHeader(text: string): SyncHeader {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw badRequest("anki-sync header is not JSON", { cause: err });
  }
  const h = value as Partial<SyncHeader> | null;
  if (
    !h ||
    typeof h !== "object" ||
    typeof h.v !== "number" ||
    typeof h.k !== "string" ||
    typeof h.c !== "string" ||
    typeof h.s !== "string"
  ) {
    throw badRequest("anki-sync header lacks v, k, c or s");
  }
  return h as SyncHeader;
}

async function decodeMultipart(request: Request, maxBytes: number): Promise<SyncRequest> {
  const type = request.headers.get("content-type") ?? "";
  if (!type.startsWith("multipart/form-data"))
    throw badRequest("neither anki-sync header nor multipart body");
  const length = Number(request.headers.get("content-length") ?? "0");
  if (length > maxBytes) throw badRequest(`multipart body of ${length} bytes exceeds the limit`);
  const form = await readForm(request, type, maxBytes);
  const text = (name: string) => {
    const v = form.get(name);
    return typeof v === "string" ? v : "";
  };
  const data = form.get("data");
  const bytes =
    data === null ? null : typeof data === "string" ? new TextEncoder().encode(data) : data;
  const empty = bytes === null || ("size" in bytes ? bytes.size === 0 : bytes.byteLength === 0);
  const c = form.get("c");
  return {
    version: SYNC_VERSION_10_V2_TIMEZONE,
    legacy: true,
    multipart: true,
    hostKey: text("k") || text("sk"),
    skey: text("s"),
    clientVersion: text("v"),
    body: empty
      ? streamOf(EMPTY_BODY)
      : bytes instanceof Uint8Array
        ? streamOf(bytes)
        : (bytes as Blob).stream(),
    compression: empty || c === null || c === "0" ? "none" : "gzip",
  };
}

/** Parses the multipart body, reading at most `maxBytes` of it (chunked bodies carry no length). */
async function readForm(request: Request, type: string, maxBytes: number): Promise<FormData> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  if (request.body) {
    const reader = request.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) {
        await reader.cancel().catch(() => {});
        throw badRequest(`multipart body exceeds ${maxBytes} bytes`);
      }
      chunks.push(value);
    }
  }
  try {
    return await new Response(new Blob(chunks as BlobPart[]), {
      headers: { "content-type": type },
    }).formData();
  } catch (err) {
    throw badRequest(`unreadable multipart body: ${(err as Error).message}`, { cause: err });
  }
}

function streamOf(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      controller.enqueue(bytes);
      controller.close();
    },
  });
}

/** The decompressed body as text, bounded; broken compression, bad UTF-8 or too much is a 400. */
export async function readTextBody(req: SyncRequest, maxBytes: number): Promise<string> {
  try {
    return await readText(decompressStream(req.body, req.compression), maxBytes);
  } catch (err) {
    if (err instanceof BodyTooLarge || err instanceof NotUtf8)
      throw badRequest(err.message, { cause: err });
    throw badRequest(`cannot decompress body: ${(err as Error).message}`, { cause: err });
  }
}

export async function readJsonBody(req: SyncRequest, maxBytes: number): Promise<unknown> {
  const text = await readTextBody(req, maxBytes);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw badRequest(`invalid json: ${(err as Error).message}`, { cause: err });
  }
}
