/**
 * The normal-sync state machine (docs/protocol.md#session). Order of checks per request, as Anki's
 * server: empty session key → 400; body shape → 400 with the session untouched; no session or
 * another key → 409; then the step, whose failure rolls the whole session back → 400.
 */

import type { LegacyJson } from "../../legacyJson.ts";
import type { Db } from "../../platform/sqlite.ts";
import { checkpointWal } from "../../storage/collection/collectionFile.ts";
import { dropReadyDownload } from "../../storage/collection/readyDownload.ts";
import { storageFault } from "../../storage/ioErrors.ts";
import { badRequest, conflict } from "../errors.ts";
import { asStorageError } from "../storageErrors.ts";
import { applyChanges, parseApplyChangesRequest } from "./changes.ts";
import { type IncomingChunk, parseApplyChunkRequest } from "./chunkRows.ts";
import { applyChunk, chunk, chunkAhead, dropChunkAhead, planChunkWrites } from "./chunks.ts";
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
  /**
   * Work the step leaves until its reply is sent, when the caller asked for that
   * (`StepOptions.later`): the caller runs it before anything else touches the user's
   * collection. It returns the text of the next reply when it could make it ahead (the next
   * `chunk`). A failure rolls the session back and is kept for the next request
   * (`SyncState.laterFailure`); a session that ended meanwhile makes it a no-op.
   */
  after?: () => string | undefined;
  /**
   * The same work as `after` in parts, when it comes in parts (an `applyChunk`'s writes): each
   * call does one and says whether the work is done; `after` then does what is left.
   */
  afterPart?: () => boolean;
}

export interface StepOptions {
  /**
   * Leave work the client need not wait for until after the reply: an `applyChunk`'s writes
   * (everything that can refuse the chunk is checked first) and making the next `chunk`.
   */
  later?: boolean;
  /**
   * Set when earlier steps' later work may still be pending (an `applyChunk` is planned and
   * answered while the previous chunk's writes go on): runs it all. The step calls it before
   * anything that reads rows those writes touch.
   */
  settle?: () => void;
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
    return (_user, db, session) => {
      countRows(session, req);
      return applyChunk(db, session, req);
    };
  },
  sanityCheck2: (body) => {
    const req = parseSanityCheckRequest(body);
    return (user, db) => runSanityCheck(user, db, req);
  },
  finish: (body) => {
    expectEmptyArgs(body);
    return (user, db) => runFinish(user, db, false);
  },
};

export function runNormalSyncStep(
  user: SyncState,
  method: NormalSyncMethod,
  skey: string,
  payload: string,
  options: StepOptions = {},
): NormalSyncReply {
  if (method !== "abort" && method !== "start") throwLaterFailure(user, skey);
  else user.laterFailure = undefined;
  if (method === "abort") {
    // The skey is not checked: clients cancel from a fresh client object with a new key.
    expectEmptyArgs(parseBody(payload));
    user.abortSession();
    return { json: "null" };
  }
  if (skey === "") throw badRequest(`${method} without a session key`);
  if (method === "start") return runStart(user, skey, parseStartRequest(parseBody(payload)));
  const body = parseBody(payload);
  if (options.later && method === "applyChunk")
    return applyChunkLater(user, skey, body, options.settle);
  if (options.later && method === "finish") return finishLater(user, skey, body);
  const run = STATEFUL[method](body);
  const session = activeSession(user, skey);
  if (method !== "chunk") dropChunkAhead(session);
  const json = guarded(user, method, () => run(user, user.collection.open(), session));
  if (!options.later || method !== "chunk") return { json };
  return {
    json,
    after: () => later(user, skey, session, "chunk", (db) => chunkAhead(db, session)),
  };
}

/** A failure of earlier later work for this session key, reported once. */
function throwLaterFailure(user: SyncState, skey: string): void {
  const failed = user.laterFailure;
  user.laterFailure = undefined;
  if (failed && failed.skey === skey) throw failed.error;
}

/**
 * Rows written per part of an `applyChunk`'s writes (~0.2-0.5 ms of SQLite): a request that
 * comes meanwhile, most often the client's next chunk, waits for one part, not the chunk.
 */
const ROWS_PER_PART = 64;

