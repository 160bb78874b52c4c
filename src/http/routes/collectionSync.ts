/**
 * /sync/<method>: login, meta, full upload/download and the normal-sync steps, one route each.
 * Each handler decodes its body, calls the protocol step (through the executor or the upload
 * pipeline, executor/receiveUpload.ts) and encodes the answer; decoding the framing,
 * authentication, the log line and metrics come from the `sync` macro (../syncEndpoint.ts),
 * error statuses from the app's onError.
 */

import { compressStream } from "../../compression.ts";
import { receiveCollectionUpload } from "../../executor/receiveUpload.ts";
import type { SyncUser } from "../../identity/service.ts";
import { Elysia } from "../../platform/elysia.ts";
import { consumeTempFile } from "../../platform/files.ts";
import { downloadPlan, isReadyPlan } from "../../sync/collection/downloadSchema.ts";
import { NORMAL_SYNC_METHODS, type NormalSyncMethod } from "../../sync/collection/methods.ts";
import { UPLOAD_OK } from "../../sync/collection/uploadReplies.ts";
import { badRequest } from "../../sync/errors.ts";
import { zstdEffortFor } from "../clientIp.ts";
import { type AppDeps, uploadSite } from "../deps.ts";
import {
  derived,
  loginRoute,
  type SyncCall,
  syncEndpoint,
  syncRoute,
  unknownRoute,
} from "../syncEndpoint.ts";
import { readJsonBody, readRawBody, type SyncRequest } from "../syncRequest.ts";
import {
  encodedResponse,
  endingAfter,
  jsonResponse,
  streamResponse,
  textResponse,
} from "../syncResponse.ts";

/**
 * Decompressed-body limits, by what each method carries. Every method but `hostKey` checks the
 * host key before reading its body, so only a logged-in user can make the server unpack
 * anything; these bound what even they can make it hold. Bodies of `meta`, `download`, `chunk`,
 * `sanityCheck2` (a dozen counts), `finish` and `abort` are a few bytes; `start` (legacy clients
 * may send their deletions inline), `applyGraves`, `applyChanges` (note types, decks, config)
 * and `applyChunk` (250 rows, of notes with any field size) get the configured limit.
 */
const LOGIN_BODY_BYTES = 64 * 1024;
const SMALL_BODY_BYTES = 1024 * 1024;
const LARGE_BODY_METHODS: ReadonlySet<NormalSyncMethod> = new Set([
  "start",
  "applyGraves",
  "applyChanges",
  "applyChunk",
]);

async function login(deps: AppDeps, req: SyncRequest, ip: string): Promise<Response> {
  const body = (await readJsonBody(req, LOGIN_BODY_BYTES)) as { u?: unknown; p?: unknown } | null;
  if (typeof body?.u !== "string" || typeof body.p !== "string")
    throw badRequest("hostKey needs u and p");
  const { hostKey, uuid } = await deps.identity.login(
    body.u,
    body.p,
    req.clientVersion || null,
    ip,
  );
  // The client syncs right after logging in: its first request need not wait for a thread start.
  deps.executor.warmUser({ uuid });
  return jsonResponse({ key: hostKey }, req.legacy);
}

async function meta(deps: AppDeps, req: SyncRequest, user: SyncUser): Promise<Response> {
  const body = (await readJsonBody(req, SMALL_BODY_BYTES)) as { v?: unknown; cv?: unknown } | null;
  if (typeof body?.v !== "number") throw badRequest("meta needs v");
  const cv = typeof body.cv === "string" ? body.cv : req.clientVersion;
  const result = await deps.executor.run({ kind: "meta", user, req: { v: body.v, cv } });
  return jsonResponse(result, req.legacy);
}

async function upload(
  deps: AppDeps,
  req: SyncRequest,
  user: SyncUser,
  ip: string,
): Promise<Response> {
  // A current client sends schema 18: as received, it is what its other devices download, and
  // that download is made while the upload is checked. Only from a client with the blob layout
  // our conversion writes (downloadSchema.ts): an older v11 client's file keeps some settings
  // where a current client does not read them, and the usual path converts them into their
  // fields. Compressed as for the uploader (the best guess for where those devices are): level
  // 1 makes it in about the time the upload's check takes, level 3 gives a remote device the
  // fewest bytes.
  const keepForReady =
    deps.readyDownloads !== undefined && isReadyPlan(downloadPlan(req.legacy, req.clientVersion));
  const outcome = await receiveCollectionUpload(
    uploadSite(deps),
    { user, body: req.body, compression: req.compression },
    keepForReady ? zstdEffortFor(ip) : undefined,
  );
  if (outcome.reply === UPLOAD_OK) {
    deps.identity.recordSync(user);
    // The user's other devices download it next; a download of the next few moments waits
    // for the body being made.
    deps.readyDownloads?.afterUpload(user, outcome.ready);
  }
  deps.log.info("full upload", { uuid: user.uuid, reply: outcome.reply, detail: outcome.detail });
  return textResponse(outcome.reply, req.legacy);
}

