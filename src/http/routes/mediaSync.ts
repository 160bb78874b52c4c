/**
 * /msync/<method>: media sync (docs/protocol.md#media). JSON answers are wrapped as `{"data": …,
 * "err": ""}`; `downloadFiles` answers a raw zip. Request bodies are checked here, the work runs in
 * the user's worker (src/sync/media/). Also the old `GET /msync/begin?k=&v=` form.
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { Elysia } from "elysia";
import { consumeTempFile, readSmallOrToFile, StreamTooLarge } from "../../platform/files.ts";
import { clientAddress } from "../../platform/serve.ts";
import { mediaTempPath } from "../../storage/media/mediaStore.ts";
import { userPaths } from "../../storage/paths.ts";
import { badRequest } from "../../sync/errors.ts";
import { IN_PLACE_MAX_BYTES, MAX_FILES_PER_BATCH } from "../../sync/media/limits.ts";
import type { StagedMediaUpload } from "../../sync/media/upload.ts";
import { SYNC_VERSION_10_V2_TIMEZONE } from "../../sync/version.ts";
import { clientIp } from "../clientIp.ts";
import type { AppDeps } from "../deps.ts";
import {
  authenticate,
  type Call,
  checkTemporarySpace,
  dispatchPost,
  type Handler,
  runCall,
} from "../syncCall.ts";
import { readJsonBody, type SyncRequest } from "../syncRequest.ts";
import { jsonResponse, streamResponse } from "../syncResponse.ts";

/**
 * Media JSON bodies are tiny (25 names at most); anything bigger is not a client. Every handler
 * checks the host key before reading the body.
 */
const MAX_MEDIA_JSON_BYTES = 1024 * 1024;

const envelope = (data: unknown, legacy: boolean) => jsonResponse({ data, err: "" }, legacy);

async function jsonObject(call: Call): Promise<Record<string, unknown>> {
  const body = await readJsonBody(call.req, MAX_MEDIA_JSON_BYTES);
  if (typeof body !== "object" || body === null || Array.isArray(body))
    throw badRequest("expected a JSON object");
  return body as Record<string, unknown>;
}

function integerField(body: Record<string, unknown>, key: string, min: number): number {
  const value = body[key];
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min) {
    throw badRequest(`${key} must be an integer >= ${min}`);
  }
  return value;
}

const begin: Handler = async (call) => {
  const user = await authenticate(call);
  const body = await jsonObject(call);
  // Legacy clients send their version as the multipart field `v` rather than in the JSON.
  const fromForm =
    call.req.multipart && call.req.clientVersion !== "" ? call.req.clientVersion : null;
  const version = fromForm ?? (typeof body.v === "string" ? body.v : "");
  if (version === "") throw badRequest("msync/begin without a client version");
  const { usn } = await call.deps.executor.run({ kind: "media", user, op: { method: "begin" } });
  // No media session exists any more; legacy clients authenticate later requests with `sk`.
  return envelope({ usn, sk: call.req.hostKey }, call.req.legacy);
};

const mediaChanges: Handler = async (call) => {
  const user = await authenticate(call);
  const body = await jsonObject(call);
  const lastUsn = integerField(body, "lastUsn", Number.MIN_SAFE_INTEGER);
  const changes = await call.deps.executor.run({
    kind: "media",
    user,
    op: { method: "mediaChanges", lastUsn },
  });
  return envelope(changes, call.req.legacy);
};

