/**
 * What every sync endpoint (`/sync/*`, `/msync/*`) shares: the per-request context, host-key
 * authentication, and `runCall`, which maps any thrown error to its status (status.ts) and logs
 * one line per request (user, client version, method, status, bytes, time).
 */
import { asDatabaseError, IdentityError } from "../identity/errors.ts";
import type { SyncUser } from "../identity/service.ts";
import { temporaryBytes } from "../storage/temporaries.ts";
import { conflict, SyncError } from "../sync/errors.ts";
import { asStorageError } from "../sync/storageErrors.ts";
import type { AppDeps } from "./deps.ts";
import { errorResponseFor } from "./status.ts";
import { decodeSyncRequest, type SyncRequest } from "./syncRequest.ts";

export interface Call {
  deps: AppDeps;
  req: SyncRequest;
  ip: string;
  /** Set once the host key is resolved, for the log line. */
  user?: SyncUser;
  /** Scale-out: this node admitted the request for the user (left when it ends). */
  placed?: boolean;
}

export type Handler = (call: Call) => Promise<Response>;

/**
 * Resolves the request's host key (403 if unknown) and remembers the user for the log. With
 * scale-out, also checks this node serves the user (placement/: `meta` may be redirected).
 */
export async function authenticate(call: Call, meta = false): Promise<SyncUser> {
  call.user = await call.deps.identity.authenticate(call.req.hostKey);
  const { placement } = call.deps;
  if (placement && meta) {
    const { version, addressedBase = "", skey: sessionKey } = call.req;
    await placement.admitMeta(call.user.uuid, { version, addressedBase, sessionKey });
  } else await placement?.admit(call.user.uuid);
  call.placed = placement !== undefined;
  return call.user;
}

/**
 * Room for one more upload of this user: refused with 409 (the client tries again later) while
 * the user's temporaries already take ANKISYNCD_MAX_TEMP_MEGS, so a retrying client cannot
 * fill the disk.
 */
export function checkTemporarySpace(call: Call, userDir: string): void {
  const used = temporaryBytes(userDir);
  if (used >= call.deps.config.maxTempBytes) {
    throw conflict(
      `temporary files in ${userDir} take ${used} bytes (ANKISYNCD_MAX_TEMP_MEGS); try again later`,
    );
  }
}

/** Decodes the request and runs `handler` (404 if there is none); never throws. */
export async function runCall(
  deps: AppDeps,
  method: string,
  ip: string,
  handler: Handler | undefined,
  decode: () => Promise<SyncRequest>,
): Promise<Response> {
  const started = performance.now();
  const call: Partial<Call> & { deps: AppDeps; ip: string } = { deps, ip };
  const metrics = deps.metrics;
  const label = handler ? method : "unknown";
  let response: Response;
  let error: unknown;
  try {
    if (!handler) throw new SyncError("notFound", `unknown method ${method}`);
    call.req = await decode();
    if (metrics) call.req.body = countBytes(call.req.body, (n) => metrics.received(label, n));
    response = await handler(call as Call);
  } catch (err) {
    // File errors name their path; one without is session.db's, the main thread's database.
    const shared = asDatabaseError(err);
    error =
      shared instanceof IdentityError ? shared : asStorageError(err, deps.config.sessionDbPath);
    response = errorResponseFor(error);
  }
  if (call.placed && call.user) deps.placement?.leave(call.user.uuid);
  logCall(call, method, response, error, started);
  if (!metrics) return response;
  metrics.observeCall(label, response.status, (performance.now() - started) / 1000);
  return countResponseBytes(response, (n) => metrics.sent(label, n));
}

/** Runs the handler that `handlers` names for `method` on a POST in either framing. */
export function dispatchPost(
  deps: AppDeps,
  handlers: Record<string, Handler>,
  method: string,
  label: string,
  request: Request,
  ip: string,
): Promise<Response> {
  const handler = Object.hasOwn(handlers, method) ? handlers[method] : undefined;
  return runCall(deps, label, ip, handler, () =>
    decodeSyncRequest(request, deps.config.maxPayloadMegs * 1024 * 1024),
  );
}

function logCall(
  call: Partial<Call> & { deps: AppDeps; ip: string },
  method: string,
  response: Response,
  error: unknown,
  started: number,
): void {
  const fields = {
    method,
    status: response.status,
    user: call.user?.name,
    uuid: call.user?.uuid,
    client: call.req?.clientVersion || undefined,
    v: call.req?.version,
    ip: call.ip,
    ms: Math.round(performance.now() - started),
    bytesOut:
      Number(
        response.headers.get("anki-original-size") ?? response.headers.get("content-length") ?? 0,
      ) || undefined,
    error: error instanceof Error ? error.message : undefined,
  };
  if (error instanceof SyncError && error.kind === "diskFull")
    call.deps.log.error("disk full", fields);
  else if (response.status >= 500) call.deps.log.error("sync request failed", fields);
  else if (response.status >= 400) call.deps.log.warn("sync request refused", fields);
  else call.deps.log.info("sync", fields);
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

/** Counts a response's body: from its length when known, else as it streams out. */
function countResponseBytes(response: Response, onBytes: (n: number) => void): Response {
  const length = response.headers.get("content-length");
  if (length !== null || response.body === null) {
    onBytes(Number(length ?? 0));
    return response;
  }
  return new Response(countBytes(response.body, onBytes), {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  });
}
