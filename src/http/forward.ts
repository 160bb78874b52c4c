/**
 * Scale-out: a request of a user another live node serves, passed on to that node and its
 * answer passed back (docs/scaling.md "Forwarding"). Placement decides whether and where
 * (`PlacementError.forwardTo`); this only moves bytes. Both bodies stream: a large media
 * upload or download never sits in this node's memory.
 */
import type { Logger } from "../log.ts";
import { type ForwardTarget, PlacementError } from "../placement/errors.ts";
import { errorResponse } from "./status.ts";
import { FORWARDED_HEADER, type SyncRequest } from "./syncRequest.ts";

/** What the sync protocol reads from a request and an answer; nothing hop-by-hop. */
const REQUEST_HEADERS = ["anki-sync", "content-type", "content-encoding", "anki-original-size"];
const RESPONSE_HEADERS = [
  "content-type",
  "content-encoding",
  "anki-original-size",
  "content-length",
  "location",
];

/**
 * How long the owner may take to begin its answer (the request body streams meanwhile, so a
 * slow client's large upload counts too). The answer's body then streams without a bound of
 * ours: the client's own idle timeout ends a stalled one.
 */
export const FORWARD_TIMEOUT_MS = 5 * 60_000;

/** The node to forward to, when the error says one serves the user and the request can go. */
export function forwardTarget(err: unknown, req: SyncRequest | undefined): ForwardTarget | null {
  if (!(err instanceof PlacementError) || !err.forwardTo) return null;
  const source = req?.forwardable;
  if (!source || req.forwardedBy !== undefined) return null;
  // A body this node began to read can no longer be passed on whole.
  return source.body !== undefined || !req.body.locked ? err.forwardTo : null;
}

/**
 * Sends the request to `target`'s base and returns its answer as it arrives; `503` (the
 * client retries) if the owner cannot be reached or does not begin to answer in time.
 */
export async function forwardCall(
  req: SyncRequest,
  target: ForwardTarget,
  selfId: string,
  log: Logger,
  timeoutMs = FORWARD_TIMEOUT_MS,
): Promise<Response> {
  const source = req.forwardable;
  if (!source) return errorResponse(409);
  const headers = new Headers({ [FORWARDED_HEADER]: selfId });
  for (const name of REQUEST_HEADERS) {
    const value = source.headers.get(name);
    if (value !== null) headers.set(name, value);
  }
  const url = new URL(source.path.replace(/^\/+/, ""), target.publicUrl);
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  try {
    const answer = await fetch(url, {
      method: source.method,
      headers,
      body: source.body === undefined ? req.body : source.body,
      // Streams the body as it comes (Bun and Deno); without it fetch would refuse a stream.
      duplex: "half",
      signal: abort.signal,
      redirect: "manual",
    } as RequestInit);
    const kept = new Headers();
    for (const name of RESPONSE_HEADERS) {
      const value = answer.headers.get(name);
      if (value !== null) kept.set(name, value);
    }
    return new Response(answer.body, { status: answer.status, headers: kept });
  } catch (err) {
    log.warn("forwarding to the user's node failed", {
      to: target.nodeId,
      // Not the query: a legacy GET carries the host key in it.
      url: url.origin + url.pathname,
      error: String(err),
    });
    return errorResponse(503);
  } finally {
    clearTimeout(timer);
  }
}
