/**
 * Shape checks for the legacy note types, decks and deck options a client sends: the keys
 * Anki requires (collection-format §4.1–4.3) and the ones merging depends on. The objects are
 * otherwise kept as sent, unknown keys included; only a string `id` is turned into the
 * integer Anki would send back.
 */
import { isLosslessNumber, type LegacyJson, type LegacyObject } from "../../legacyJson.ts";
import { legacyInt } from "../../storage/collection/legacyObjects.ts";
import { badRequest } from "../errors.ts";
import { expectArray, expectBool, expectInt, expectObject, expectString } from "./wire.ts";

export function checkNotetype(nt: LegacyObject): LegacyObject {
  const what = `notetype ${String(nt.id)}`;
  normalizeId(nt, what);
  expectString(nt.name, `${what}: name`);
  const kind = expectInt(nt.type, "i64", `${what}: type`);
  if (kind !== 0 && kind !== 1) throw badRequest(`${what}: type must be 0 or 1`);
  expectInt(nt.mod, "i64", `${what}: mod`);
  expectInt(nt.usn, "i32", `${what}: usn`);
  expectInt(nt.sortf, "u16", `${what}: sortf`);
  required(nt, ["did", "css"], what);
  for (const field of expectArray(nt.flds, `${what}: flds`)) {
    expectString(expectObject(field, `${what}: field`).name, `${what}: field name`);
  }
  for (const tmpl of expectArray(nt.tmpls, `${what}: tmpls`)) {
    const template = expectObject(tmpl, `${what}: template`);
    expectString(template.name, `${what}: template name`);
    expectString(template.qfmt, `${what}: template qfmt`);
  }
  return nt;
}

export function checkDeck(deck: LegacyObject): LegacyObject {
  const what = `deck ${String(deck.id)}`;
  normalizeId(deck, what);
  expectString(deck.name, `${what}: name`);
  expectInt(deck.usn, "i32", `${what}: usn`);
  if (deck.mod !== undefined) intOrString(deck.mod, `${what}: mod`);
  for (const key of ["lrnToday", "revToday", "newToday", "timeToday"]) {
    expectArray(deck[key], `${what}: ${key}`);
  }
  expectBool(deck.collapsed, `${what}: collapsed`);
  const dyn = deck.dyn;
  if (typeof dyn !== "boolean" && typeof dyn !== "number" && !isNumberLike(dyn)) {
    throw badRequest(`${what}: dyn must be a number or boolean`);
  }
  return deck;
}

export function checkDeckConfig(conf: LegacyObject): LegacyObject {
  const what = `deck config ${String(conf.id)}`;
  normalizeId(conf, what);
  expectString(conf.name, `${what}: name`);
  intOrString(conf.mod, `${what}: mod`);
  expectInt(conf.usn, "i32", `${what}: usn`);
  required(conf, ["maxTaken", "autoplay", "timer", "new", "rev", "lapse"], what);
  return conf;
}

/** Ids may arrive as decimal strings; Anki stores and sends them as integers. */
function normalizeId(object: LegacyObject, what: string): void {
  const id = intOrString(object.id, `${what}: id`);
  if (typeof object.id === "string") {
    object.id = Number.isSafeInteger(Number(id)) ? Number(id) : id;
  }
}

function intOrString(value: LegacyJson | undefined, what: string): bigint {
  const int =
    typeof value === "string" || typeof value === "number" || typeof value === "bigint"
      ? legacyInt(value)
      : undefined;
  if (int === undefined || BigInt.asIntN(64, int) !== int) {
    throw badRequest(`${what} must be an integer or a decimal string`);
  }
  return int;
}

function required(object: LegacyObject, keys: string[], what: string): void {
  const missing = keys.filter((key) => !Object.hasOwn(object, key));
  if (missing.length > 0) throw badRequest(`${what}: missing ${missing.join(", ")}`);
}

function isNumberLike(value: LegacyJson | undefined): boolean {
  return typeof value === "bigint" || isLosslessNumber(value);
}
