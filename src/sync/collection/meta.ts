/** `meta`: the server collection's state, from which the client decides what kind of sync to run. */
import { hasCards, readCol } from "../../storage/collection/collectionFile.ts";
import { SyncError } from "../errors.ts";
import {
  isSupportedVersion,
  SYNC_VERSION_09_V2_SCHEDULER,
  SYNC_VERSION_10_V2_TIMEZONE,
} from "../version.ts";
import type { SyncState } from "./syncState.ts";

export interface MetaRequest {
  v: number;
  cv: string;
}

export interface MetaResponse {
  mod: number;
  scm: number;
  usn: number;
  ts: number;
  msg: string;
  cont: boolean;
  hostNum: number;
  empty: boolean;
  media_usn: number;
}

export interface MetaLimits {
  maxUncompressedBytes: number;
}

export function meta(
  user: SyncState,
  req: MetaRequest,
  limits: MetaLimits,
  now = Date.now(),
): MetaResponse {
  // A status check from another device ends any sync in progress, as Anki's server does.
  user.abortSession();
  if (!isSupportedVersion(req.v))
    throw new SyncError("clientTooOld", `unsupported sync version ${req.v}`);
  const db = user.collection.open();
  const col = readCol(db);
  const response: MetaResponse = {
    mod: col.mod,
    scm: oversized(db, limits) ? now : col.scm,
    usn: col.usn,
    ts: Math.floor(now / 1000),
    msg: "",
    cont: true,
    hostNum: 0,
    empty: !hasCards(db),
    media_usn: user.media.lastUsn(),
  };
  return { ...response, ...legacyRefusal(db, req.v) };
}

/**
 * A collection too big to upload again pushes clients to a one-way sync by faking a schema change.
 * The database's own size: while open in WAL mode the file can lag behind it.
 */
function oversized(db: ReturnType<SyncState["collection"]["open"]>, limits: MetaLimits): boolean {
  const { size } = db
    .query("select page_count * page_size as size from pragma_page_count(), pragma_page_size()")
    .get() as { size: number };
  return size > limits.maxUncompressedBytes;
}

function legacyRefusal(
  db: ReturnType<SyncState["collection"]["open"]>,
  v: number,
): Partial<MetaResponse> {
  if (v >= SYNC_VERSION_10_V2_TIMEZONE) return {};
  const conf = JSON.parse(
    (db.query("select conf from col").get() as { conf: string }).conf,
  ) as Record<string, unknown>;
  if (v < SYNC_VERSION_09_V2_SCHEDULER && conf.schedVer === 2) {
    return { cont: false, msg: "Your client does not support the v2 scheduler" };
  }
  if (conf.creationOffset !== undefined && conf.creationOffset !== null) {
    return { cont: false, msg: "Your client does not support the new timezone handling." };
  }
  return {};
}
