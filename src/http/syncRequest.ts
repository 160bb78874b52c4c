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
import { BodyTooLarge, type Compression, compressedBound, readBytes } from "../compression.ts";
import { addressedBase } from "../placement/addressing.ts";
import { badRequest } from "../sync/errors.ts";
import { bodyText, type RawBody, rawBodyText } from "../sync/requestBody.ts";
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
  /**
   * The same body read at once by the runtime, without a JS stream (~20 µs less CPU a request
   * on the main thread); absent where the body must pass as a stream (multipart, counted by
   * the metrics). Bounded only by the listener's cap on any request body.
   */
  whole?: () => Promise<Uint8Array>;
  /** The body's declared length (`content-length`), when it has one. */
  length?: number;
  compression: Compression;
  /** The node base the client addressed (scale-out: placement/addressing.ts). */
  addressedBase?: string;
  /** Scale-out: the node that forwarded this request to us (forward.ts), if one did. */
  forwardedBy?: string;
  /**
   * What it takes to forward the request whole (forward.ts): its headers and path, and for
   * multipart the body as received (read here, bounded); an `anki-sync` request forwards
   * `body`, still the client's unread stream.
   */
  forwardable?: Forwardable;
}

export interface Forwardable {
  method: "GET" | "POST";
  headers: Headers;
  /** Path and query, as this node received them. */
  path: string;
  /** The body to send instead of `SyncRequest.body`; `null`: none (a GET). */
  body?: Blob | null;
}

/** Set on a request one node passes on to another (forward.ts); never forwarded again. */
export const FORWARDED_HEADER = "x-ankisyncd-forwarded";

const EMPTY_BODY = new TextEncoder().encode("{}");

/**
 * `scaleOut`: placement is configured, so the request may be admitted by address or passed on
 * (addressedBase, forwardedBy, forwardable); a single node skips that per-request work.
 */
export async function decodeSyncRequest(
  request: Request,
  maxLegacyBodyBytes: number,
  scaleOut = true,
): Promise<SyncRequest> {
  if (request.method === "GET") {
    const req = decodeQuery(request);
    return scaleOut ? { ...req, ...forwarding(request, null) } : req;
  }
  const header = request.headers.get("anki-sync");
  const { req, raw } =
    header !== null
      ? { req: decodeHeaderRequest(header, request), raw: undefined }
      : await decodeMultipart(request, maxLegacyBodyBytes);
  if (!scaleOut) return req;
  return { ...req, addressedBase: addressedBase(request.headers), ...forwarding(request, raw) };
}

/** Scale-out: who forwarded the request, and what forwarding it on would take. */
function forwarding(
  request: Request,
  body: Blob | null | undefined,
): Pick<SyncRequest, "forwardedBy" | "forwardable"> {
  const url = new URL(request.url);
  const method = request.method === "GET" ? "GET" : "POST";
  return {
    forwardedBy: request.headers.get(FORWARDED_HEADER) ?? undefined,
    forwardable: { method, headers: request.headers, path: url.pathname + url.search, body },
  };
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
    whole: () => request.bytes(),
    length: declaredLength(request.headers.get("content-length")),
    compression: "zstd",
  };
}

function declaredLength(header: string | null): number | undefined {
  if (header === null) return undefined;
  const length = Number(header);
  return Number.isSafeInteger(length) && length >= 0 ? length : undefined;
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

async function decodeMultipart(
  request: Request,
  maxBytes: number,
): Promise<{ req: SyncRequest; raw: Blob }> {
  const type = request.headers.get("content-type") ?? "";
  if (!type.startsWith("multipart/form-data"))
    throw badRequest("neither anki-sync header nor multipart body");
  const length = Number(request.headers.get("content-length") ?? "0");
  if (length > maxBytes) throw badRequest(`multipart body of ${length} bytes exceeds the limit`);
  const raw = await readBody(request, maxBytes);
  const form = await parseForm(raw, type);
  const text = (name: string) => {
    const v = form.get(name);
    return typeof v === "string" ? v : "";
  };
  const data = form.get("data");
  const bytes =
    data === null ? null : typeof data === "string" ? new TextEncoder().encode(data) : data;
  const empty = bytes === null || ("size" in bytes ? bytes.size === 0 : bytes.byteLength === 0);
  const c = form.get("c");
  const req: SyncRequest = {
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
  return { req, raw };
}

/** The multipart body, at most `maxBytes` of it (chunked bodies carry no length). */
async function readBody(request: Request, maxBytes: number): Promise<Blob> {
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
  return new Blob(chunks as BlobPart[]);
}

async function parseForm(raw: Blob, type: string): Promise<FormData> {
  try {
    return await new Response(raw, { headers: { "content-type": type } }).formData();
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

/**
 * Bodies declared at most this long are read whole rather than as a stream (then decoded in
 * one call, sync/requestBody.ts): every JSON body of a sync but `applyChunk`'s and large
 * `applyChanges`.
 */
const READ_WHOLE_BYTES = 64 * 1024;

/** The body at once, without a JS stream, when it declares a length within `bound`. */
function wholeWithin(req: SyncRequest, bound: number): (() => Promise<Uint8Array>) | undefined {
  return req.length !== undefined && req.length <= bound ? req.whole : undefined;
}

/** The decompressed body as text, bounded; broken compression, bad UTF-8 or too much is a 400. */
export async function readTextBody(req: SyncRequest, maxBytes: number): Promise<string> {
  const whole = wholeWithin(req, Math.min(READ_WHOLE_BYTES, compressedBound(maxBytes)));
  if (!whole) return bodyText(req.body, req.compression, maxBytes);
  let bytes: Uint8Array;
  try {
    bytes = await whole();
  } catch (err) {
    throw badRequest(`cannot read body: ${(err as Error).message}`, { cause: err });
  }
  return rawBodyText({ bytes, compression: req.compression, maxBytes });
}

/**
 * The body as sent, still compressed, for the collection worker to unpack and check
 * (sync/requestBody.ts): the main thread only collects its bytes, bounded by what a body within
 * `maxBytes` can take compressed. A body over that is a 400, as one that unpacks past the limit.
 * `requestCap` is the listener's cap on every request body (app.ts): a method allowed at least
 * that much is bounded by it alone, so its body is read at once.
 */
export async function readRawBody(
  req: SyncRequest,
  maxBytes: number,
  requestCap: number,
): Promise<RawBody> {
  const bound = compressedBound(maxBytes);
  try {
    const whole = bound >= requestCap ? req.whole : wholeWithin(req, bound);
    const bytes = whole ? await whole() : await readBytes(req.body, bound);
    return { bytes, compression: req.compression, maxBytes };
  } catch (err) {
    if (err instanceof BodyTooLarge) throw badRequest(err.message, { cause: err });
    throw badRequest(`cannot read body: ${(err as Error).message}`, { cause: err });
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
