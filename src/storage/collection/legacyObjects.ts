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

/** A column's value, the caller's own to change and write back. */
export function readLegacyColumn(db: Db, column: LegacyColumn): LegacyObject {
  return parseColumn(readColumnText(db, column), column);
}

/**
 * Parsed columns by their text, per open database. Note types carry 64-bit ids, so they take
 * the slow lossless parse, and every normal sync reads them in several steps (applyChanges,
 * applyChunk, sanityCheck2): the text is still read each time, but parsed only when it changed.
 */
const parsedColumns = new WeakMap<Db, Map<LegacyColumn, { text: string; value: LegacyObject }>>();

/**
 * A column's value for reading only. It is shared with later callers, so it is frozen: code
 * that tried to change it would fail at once rather than alter what others see. Callers that
 * change a column take `readLegacyColumn`.
 */
export function viewLegacyColumn(db: Db, column: LegacyColumn): LegacyObject {
  return viewParsed(db, column, readColumnText(db, column));
}

/**
 * `viewLegacyColumn` of several columns, read with one statement: the steps that look at every
 * map (applyChanges, sanityCheck2) ran one query per column on every sync.
 */
export function viewLegacyColumns<C extends LegacyColumn>(
  db: Db,
  columns: readonly C[],
): Record<C, LegacyObject> {
  for (const column of columns) checkColumn(column);
  const row = db.query(`select ${columns.join(", ")} from col where id = 1`).get() as Record<
    C,
    string
  > | null;
  if (!row) throw new Error("collection has no col row");
  const views = {} as Record<C, LegacyObject>;
  for (const column of columns) views[column] = viewParsed(db, column, row[column]);
  return views;
}

function viewParsed(db: Db, column: LegacyColumn, text: string): LegacyObject {
  let cache = parsedColumns.get(db);
  if (!cache) {
    cache = new Map();
    parsedColumns.set(db, cache);
  }
  const cached = cache.get(column);
  if (cached?.text === text) return cached.value;
  const value = deepFreeze(parseColumn(text, column));
  cache.set(column, { text, value });
  return value;
}

function readColumnText(db: Db, column: LegacyColumn): string {
  checkColumn(column);
  const row = db.query(`select ${column} as v from col where id = 1`).get() as { v: string } | null;
  if (!row) throw new Error("collection has no col row");
  return row.v;
}

function parseColumn(text: string, column: LegacyColumn): LegacyObject {
  const value = parseLegacyJson(text);
  if (!isLegacyObject(value)) throw new Error(`col.${column} is not a JSON object`);
  return value;
}

function deepFreeze<T extends LegacyJson>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    for (const inner of Object.values(value)) deepFreeze(inner as LegacyJson);
    Object.freeze(value);
  }
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
