/**
 * /msync/<method>: media sync (docs/protocol.md#media), one route each. JSON answers are wrapped as
 * `{"data": …, "err": ""}`; `downloadFiles` answers a raw zip. Request bodies are checked here,
 * the work runs in the user's worker (src/sync/media/), uploads through the upload pipeline
 * (executor/receiveUpload.ts). Also the old `GET /msync/begin?k=&v=` form. Decoding,
 * authentication, the log line and metrics come from the `sync` macro (../syncEndpoint.ts).
 */

import { compressStream } from "../../compression.ts";
import { receiveMediaUpload } from "../../executor/receiveUpload.ts";
import type { SyncUser } from "../../identity/service.ts";
import { Elysia } from "../../platform/elysia.ts";
import { consumeTempFile } from "../../platform/files.ts";
import { badRequest } from "../../sync/errors.ts";
import { MAX_FILES_PER_BATCH } from "../../sync/media/limits.ts";
import { type AppDeps, uploadSite } from "../deps.ts";
import { syncEndpoint, syncRoute, unknownRoute } from "../syncEndpoint.ts";
import { readJsonBody, type SyncRequest } from "../syncRequest.ts";
import { encodedResponse, jsonResponse, streamResponse } from "../syncResponse.ts";

/**
 * Media JSON bodies are tiny (25 names at most); anything bigger is not a client. Every route
 * checks the host key before reading the body.
 */
const MAX_MEDIA_JSON_BYTES = 1024 * 1024;

const envelope = (data: unknown, legacy: boolean) => jsonResponse({ data, err: "" }, legacy);

async function jsonObject(req: SyncRequest): Promise<Record<string, unknown>> {
  const body = await readJsonBody(req, MAX_MEDIA_JSON_BYTES);
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

async function begin(deps: AppDeps, req: SyncRequest, user: SyncUser): Promise<Response> {
  const body = await jsonObject(req);
  // Legacy clients send their version as the multipart field `v` rather than in the JSON.
  const fromForm = req.multipart && req.clientVersion !== "" ? req.clientVersion : null;
  const version = fromForm ?? (typeof body.v === "string" ? body.v : "");
  if (version === "") throw badRequest("msync/begin without a client version");
  const { usn } = await deps.executor.run({ kind: "media", user, op: { method: "begin" } });
  // No media session exists any more; legacy clients authenticate later requests with `sk`.
  return envelope({ usn, sk: req.hostKey }, req.legacy);
}

async function mediaChanges(deps: AppDeps, req: SyncRequest, user: SyncUser): Promise<Response> {
  const lastUsn = integerField(await jsonObject(req), "lastUsn", Number.MIN_SAFE_INTEGER);
  const changes = await deps.executor.run({
    kind: "media",
    user,
    op: { method: "mediaChanges", lastUsn },
  });
  return envelope(changes, req.legacy);
}

async function uploadChanges(deps: AppDeps, req: SyncRequest, user: SyncUser): Promise<Response> {
  const result = await receiveMediaUpload(uploadSite(deps), {
    user,
    body: req.body,
    compression: req.compression,
  });
  return envelope(result, req.legacy);
}

async function downloadFiles(deps: AppDeps, req: SyncRequest, user: SyncUser): Promise<Response> {
  const files = (await jsonObject(req)).files;
  if (!Array.isArray(files) || !files.every((f) => typeof f === "string")) {
    throw badRequest("downloadFiles needs files: a list of names");
  }
  if (files.length > MAX_FILES_PER_BATCH) {
    throw badRequest(
      `${files.length} media files requested, at most ${MAX_FILES_PER_BATCH} allowed`,
    );
  }
  const outcome = await deps.executor.run({
    kind: "media",
    user,
    op: { method: "downloadFiles", files: files as string[], compress: !req.legacy },
  });
  if ("bytes" in outcome) return encodedResponse(outcome.bytes, outcome.originalSize, req.legacy);
  // A large zip comes as a file: compressed while it streams, like a full download, but always
  // at the fast level: media is mostly compressed already, where level 3 saves no bytes.
  const file = consumeTempFile(outcome.path);
  const body = req.legacy ? file : compressStream(file, "zstd", "fast");
  return streamResponse(body, outcome.originalSize, req.legacy);
}

async function mediaSanity(deps: AppDeps, req: SyncRequest, user: SyncUser): Promise<Response> {
  const local = integerField(await jsonObject(req), "local", 0);
  const result = await deps.executor.run({
    kind: "media",
    user,
    op: { method: "mediaSanity", local },
  });
  return envelope(result, req.legacy);
}

export function mediaSyncRoutes(deps: AppDeps) {
  return (
    new Elysia({ name: "media-sync" })
      .use(syncEndpoint(deps))
      // The old form: `GET /msync/begin?k=<hkey>&v=<client version>`, answered uncompressed.
      .get("/msync/begin", ({ req, user }) => begin(deps, req, user), syncRoute("msync/begin"))
      .post("/msync/begin", ({ req, user }) => begin(deps, req, user), syncRoute("msync/begin"))
      .post(
        "/msync/mediaChanges",
        ({ req, user }) => mediaChanges(deps, req, user),
        syncRoute("msync/mediaChanges"),
      )
      .post(
        "/msync/uploadChanges",
        ({ req, user }) => uploadChanges(deps, req, user),
        syncRoute("msync/uploadChanges"),
      )
      .post(
        "/msync/downloadFiles",
        ({ req, user }) => downloadFiles(deps, req, user),
        syncRoute("msync/downloadFiles"),
      )
      .post(
        "/msync/mediaSanity",
        ({ req, user }) => mediaSanity(deps, req, user),
        syncRoute("msync/mediaSanity"),
      )
      .post(
        "/msync/:method",
        ({ params, syncCall }) => syncCall.unknownMethod(`msync/${params.method}`),
        unknownRoute,
      )
  );
}
