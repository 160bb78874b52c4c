/**
 * What every sync endpoint (`/sync/*`, `/msync/*`) shares, as an Elysia plugin the route
 * modules use:
 * - `syncCall`, derived per request: what its log line and metrics need (method, client
 *   address, the decoded request, the user, when it started, how it failed);
 * - the `sync` macro (`{ sync: "meta" }` on a route): the framework leaves the body alone
 *   (uploads stream to disk, zstd and multipart are ours to decode), the request is decoded
 *   (syncRequest.ts) and its host key resolved to the user before any body is read, so nobody
 *   without a session makes the server unpack anything. `syncLogin` is the same without the
 *   host key, for `hostKey` itself;
 * - after the handler, the answer is noted (a streamed body counted as it goes out); after the
 *   response is sent, one log line (user, client version, method, status, bytes, time) and the
 *   metrics.
 * Errors are answered by the app's one onError (app.ts), statuses from status.ts.
 */

import type { SyncUser } from "../identity/service.ts";
import { Elysia } from "../platform/elysia.ts";
import { collectSoon } from "../platform/memory.ts";
import { clientAddress } from "../platform/serve.ts";
import type { NormalSyncMethod } from "../sync/collection/normalSync.ts";
import { SyncError } from "../sync/errors.ts";
import { clientIp } from "./clientIp.ts";
import type { AppDeps } from "./deps.ts";
import { forwardCall, forwardTarget } from "./forward.ts";
import { errorResponseFor } from "./status.ts";
import { decodeSyncRequest, type SyncRequest } from "./syncRequest.ts";

export type CollectionMethod = "hostKey" | "meta" | "upload" | "download" | NormalSyncMethod;
export type MediaMethod =
  | "begin"
  | "mediaChanges"
  | "uploadChanges"
  | "downloadFiles"
  | "mediaSanity";
/** A sync method as logged and counted: media's under `msync/`. */
export type SyncMethod = CollectionMethod | `msync/${MediaMethod}`;

/** One sync request, from routing to its log line. */
export class SyncCall {
  readonly started = performance.now();
  /** As logged: the route's method, or the unknown one asked for. */
  method = "";
  /** As counted: a fixed set of values, so no client can grow the metrics' series. */
  label: SyncMethod | "unknown" = "unknown";
  req?: SyncRequest;
  user?: SyncUser;
  /** Scale-out: this node admitted the request for the user (left once it is answered). */
  placed = false;
  /** Scale-out: the node this request was passed on to (forward.ts), for the log line. */
  forwardedTo?: string;
  /** A `chunk` answered from the reply the user's worker made ahead (`answerAhead`). */
  answeredAhead?: boolean;
  /** Set when the request failed: the typed error (app.ts onError). */
  error?: unknown;
  /**
   * The answer, noted before it is sent (the server may rewrite a sent Response's headers):
   * its status, its body's length (null while unknown: a stream), and for the log what it
   * carried (`anki-original-size`, else the length).
   */
  status = 0;
  bodyBytes: number | null = 0;
  bytesOut?: number;

  constructor(readonly ip: string) {}

  answered(response: Response): void {
    const length = response.headers.get("content-length");
    this.status = response.status;
    this.bodyBytes = length !== null ? Number(length) : response.body === null ? 0 : null;
    this.bytesOut = Number(response.headers.get("anki-original-size") ?? length ?? 0) || undefined;
  }

  /** Answers the failed request with its error's status. */
  fail(error: unknown): Response {
    const response = errorResponseFor(error);
    this.error = error;
    this.answered(response);
    // What an answer carried: an error's status text is not counted.
    this.bytesOut = undefined;
    return response;
  }

  /** `/sync/<name>` or `/msync/<name>` with no such method: 404, before anything is read. */
  unknownMethod(name: string): never {
    this.method = name;
    throw new SyncError("notFound", `unknown method ${name}`);
  }
}

/** Answers from this size on are followed by a collection (platform/memory.ts collectSoon). */
const LARGE_ANSWER_BYTES = 1024 * 1024;

