/**
 * `sanityCheck2`: after both sides merged, their object counts must agree. Due counts and
 * graves are not compared (older clients may hold duplicate graves), and any server row still
 * marked as locally changed (usn -1) fails the check outright.
 */

import {
  isLegacyObject,
  type LegacyJson,
  type LegacyObject,
  stringifyLegacyJson,
} from "../../legacyJson.ts";
import type { Db } from "../../platform/sqlite.ts";
import {
  legacyInt,
  mapValues,
  objectUsn,
  viewLegacyColumns,
} from "../../storage/collection/legacyObjects.ts";
import { type RowTally, tallyRows } from "../../storage/collection/syncRows.ts";
import { badRequest } from "../errors.ts";
import { expectArray, expectInt, expectObject } from "./wire.ts";

/** `[[new, learn, review], cards, notes, revlog, graves, models, decks, deck_config]` */
export type SanityCounts = [dueCounts: [number, number, number], ...counts: number[]];

const COUNT_KEYS = ["cards", "notes", "revlog", "graves", "models", "decks", "deck_config"];
const DUE_KEYS = ["new", "learn", "review"];

export interface SanityResult {
  ok: boolean;
  json: string;
}

export function parseSanityCheckRequest(body: LegacyJson): SanityCounts {
  const client = expectObject(body, "request").client;
  const values = positional(client, ["counts", ...COUNT_KEYS], "client");
  const due = positional(values[0], DUE_KEYS, "client.counts").map((n) => u32(n, "due count"));
  return [due as [number, number, number], ...values.slice(1).map((n) => u32(n, "count"))];
}

/** serde reads these structs from an array in field order or from an object. */
function positional(
  value: LegacyJson | undefined,
  keys: string[],
  what: string,
): (LegacyJson | undefined)[] {
  if (isLegacyObject(value)) return keys.map((key) => value[key]);
  const list = expectArray(value, what);
  if (list.length !== keys.length) throw badRequest(`${what} must have ${keys.length} elements`);
  return list;
}

function u32(value: LegacyJson | undefined, what: string): number {
  return Number(expectInt(value, "u32", what));
}

export function sanityCheck(db: Db, client: SanityCounts): SanityResult {
  const maps = viewLegacyColumns(db, ["models", "decks", "dconf", "tags"]);
  const rows = tallyRows(db);
  if (rows.pending || hasPendingObjects(maps)) {
    return { ok: false, json: stringifyLegacyJson({ status: "bad", c: client, s: null }) };
  }
  const server = serverCounts(rows, maps);
  const zeroed = withoutDueAndGraves(client);
  const ok = zeroed.every((value, i) => i === 0 || value === server[i]);
  return { ok, json: stringifyLegacyJson({ status: ok ? "ok" : "bad", c: zeroed, s: server }) };
}

type Maps = Record<"models" | "decks" | "dconf" | "tags", LegacyObject>;

function withoutDueAndGraves(counts: SanityCounts): SanityCounts {
  const copy: SanityCounts = [[0, 0, 0], ...counts.slice(1)] as SanityCounts;
  copy[4] = 0;
  return copy;
}

function serverCounts(rows: RowTally, maps: Maps): SanityCounts {
  return [
    [0, 0, 0],
    rows.cards,
    rows.notes,
    rows.revlog,
    0,
    Object.keys(maps.models).length,
    Object.keys(maps.decks).length,
    Object.keys(maps.dconf).length,
  ] as SanityCounts;
}

function hasPendingObjects(maps: Maps): boolean {
  const objects = [maps.decks, maps.dconf, maps.models].flatMap(mapValues);
  if (objects.some((object) => objectUsn(object) === -1)) return true;
  return Object.values(maps.tags).some((usn) => legacyInt(usn) === -1n);
}
