/**
 * The legacy JSON maps in the schema-11 `col` row (note types, decks, deck options, tags,
 * config), read and written without number loss, and the few object keys the sync logic needs.
 */

import {
  isLegacyObject,
  isLosslessNumber,
  type LegacyJson,
  type LegacyObject,
  parseLegacyJson,
  stringifyLegacyJson,
} from "../../legacyJson.ts";
import type { Db } from "../../platform/sqlite.ts";

export type LegacyColumn = "models" | "decks" | "dconf" | "tags" | "conf";

const COLUMNS: ReadonlySet<string> = new Set(["models", "decks", "dconf", "tags", "conf"]);

function checkColumn(column: LegacyColumn): void {
  // The name is interpolated into SQL, so it must be one of ours.
  if (!COLUMNS.has(column)) throw new Error(`not a legacy column: ${column}`);
}

export function readLegacyColumn(db: Db, column: LegacyColumn): LegacyObject {
  checkColumn(column);
  const row = db.query(`select ${column} as v from col where id = 1`).get() as { v: string } | null;
  if (!row) throw new Error("collection has no col row");
  const value = parseLegacyJson(row.v);
  if (!isLegacyObject(value)) throw new Error(`col.${column} is not a JSON object`);
  return value;
}

export function writeLegacyColumn(db: Db, column: LegacyColumn, value: LegacyObject): void {
  checkColumn(column);
  db.query(`update col set ${column} = $v where id = 1`).run({ v: stringifyLegacyJson(value) });
}

/**
 * An integer key of a legacy object: JSON integers, and decimal strings where Anki accepts
 * them (ids, deck `mod`). Undefined for anything else.
 */
export function intKey(object: LegacyObject, key: string): bigint | undefined {
  return legacyInt(object[key]);
}

export function legacyInt(value: LegacyJson | undefined): bigint | undefined {
  if (typeof value === "number") return Number.isInteger(value) ? BigInt(value) : undefined;
  if (typeof value === "bigint") return value;
  if (typeof value === "string") return /^[+-]?\d+$/.test(value) ? BigInt(value) : undefined;
  if (isLosslessNumber(value) && value.toString() === "-0") return 0n;
  return undefined;
}

/** `usn` of a stored object; a missing or odd value counts as 0, as it never is -1 then. */
export function objectUsn(object: LegacyObject): number {
  return Number(intKey(object, "usn") ?? 0n);
}

/** `mod` (seconds) of a stored object; absent counts as 0, as Anki reads it for decks. */
export function objectMtime(object: LegacyObject): bigint {
  return intKey(object, "mod") ?? 0n;
}

/** The objects of a map column, in stored order. */
export function mapValues(map: LegacyObject): LegacyObject[] {
  return Object.values(map).filter(isLegacyObject);
}

/**
 * The map key holding the object whose inner `id` is `id`. Normally that key is the id
 * itself, but the inner id is what Anki goes by when a file disagrees.
 */
export function keyOfId(map: LegacyObject, id: bigint | number): string | undefined {
  const wanted = BigInt(id);
  const direct = map[String(id)];
  if (isLegacyObject(direct) && (intKey(direct, "id") ?? wanted) === wanted) return String(id);
  for (const [key, value] of Object.entries(map)) {
    if (isLegacyObject(value) && intKey(value, "id") === wanted) return key;
  }
  return undefined;
}