const uploadChanges: Handler = async (call) => {
  const user = await authenticate(call);
  const { executor, config } = call.deps;
  const limits = { maxUncompressedBytes: config.maxUncompressedBytes };
  const paths = userPaths(config.dataDir, user.uuid);
  mkdirSync(paths.dir, { recursive: true });
  checkTemporarySpace(call, paths.dir);
  const incomingPath = mediaTempPath(paths, ".upload");
  const staging = {
    zipPath: mediaTempPath(paths, ".upload.zip"),
    staging: mediaTempPath(paths, ".staging"),
  };
  let staged: StagedMediaUpload;
  try {
    let received: Awaited<ReturnType<typeof readSmallOrToFile>>;
    try {
      received = await readSmallOrToFile(
        call.req.body,
        IN_PLACE_MAX_BYTES,
        incomingPath,
        config.maxUncompressedBytes,
      );
    } catch (err) {
      if (err instanceof StreamTooLarge)
        throw badRequest(`media upload body: ${err.message}`, { cause: err });
      throw err;
    }
    if ("bytes" in received) {
      // The usual batch of a few small files: done in place on the user's worker.
      const compression = call.req.compression;
      const op = {
        method: "uploadSmallChanges" as const,
        body: received.bytes,
        compression,
        limits,
      };
      const result = await executor.run({ kind: "media", user, op });
      if (result) return envelope(result, call.req.legacy);
      writeFileSync(incomingPath, received.bytes, { flag: "wx" });
    }
    // Large: a task worker decompresses, checks and stages it; the user's worker then only
    // records the changes and moves the staged files in.
    staged = await executor.runTask({
      kind: "stageMediaUpload",
      input: { incomingPath, compression: call.req.compression },
      paths: staging,
      limits,
    });
  } catch (err) {
    // The task removes what it made; this covers a task worker that died first.
    rmSync(staging.staging, { recursive: true, force: true });
    throw err;
  } finally {
    rmSync(incomingPath, { force: true });
    rmSync(staging.zipPath, { force: true });
  }
  try {
    const result = await executor.run({
      kind: "media",
      user,
      op: { method: "uploadChanges", staged },
    });
    return envelope(result, call.req.legacy);
  } finally {
    // Gone already when applied; removed here if the job never ran.
    rmSync(staged.staging, { recursive: true, force: true });
  }
};

const downloadFiles: Handler = async (call) => {
  const user = await authenticate(call);
  const body = await jsonObject(call);
  const files = body.files;
  if (!Array.isArray(files) || !files.every((f) => typeof f === "string")) {
    throw badRequest("downloadFiles needs files: a list of names");
  }
  if (files.length > MAX_FILES_PER_BATCH) {
    throw badRequest(
      `${files.length} media files requested, at most ${MAX_FILES_PER_BATCH} allowed`,
    );
  }
  const outcome = await call.deps.executor.run({
    kind: "media",
    user,
    op: { method: "downloadFiles", files: files as string[], compress: !call.req.legacy },
  });
  const zip =
    "bytes" in outcome
      ? new Blob([outcome.bytes as Uint8Array<ArrayBuffer>]).stream()
      : consumeTempFile(outcome.path);
  return streamResponse(zip, outcome.originalSize, call.req.legacy);
};

const mediaSanity: Handler = async (call) => {
  const user = await authenticate(call);
  const body = await jsonObject(call);
  const local = integerField(body, "local", 0);
  const result = await call.deps.executor.run({
    kind: "media",
    user,
    op: { method: "mediaSanity", local },
  });
  return envelope(result, call.req.legacy);
};

const HANDLERS: Record<string, Handler> = {
  begin,
  mediaChanges,
  uploadChanges,
  downloadFiles,
  mediaSanity,
};

export function handleMediaSync(
  deps: AppDeps,
  method: string,
  request: Request,
  ip: string,
): Promise<Response> {
  return dispatchPost(deps, HANDLERS, method, `msync/${method}`, request, ip);
}

/** `GET /msync/begin?k=<hkey>&v=<client version>`: a legacy `begin`, answered uncompressed. */
export function handleMediaBeginGet(
  deps: AppDeps,
  request: Request,
  ip: string,
): Promise<Response> {
  return runCall(deps, "msync/begin", ip, begin, async () => {
    const query = new URL(request.url).searchParams;
    const hostKey = query.get("k");
    const clientVersion = query.get("v");
    if (hostKey === null || clientVersion === null)
      throw badRequest("GET msync/begin needs k and v");
    return queryRequest(hostKey, clientVersion);
  });
}

function queryRequest(hostKey: string, clientVersion: string): SyncRequest {
  return {
    version: SYNC_VERSION_10_V2_TIMEZONE,
    legacy: true,
    multipart: false,
    hostKey,
    skey: "",
    clientVersion,
    body: new Blob([JSON.stringify({ v: clientVersion })]).stream(),
    compression: "none",
  };
}

export function mediaSyncRoutes(deps: AppDeps) {
  const ip = (request: Request, address: string | undefined) =>
    clientIp(request, address, deps.config.ipHeader);
  return new Elysia({ name: "media-sync" })
    .get("/msync/begin", ({ request, server }) =>
      handleMediaBeginGet(deps, request, ip(request, clientAddress(request, server))),
    )
    .post(
      "/msync/:method",
      ({ params, request, server }) =>
        handleMediaSync(deps, params.method, request, ip(request, clientAddress(request, server))),
      { parse: "none" },
    );
}
