/**
 * `applyGraves`: the client's deletions. They always win (no mtime or usn check); each is
 * recorded as a grave stamped with the session usn (storage/collection/graveRows.ts).
 */

import type { LegacyJson } from "../../legacyJson.ts";
import type { Db } from "../../platform/sqlite.ts";
import { applyDeletions, type GraveIds } from "../../storage/collection/graveRows.ts";
import type { SyncSession } from "./session.ts";
import { expectArray, expectInt, expectObject, type Int } from "./wire.ts";

const KINDS = ["cards", "decks", "notes"] as const;

export function parseApplyGravesRequest(body: LegacyJson): GraveIds {
  return parseGraves(expectObject(body, "request").chunk, "chunk");
}

/** All three lists are required, each of 64-bit integer ids. */
export function parseGraves(value: LegacyJson | undefined, what: string): GraveIds {
  const object = expectObject(value, what);
  const lists = KINDS.map((kind) =>
    expectArray(object[kind], `${what}.${kind}`).map((id) =>
      expectInt(id, "i64", `${what}.${kind}[]`),
    ),
  );
  return { cards: lists[0] as Int[], decks: lists[1] as Int[], notes: lists[2] as Int[] };
}

export function applyGraves(db: Db, session: SyncSession, graves: GraveIds): string {
  applyDeletions(db, session.serverUsn, graves);
  return "null";
}
