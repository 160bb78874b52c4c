/**
 * The normal-sync state machine (docs/protocol.md#session). Order of checks per request, as Anki's
 * server: empty session key → 400; body shape → 400 with the session untouched; no session or
 * another key → 409; then the step, whose failure rolls the whole session back → 400.
 */

import type { LegacyJson } from "../../legacyJson.ts";
import type { Db } from "../../platform/sqlite.ts";
import { storageFault } from "../../storage/ioErrors.ts";
import { badRequest, conflict } from "../errors.ts";
import { asStorageError } from "../storageErrors.ts";
import { applyChanges, parseApplyChangesRequest } from "./changes.ts";
import { parseApplyChunkRequest } from "./chunkRows.ts";
import { applyChunk, chunk } from "./chunks.ts";
import { finish } from "./finish.ts";
import { applyGraves, parseApplyGravesRequest } from "./graves.ts";
import type { NormalSyncMethod } from "./methods.ts";
import type { SanityCounts } from "./sanity.ts";
import { parseSanityCheckRequest, sanityCheck } from "./sanity.ts";
import type { SyncSession } from "./session.ts";
import { newSession, parseStartRequest, start } from "./start.ts";
import type { SyncState } from "./syncState.ts";
import { expectEmptyArgs, parseBody } from "./wire.ts";

export { NORMAL_SYNC_METHODS, type NormalSyncMethod } from "./methods.ts";

export interface NormalSyncReply {
  json: string;
}

/** Parses a request body (shape errors throw here) into the step ready to run. */
type Prepared = (user: SyncState, db: Db, session: SyncSession) => string;

const STATEFUL: Record<
  Exclude<NormalSyncMethod, "start" | "abort">,
  (body: LegacyJson) => Prepared
> = {
  applyGraves: (body) => {
    const req = parseApplyGravesRequest(body);
    return (_user, db, session) => applyGraves(db, session, req);
  },
  applyChanges: (body) => {
    const req = parseApplyChangesRequest(body);
    return (_user, db, session) => applyChanges(db, session, req);
  },
  chunk: (body) => {
    expectEmptyArgs(body);
    return (_user, db, session) => chunk(db, session);
  },
  applyChunk: (body) => {
    const req = parseApplyChunkRequest(body);
    return (_user, db, session) => applyChunk(db, session, req);
  },
  sanityCheck2: (body) => {
    const req = parseSanityCheckRequest(body);
    return (user, db) => runSanityCheck(user, db, req);
  },
  finish: (body) => {
    expectEmptyArgs(body);
    return runFinish;
  },
};

export function runNormalSyncStep(
  user: SyncState,
  method: NormalSyncMethod,
  skey: string,
  payload: string,
): NormalSyncReply {
  if (method === "abort") {
    // The skey is not checked: clients cancel from a fresh client object with a new key.
    expectEmptyArgs(parseBody(payload));
    user.abortSession();
    return { json: "null" };
  }
  if (skey === "") throw badRequest(`${method} without a session key`);
  if (method === "start") return runStart(user, skey, parseStartRequest(parseBody(payload)));
  const run = STATEFUL[method](parseBody(payload));
  const session = activeSession(user, skey);
  return { json: guarded(user, method, () => run(user, user.collection.open(), session)) };
}

function runStart(
  user: SyncState,
  skey: string,
  req: ReturnType<typeof parseStartRequest>,
): NormalSyncReply {
  user.abortSession();
  const now = Date.now();
  const session = newSession(skey, req, now);
  user.session = session;
  return { json: guarded(user, "start", () => start(user.collection.open(), session, req)) };
}

function activeSession(user: SyncState, skey: string): SyncSession {
  const session = user.session;
  if (!session) throw conflict("no active sync");
  if (session.skey !== skey) throw conflict("active sync has another session key");
  return session;
}

/** Runs a step; any failure discards everything since `start` and is answered with 400. */
function guarded(user: SyncState, method: string, op: () => string): string {
  try {
    const json = op();
    if (user.session) user.session.lastUsed = Date.now();
    return json;
  } catch (err) {
    user.abortSession();
    // A full disk or a collection held by another program is no reason to Check Database.
    if (storageFault(err)) throw asStorageError(err, user.paths.collection);
    throw badRequest(`${method} failed, sync rolled back: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/** A failed check ends the session at once rather than waiting for the client's abort. */
function runSanityCheck(user: SyncState, db: Db, client: SanityCounts): string {
  const result = sanityCheck(db, client);
  if (!result.ok) user.abortSession();
  return result.json;
}

function runFinish(user: SyncState, db: Db): string {
  const json = finish(db);
  user.session = undefined;
  return json;
}