/** The chunk checked and answered now, its writes left to `after` / `afterPart`. */
function applyChunkLater(
  user: SyncState,
  skey: string,
  body: LegacyJson,
  settle: (() => void) | undefined,
): NormalSyncReply {
  const req = parseApplyChunkRequest(body);
  let session = activeSession(user, skey);
  dropChunkAhead(session);
  const db = user.collection.open();
  countRows(session, req);
  const writes = guarded(user, "applyChunk", () => planChunkWrites(db, session, req));
  if (!writes) {
    // Merged against the stored rows, so the earlier chunks' writes go first.
    if (settle) {
      settle();
      throwLaterFailure(user, skey);
      session = activeSession(user, skey);
    }
    return { json: guarded(user, "applyChunk", () => applyChunk(db, session, req)) };
  }
  const part = (rows: number) => laterPart(user, skey, session, () => writes(rows));
  return {
    json: "null",
    after: () => {
      part(Number.POSITIVE_INFINITY);
      return undefined;
    },
    afterPart: () => part(ROWS_PER_PART),
  };
}

function countRows(session: SyncSession, req: IncomingChunk): void {
  session.rowsReceived += req.revlog.length + req.cards.length + req.notes.length;
}

/**
 * Rows received past which a sync's commit would usually pass SQLite's autocheckpoint bound
 * (1,000 pages: 3,000 changed notes with their cards and reviews wrote ~1,030). Such a sync
 * is answered first and checkpointed after; a smaller one leaves the WAL to the bound, so
 * small syncs in quick succession do not each pay a checkpoint's file sync.
 */
const CHECKPOINT_AFTER_ROWS = 1000;

/** `finish` answered as soon as the commit is durable; a large sync's checkpoint left to `after`. */
function finishLater(user: SyncState, skey: string, body: LegacyJson): NormalSyncReply {
  expectEmptyArgs(body);
  const session = activeSession(user, skey);
  dropChunkAhead(session);
  const checkpointLater = session.rowsReceived >= CHECKPOINT_AFTER_ROWS;
  const db = user.collection.open();
  const json = guarded(user, "finish", () => runFinish(user, db, checkpointLater));
  if (!checkpointLater) return { json };
  return { json, after: () => checkpointAfterFinish(user, db) };
}

/**
 * Moves only what the commit already made durable; a failure (another connection holding the
 * file) leaves it to the next checkpoint or to putting the file back at rest.
 */
function checkpointAfterFinish(user: SyncState, db: Db): undefined {
  if (user.collection.openHandle !== db || db.inTransaction) return undefined;
  try {
    checkpointWal(db);
  } catch {
    // Nothing lost: see above.
  }
  return undefined;
}

/** Runs a step's later work if its session is still the one under way. */
function later(
  user: SyncState,
  skey: string,
  session: SyncSession,
  method: string,
  work: (db: Db) => string | undefined,
): string | undefined {
  const db = user.collection.openHandle;
  if (user.session !== session || !db?.inTransaction) return undefined;
  try {
    const next = work(db);
    session.lastUsed = Date.now();
    return next;
  } catch (err) {
    user.laterFailure = { skey, error: stepFailure(user, method, err) };
    return undefined;
  }
}

/**
 * Runs a part of an `applyChunk`'s writes if its session is still the one under way; true once
 * nothing is left (all written, the session ended, or a write failed: see `later`).
 */
function laterPart(
  user: SyncState,
  skey: string,
  session: SyncSession,
  work: () => boolean,
): boolean {
  const db = user.collection.openHandle;
  if (user.session !== session || !db?.inTransaction) return true;
  try {
    const done = work();
    session.lastUsed = Date.now();
    return done;
  } catch (err) {
    user.laterFailure = { skey, error: stepFailure(user, "applyChunk", err) };
    return true;
  }
}

function runStart(
  user: SyncState,
  skey: string,
  req: ReturnType<typeof parseStartRequest>,
): NormalSyncReply {
  user.abortSession();
  // A sync's writes make any ready download stale (its hash would show it; gone now, not then).
  dropReadyDownload(user.paths.collection);
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
function guarded<T>(user: SyncState, method: string, op: () => T): T {
  try {
    const json = op();
    if (user.session) user.session.lastUsed = Date.now();
    return json;
  } catch (err) {
    throw stepFailure(user, method, err);
  }
}

/** Rolls the session back; the error to answer with. */
function stepFailure(user: SyncState, method: string, err: unknown): Error {
  user.abortSession();
  // A full disk or a collection held by another program is no reason to Check Database.
  if (storageFault(err)) return asStorageError(err, user.paths.collection) as Error;
  return badRequest(`${method} failed, sync rolled back: ${(err as Error).message}`, {
    cause: err,
  });
}

/** A failed check ends the session at once rather than waiting for the client's abort. */
function runSanityCheck(user: SyncState, db: Db, client: SanityCounts): string {
  const result = sanityCheck(db, client);
  if (!result.ok) user.abortSession();
  return result.json;
}

function runFinish(user: SyncState, db: Db, checkpointLater: boolean): string {
  const json = finish(db, Date.now(), checkpointLater);
  user.session = undefined;
  return json;
}