export function syncEndpoint(deps: AppDeps) {
  const { config, identity, metrics, placement } = deps;
  const maxLegacyBodyBytes = config.maxPayloadMegs * 1024 * 1024;

  async function decode(call: SyncCall, method: SyncMethod, request: Request) {
    call.method = method;
    call.label = method;
    const req = await decodeSyncRequest(request, maxLegacyBodyBytes, placement !== undefined);
    if (metrics) {
      req.body = countBytes(req.body, (n) => metrics.received(method, n));
      req.whole = undefined;
    }
    call.req = req;
    return req;
  }

  return new Elysia()
    .derive({ as: "scoped" }, ({ request, server }) => ({
      syncCall: new SyncCall(
        clientIp(request, () => clientAddress(request, server), config.ipHeader),
      ),
    }))
    .macro({
      sync: (method: SyncMethod) => ({
        async resolve({ syncCall, request }) {
          const call = derived(syncCall);
          const req = await decode(call, method, request);
          call.user = await identity.authenticate(req.hostKey);
          if (placement) await admit(placement, call.user, method, req);
          call.placed = placement !== undefined;
          return { req, user: call.user };
        },
      }),
      syncLogin: {
        async resolve({ syncCall, request }) {
          return { req: await decode(derived(syncCall), "hostKey", request) };
        },
      },
    })
    .onAfterHandle({ as: "scoped" }, ({ responseValue, syncCall }) => {
      const call = derived(syncCall);
      if (!(responseValue instanceof Response)) return;
      call.answered(responseValue);
      const counted = countedResponse(deps, call, responseValue);
      return counted === responseValue ? undefined : counted;
    })
    .onAfterResponse({ as: "scoped" }, ({ syncCall }) => {
      const call = derived(syncCall);
      if (call.placed && call.user) placement?.leave(call.user.uuid);
      logCall(deps, call);
      // A large answer (a media zip, a collection) leaves megabytes of buffers behind.
      if ((call.bytesOut ?? 0) >= LARGE_ANSWER_BYTES) collectSoon();
      if (!metrics) return;
      metrics.observeCall(call.label, call.status, (performance.now() - call.started) / 1000);
      if (call.bodyBytes !== null) metrics.sent(call.label, call.bodyBytes);
    });
}

/**
 * A sync route's options: the framework leaves the body alone (`parse: "none"`: it is streamed
 * or decoded by us), and the `sync` macro decodes the request and authenticates it.
 */
export function syncRoute<M extends SyncMethod>(method: M) {
  return { parse: "none" as const, sync: method };
}

/** `hostKey`'s options: as syncRoute, without a host key to check. */
export const loginRoute = { parse: "none" as const, syncLogin: true } as const;

/** Any other `/sync/<name>` or `/msync/<name>`: answered 404 without reading anything. */
export const unknownRoute = { parse: "none" as const } as const;

/**
 * Scale-out: does this node serve the user? (`meta` may be redirected to the user's node;
 * requests of a user another node serves may be forwarded there: `failOrForward`.)
 */
async function admit(
  placement: NonNullable<AppDeps["placement"]>,
  user: SyncUser,
  method: SyncMethod,
  req: SyncRequest,
): Promise<void> {
  const { version, addressedBase = "", skey: sessionKey, forwardedBy } = req;
  if (method !== "meta") return placement.admit(user.uuid, forwardedBy);
  await placement.admitMeta(user.uuid, { version, addressedBase, sessionKey, forwardedBy });
}

/**
 * The answer to a sync request that failed: its error's status, unless placement names the
 * live node that serves the user and the request can still be passed on whole; then that
 * node's answer, streamed back (forward.ts).
 */
export async function failOrForward(
  deps: AppDeps,
  call: SyncCall,
  error: unknown,
): Promise<Response> {
  const target = forwardTarget(error, call.req);
  if (!target || !call.req || !call.user) return call.fail(error);
  call.forwardedTo = target.nodeId;
  const response = await forwardCall(call.req, target, deps.placement?.nodeId ?? "", deps.log);
  call.answered(response);
  return countedResponse(deps, call, response);
}

/** A body of unknown length (a download streamed from disk) is counted as it goes out. */
function countedResponse(deps: AppDeps, call: SyncCall, response: Response): Response {
  const { metrics } = deps;
  if (!metrics || call.bodyBytes !== null || response.body === null) return response;
  return new Response(
    countBytes(response.body, (n) => metrics.sent(call.label, n)),
    { status: response.status, statusText: response.statusText, headers: response.headers },
  );
}

/** The plugin's scoped derive runs for every route it serves; Elysia types it as optional. */
export function derived(call: SyncCall | undefined): SyncCall {
  if (!call) throw new Error("sync route outside syncEndpoint");
  return call;
}

function logCall(deps: AppDeps, call: SyncCall): void {
  const { error, status } = call;
  const fields = {
    method: call.method,
    status,
    user: call.user?.name,
    uuid: call.user?.uuid,
    client: call.req?.clientVersion || undefined,
    v: call.req?.version,
    ip: call.ip,
    ms: Math.round(performance.now() - call.started),
    bytesOut: call.bytesOut,
    error: error instanceof Error ? error.message : undefined,
    forwardedTo: call.forwardedTo,
    ahead: call.answeredAhead,
  };
  if (error instanceof SyncError && error.kind === "diskFull") deps.log.error("disk full", fields);
  else if (status >= 500) deps.log.error("sync request failed", fields);
  else if (status >= 400) deps.log.warn("sync request refused", fields);
  else if (call.forwardedTo) deps.log.info("sync forwarded to the user's node", fields);
  else deps.log.info("sync", fields);
}

/** The same stream, reporting the size of each chunk as it passes. */
function countBytes(
  stream: ReadableStream<Uint8Array>,
  onBytes: (n: number) => void,
): ReadableStream<Uint8Array> {
  return stream.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        onBytes(chunk.byteLength);
        controller.enqueue(chunk);
      },
    }),
  );
}