async function download(
  deps: AppDeps,
  req: SyncRequest,
  user: SyncUser,
  ip: string,
): Promise<Response> {
  await readJsonBody(req, SMALL_BODY_BYTES);
  const plan = downloadPlan(req.legacy, req.clientVersion);
  // A download being made ahead for this client is waited for: it is most of the work.
  await deps.readyDownloads?.beforeDownload(user, plan);
  const snapshot = await deps.executor.run({ kind: "download", user, plan });
  // The stored file's usn bump is committed while the copy streams (download.ts says why it
  // may); the body ends only once that commit is durable.
  const committed = deps.executor.run({ kind: "commitDownload", user, token: snapshot.commit });
  committed.catch((err: unknown) => {
    deps.log.error("full download cut short: usn bump not committed", {
      uuid: user.uuid,
      error: err instanceof Error ? err.message : String(err),
    });
  });
  deps.identity.recordSync(user);
  deps.log.info("full download", {
    uuid: user.uuid,
    schema: snapshot.schema,
    ...(snapshot.compressed ? { ready: true } : {}),
    ...(snapshot.notUpgraded === undefined ? {} : { notUpgraded: snapshot.notUpgraded }),
  });
  // Compressed while it streams (unless made ahead): the user's worker is free as soon as the
  // snapshot exists. For the fewest bytes, unless the client is on the local network, whose
  // link usually outpaces level 3 (platform/zstdStreams.ts).
  const file = consumeTempFile(snapshot.path);
  const body =
    req.legacy || snapshot.compressed ? file : compressStream(file, "zstd", zstdEffortFor(ip));
  return streamResponse(endingAfter(body, committed), snapshot.originalSize, req.legacy);
}

async function normalSync(
  deps: AppDeps,
  method: NormalSyncMethod,
  req: SyncRequest,
  user: SyncUser,
  call: SyncCall,
): Promise<Response> {
  const limit = LARGE_BODY_METHODS.has(method)
    ? deps.config.maxUncompressedBytes
    : SMALL_BODY_BYTES;
  // Unpacked and parsed in the worker (legacy JSON carries 64-bit ids that JSON.parse would
  // round), which also encodes the reply: the main thread only moves bytes.
  // A sync after an upload changes the file: a download made ahead of it would be stale.
  if (method === "start") deps.readyDownloads?.userActive(user);
  const body = await readRawBody(req, limit, deps.config.maxUncompressedBytes);
  const reply = req.legacy ? "none" : "zstd";
  const job = { kind: "normalSync", user, method, skey: req.skey, body, reply } as const;
  // A `chunk` the worker made ahead is answered with no event-loop turn after the body's read:
  // Bun then writes the response in one send (after a turn, ~11: bench/README.md).
  const ahead = deps.executor.answerAhead(job);
  if (ahead) call.answeredAhead = true;
  const result = ahead ?? (await deps.executor.run(job));
  if (method === "finish") deps.identity.recordSync(user);
  return encodedResponse(result.body, result.originalSize, req.legacy, { sameTurn: !!ahead });
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
  const app = new Elysia({ name: "collection-sync" })
    // Before the sync plugin: not a sync request, so no sync log line.
    .get("/sync/hostKey", hostKeyGet)
    .use(syncEndpoint(deps))
    .post("/sync/hostKey", ({ req, syncCall }) => login(deps, req, syncCall.ip), loginRoute)
    .post("/sync/meta", ({ req, user }) => meta(deps, req, user), syncRoute("meta"))
    .post(
      "/sync/upload",
      ({ req, user, syncCall }) => upload(deps, req, user, syncCall.ip),
      syncRoute("upload"),
    )
    .post(
      "/sync/download",
      ({ req, user, syncCall }) => download(deps, req, user, syncCall.ip),
      syncRoute("download"),
    )
    .post(
      "/sync/:method",
      ({ params, syncCall }) => syncCall.unknownMethod(params.method),
      unknownRoute,
    );
  for (const method of NORMAL_SYNC_METHODS) {
    app.post(
      `/sync/${method}`,
      ({ req, user, syncCall }) => normalSync(deps, method, req, user, derived(syncCall)),
      syncRoute(method),
    );
  }
  return app;
}
