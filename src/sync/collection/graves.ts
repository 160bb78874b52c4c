/**
 * `applyGraves`: the client's deletions. They always win (no mtime or usn check); each is
 * recorded as a grave stamped with the session usn. A note grave does not delete the note's
 * cards and a deck grave does not touch its cards: the client sends those separately.
 */

import type { Db } from "../../platform/sqlite.ts";
import type { LegacyJson } from "../../storage/collection/convert/legacyJson.ts";
import {
  GRAVE_CARD,
  GRAVE_DECK,
  GRAVE_NOTE,
  type GraveIds,
  GraveRecorder,
} from "../../storage/collection/graves.ts";
import {
  keyOfId,
  readLegacyColumn,
  writeLegacyColumn,
} from "../../storage/collection/legacyObjects.ts";
import { deleteRow } from "../../storage/collection/syncRows.ts";
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
  applyGraveIds(db, session.serverUsn, graves);
  return "null";
}

/** Notes, then cards, then decks, as Anki applies them. */
export function applyGraveIds(db: Db, usn: number, graves: GraveIds): void {
  const recorder = new GraveRecorder(db, usn);
  for (const id of graves.notes) {
    deleteRow(db, "notes", id);
    recorder.add(id, GRAVE_NOTE);
  }
  for (const id of graves.cards) {
    deleteRow(db, "cards", id);
    recorder.add(id, GRAVE_CARD);
  }
  if (graves.decks.length > 0) deleteDecks(db, graves.decks, recorder);
}

function deleteDecks(db: Db, ids: Int[], recorder: GraveRecorder): void {
  const decks = readLegacyColumn(db, "decks");
  for (const id of ids) {
    const key = keyOfId(decks, id);
    if (key !== undefined) delete decks[key];
    recorder.add(id, GRAVE_DECK);
  }
  writeLegacyColumn(db, "decks", decks);
}
