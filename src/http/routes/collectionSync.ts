/**
 * /sync/<method>: login, meta, full upload/download and the normal-sync steps. Each handler
 * decodes, calls the protocol step (through the executor), and encodes; status mapping and the
 * per-request log line live in `handleSync`.
 */

import { mkdirSync } from "node:fs";
import { Elysia } from "elysia";
import type { SyncUser } from "../../identity/service.ts";
import { consumeTempFile, StreamTooLarge, writeStreamToFile } from "../../platform/files.ts";
import { tempPathBeside, userPaths } from "../../storage/paths.ts";
import { UPLOAD_TOO_LARGE } from "../../sync/collection/upload.ts";
import { badRequest, SyncError } from "../../sync/errors.ts";
import { clientIp } from "../clientIp.ts";
import type { AppDeps } from "../deps.ts";
import { errorResponse, statusFor } from "../status.ts";
import { decodeSyncRequest, readJsonBody, readTextBody, type SyncRequest } from "../syncRequest.ts";
import { jsonResponse, streamResponse, textResponse } from "../syncResponse.ts";

export const NORMAL_SYNC_METHODS = new Set([
  "start",
  "applyGraves",
  "applyChanges",
  "chunk",
  "applyChunk",
  "sanityCheck2",
  "finish",
  "abort",
]);

interface Call {
  deps: AppDeps;
  req: SyncRequest;
  ip: string;
  /** Set once the host key is resolved, for the log line. */
  user?: SyncUser;
}

type Handler = (call: Call) => Promise<Response>;

/** JSON bodies are small; the cap guards against decompression bombs. */
const maxJsonBytes = (deps: AppDeps) => deps.config.maxUncompressedBytes;

const login: Handler = async ({ deps, req, ip }) => {
  const body = (await readJsonBody(req, 64 * 1024)) as { u?: unknown; p?: unknown } | null;
  if (typeof body?.u !== "string" || typeof body.p !== "string")
    throw badRequest("hostKey needs u and p");
  const key = await deps.identity.login(body.u, body.p, req.clientVersion || null, ip);
  return jsonResponse({ key }, req.legacy);
};

const meta: Handler = async (call) => {
  const body = (await readJsonBody(call.req, maxJsonBytes(call.deps))) as {
    v?: unknown;
    cv?: unknown;
  } | null;
  if (typeof body?.v !== "number") throw badRequest("meta needs v");
  const user = authenticate(call);
  const cv = typeof body.cv === "string" ? body.cv : call.req.clientVersion;
  const result = await call.deps.executor.run({ kind: "meta", user, req: { v: body.v, cv } });
  return jsonResponse(result, call.req.legacy);
};

const upload: Handler = async (call) => {
  const user = authenticate(call);
  const paths = userPaths(call.deps.config.dataDir, user.uuid);
  mkdirSync(paths.dir, { recursive: true });
  const incomingPath = tempPathBeside(paths.collection, ".incoming");
  try {
    await writeStreamToFile(call.req.body, incomingPath, call.deps.config.maxUncompressedBytes);
  } catch (err) {
    if (err instanceof StreamTooLarge) return textResponse(UPLOAD_TOO_LARGE, call.req.legacy);
    throw err;
  }
  const outcome = await call.deps.executor.run({
    kind: "upload",
    user,
    input: { incomingPath, compression: call.req.compression },
  });
  call.deps.log.info("full upload", {
    uuid: user.uuid,
    reply: outcome.reply,
    detail: outcome.detail,
  });
  return textResponse(outcome.reply, call.req.legacy);
};

const download: Handler = async (call) => {
  await readJsonBody(call.req, 64 * 1024);
  const user = authenticate(call);
  const outcome = await call.deps.executor.run({
    kind: "download",
    user,
    compress: !call.req.legacy,
  });
  return streamResponse(consumeTempFile(outcome.path), outcome.originalSize, call.req.legacy);
};

const normalSync =
  (method: string): Handler =>
  async (call) => {
    // Parsed in the worker: legacy JSON carries 64-bit ids that JSON.parse would round.
    const payload = await readTextBody(call.req, maxJsonBytes(call.deps));
    const user = authenticate(call);
    const result = await call.deps.executor.run({
      kind: "normalSync",
      user,
      method,
      skey: call.req.skey,
      payload,
    });
    return textResponse(result.json, call.req.legacy);
  };

const HANDLERS: Record<string, Handler> = {
  hostKey: login,
  meta,
  upload,
  download,
  ...Object.fromEntries([...NORMAL_SYNC_METHODS].map((m) => [m, normalSync(m)])),
};

function authenticate(call: Call): SyncUser & { uuid: string } {
  call.user = call.deps.identity.authenticate(call.req.hostKey);
  return call.user;
}

export async function handleSync(
  deps: AppDeps,
  method: string,
  request: Request,
  ip: string,
): Promise<Response> {
  const started = performance.now();
  const call: Partial<Call> & { deps: AppDeps; ip: string } = { deps, ip };
  let response: Response;
  let error: unknown;
  try {
    const handler = Object.hasOwn(HANDLERS, method) ? HANDLERS[method] : undefined;
    if (!handler) throw new SyncError("notFound", `unknown method ${method}`);
    call.req = await decodeSyncRequest(request, deps.config.maxPayloadMegs * 1024 * 1024);
    response = await handler(call as Call);
  } catch (err) {
    error = err;
    response = errorResponse(statusFor(err));
  }
  logCall(call, method, response, error, started);
  return response;
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
  if (response.status >= 500) call.deps.log.error("sync request failed", fields);
  else if (response.status >= 400) call.deps.log.warn("sync request refused", fields);
  else call.deps.log.info("sync", fields);
}

export function collectionSyncRoutes(deps: AppDeps) {
  return new Elysia({ name: "collection-sync" }).post(
    "/sync/:method",
    ({ params, request, server }) =>
      handleSync(
        deps,
        params.method,
        request,
        clientIp(request, server?.requestIP(request)?.address, deps.config.ipHeader),
      ),
    { parse: "none" },
  );
}
