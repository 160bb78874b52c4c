/**
 * /sync/<method>: login, meta, full upload/download and the normal-sync steps. Each handler
 * decodes, calls the protocol step (through the executor), and encodes; status mapping and the
 * per-request log line live in `runCall` (../syncCall.ts, shared with media sync).
 */

import { mkdirSync, rmSync } from "node:fs";
import { Elysia } from "elysia";
import { compressStream } from "../../compression.ts";
import type { SyncUser } from "../../identity/service.ts";
import { consumeTempFile, StreamTooLarge, writeStreamToFile } from "../../platform/files.ts";
import { clientAddress } from "../../platform/serve.ts";
import { tempPathBeside, userPaths } from "../../storage/paths.ts";
import type { PreparedUpload, UploadOutcome } from "../../sync/collection/upload.ts";
import { UPLOAD_OK, UPLOAD_TOO_LARGE } from "../../sync/collection/uploadReplies.ts";
import { badRequest } from "../../sync/errors.ts";
import { clientIp } from "../clientIp.ts";
import type { AppDeps } from "../deps.ts";
import {
  authenticate,
  type Call,
  checkTemporarySpace,
  dispatchPost,
  type Handler,
} from "../syncCall.ts";
import { readJsonBody, readTextBody } from "../syncRequest.ts";
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

/**
 * Decompressed-body limits, by what each method carries. Every handler but `hostKey` checks the
 * host key before reading its body, so only a logged-in user can make the server unpack
 * anything; these bound what even they can make it hold. Bodies of `meta`, `download`, `chunk`,
 * `sanityCheck2` (a dozen counts), `finish` and `abort` are a few bytes; `start` (legacy clients
 * may send their deletions inline), `applyGraves`, `applyChanges` (note types, decks, config)
 * and `applyChunk` (250 rows, of notes with any field size) get the configured limit.
 */
const LOGIN_BODY_BYTES = 64 * 1024;
const SMALL_BODY_BYTES = 1024 * 1024;
const LARGE_BODY_METHODS = new Set(["start", "applyGraves", "applyChanges", "applyChunk"]);

function maxBodyBytes(deps: AppDeps, method: string): number {
  return LARGE_BODY_METHODS.has(method) ? deps.config.maxUncompressedBytes : SMALL_BODY_BYTES;
}

const login: Handler = async ({ deps, req, ip }) => {
  const body = (await readJsonBody(req, LOGIN_BODY_BYTES)) as { u?: unknown; p?: unknown } | null;
  if (typeof body?.u !== "string" || typeof body.p !== "string")
    throw badRequest("hostKey needs u and p");
  const key = await deps.identity.login(body.u, body.p, req.clientVersion || null, ip);
  return jsonResponse({ key }, req.legacy);
};

const meta: Handler = async (call) => {
  const user = await authenticate(call, true);
  const body = (await readJsonBody(call.req, maxBodyBytes(call.deps, "meta"))) as {
    v?: unknown;
    cv?: unknown;
  } | null;
  if (typeof body?.v !== "number") throw badRequest("meta needs v");
  const cv = typeof body.cv === "string" ? body.cv : call.req.clientVersion;
  const result = await call.deps.executor.run({ kind: "meta", user, req: { v: body.v, cv } });
  return jsonResponse(result, call.req.legacy);
};

const upload: Handler = async (call) => {
  const user = await authenticate(call);
  const outcome = await receiveUpload(call, user);
  if (outcome.reply === UPLOAD_OK) call.deps.identity.recordSync(user);
  call.deps.log.info("full upload", {
    uuid: user.uuid,
    reply: outcome.reply,
    detail: outcome.detail,
  });
  return textResponse(outcome.reply, call.req.legacy);
};

/** Streams the body to disk, prepares it on a task worker, installs it on the user's worker. */
async function receiveUpload(call: Call, user: SyncUser): Promise<UploadOutcome> {
  const { config, executor } = call.deps;
  const paths = userPaths(config.dataDir, user.uuid);
  mkdirSync(paths.dir, { recursive: true });
  checkTemporarySpace(call, paths.dir);
  const incomingPath = tempPathBeside(paths.collection, ".incoming");
  let prepared: PreparedUpload;
  try {
    try {
      await writeStreamToFile(call.req.body, incomingPath, config.maxUncompressedBytes, {
        drainOnError: true,
      });
    } catch (err) {
      if (err instanceof StreamTooLarge) return { reply: UPLOAD_TOO_LARGE, detail: err.message };
      throw err;
    }
    prepared = await executor.runTask({
      kind: "prepareUpload",
      input: {
        incomingPath,
        compression: call.req.compression,
        collectionPath: paths.collection,
        maxUncompressedBytes: config.maxUncompressedBytes,
      },
    });
  } finally {
    // The task removes it; this covers a task worker that died first.
    rmSync(incomingPath, { force: true });
  }
  if (!prepared.ready) return prepared;
  try {
    return await executor.run({ kind: "upload", user, preparedPath: prepared.preparedPath });
  } finally {
    // Gone already when installed; removed here if the install job never ran.
    rmSync(prepared.preparedPath, { force: true });
  }
}

const download: Handler = async (call) => {
  const user = await authenticate(call);
  await readJsonBody(call.req, maxBodyBytes(call.deps, "download"));
  const snapshot = await call.deps.executor.run({ kind: "download", user });
  call.deps.identity.recordSync(user);
  // Compressed while it streams: the user's worker is free as soon as the snapshot exists.
  const file = consumeTempFile(snapshot.path);
  const body = call.req.legacy ? file : compressStream(file, "zstd");
  return streamResponse(body, snapshot.originalSize, call.req.legacy);
};

const normalSync =
  (method: string): Handler =>
  async (call) => {
    const user = await authenticate(call);
    // Parsed in the worker: legacy JSON carries 64-bit ids that JSON.parse would round.
    const payload = await readTextBody(call.req, maxBodyBytes(call.deps, method));
    const result = await call.deps.executor.run({
      kind: "normalSync",
      user,
      method,
      skey: call.req.skey,
      payload,
    });
    if (method === "finish") call.deps.identity.recordSync(user);
    return textResponse(result.json, call.req.legacy);
  };

const HANDLERS: Record<string, Handler> = {
  hostKey: login,
  meta,
  upload,
  download,
  ...Object.fromEntries([...NORMAL_SYNC_METHODS].map((m) => [m, normalSync(m)])),
};

export function handleSync(
  deps: AppDeps,
  method: string,
  request: Request,
  ip: string,
): Promise<Response> {
  return dispatchPost(deps, HANDLERS, method, method, request, ip);
}

/**
 * `curl https://<domain>/sync/hostKey`, the earlier Python server's documented check, gets a
 * JSON answer saying the server is up and that logins are POSTs.
 */
function hostKeyGet(): Response {
  return Response.json(
    {
      ok: false,
      error: "GET is not a login: Anki logs in with POST /sync/hostKey (username and password)",
      server: "ankisyncd",
    },
    { status: 405, headers: { allow: "POST" } },
  );
}

export function collectionSyncRoutes(deps: AppDeps) {
  return new Elysia({ name: "collection-sync" })
    .get("/sync/hostKey", hostKeyGet)
    .post(
      "/sync/:method",
      ({ params, request, server }) =>
        handleSync(
          deps,
          params.method,
          request,
          clientIp(request, clientAddress(request, server), deps.config.ipHeader),
        ),
      { parse: "none" },
    );
}
