/**
 * `start`: opens the session transaction and answers with the server's deletions since the
 * client's last sync. Old AnkiDroid sends its own deletions inline; they are applied only
 * after the server's are collected, so they are not echoed back.
 */

import type { LegacyJson } from "../../legacyJson.ts";
import { stringifyLegacyJson } from "../../legacyJson.ts";
import type { Db } from "../../platform/sqlite.ts";
import { readCol } from "../../storage/collection/collectionFile.ts";
import {
  applyDeletions,
  type GraveIds,
  pendingGraves,
} from "../../storage/collection/graveRows.ts";
import { badRequest } from "../errors.ts";
import { parseGraves } from "./graves.ts";
import { beginSessionTransaction, type SyncSession } from "./session.ts";
import { expectArray, expectBool, expectInt, expectObject, type Int } from "./wire.ts";

export interface StartRequest {
  minUsn: number;
  lnewer: boolean;
  graves: GraveIds | null;
}

export function parseStartRequest(body: LegacyJson): StartRequest {
  const object = expectObject(body, "request");
  return {
    minUsn: Number(expectInt(object.minUsn, "i32", "minUsn")),
    lnewer: expectBool(object.lnewer, "lnewer"),
    graves: parseLegacyGraves(object.graves),
  };
}

/** Absent or null: none. Otherwise integer ids, or (old AnkiMobile) decimal strings. */
function parseLegacyGraves(value: LegacyJson | undefined): GraveIds | null {
  if (value === undefined || value === null) return null;
  try {
    return parseGraves(value, "graves");
  } catch {
    return parseStringGraves(value);
  }
}

function parseStringGraves(value: LegacyJson): GraveIds {
  const object = expectObject(value, "graves");
  const list = (kind: "cards" | "decks" | "notes"): Int[] =>
    expectArray(object[kind], `graves.${kind}`).map((id) => decimalId(id));
  return { cards: list("cards"), decks: list("decks"), notes: list("notes") };
}

function decimalId(value: LegacyJson): Int {
  if (typeof value !== "string" || !/^[+-]?\d+$/.test(value)) throw badRequest("graves: bad id");
  const id = BigInt(value);
  if (BigInt.asIntN(64, id) !== id) throw badRequest("graves: id out of range");
  return Number.isSafeInteger(Number(id)) ? Number(id) : id;
}

/** The session record; its server usn is read by `start` inside the transaction. */
export function newSession(skey: string, req: StartRequest, now: number): SyncSession {
  return {
    skey,
    serverUsn: 0,
    clientUsn: req.minUsn,
    clientIsNewer: req.lnewer,
    rowsReceived: 0,
    startedAt: now,
    lastUsed: now,
  };
}

/** Begins the transaction that lasts until `finish`; returns the graves JSON. */
export function start(db: Db, session: SyncSession, req: StartRequest): string {
  beginSessionTransaction(db);
  session.serverUsn = readCol(db).usn;
  const graves = pendingGraves(db, session.clientUsn);
  if (req.graves) applyDeletions(db, session.serverUsn, req.graves);
  return stringifyLegacyJson({ cards: graves.cards, decks: graves.decks, notes: graves.notes });
}
