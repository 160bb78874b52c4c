/**
 * The `other` (field 255) blobs: legacy keys without a native field, kept as a JSON
 * object so add-on data and keys from other client versions survive a round trip.
 */
import {
  isLegacyObject,
  type LegacyJson,
  type LegacyObject,
  parseLegacyJson,
  putKey,
  stringifyLegacyJson,
} from "../../../legacyJson.ts";
import { serdeCanonical } from "./serdeNumbers.ts";

const utf8 = new TextDecoder("utf-8", { fatal: true });
const utf8Encoder = new TextEncoder();

/** The blob Anki writes for unknown keys: their JSON as serde re-prints it, or nothing. */
export function otherBytes(rest: LegacyObject): Uint8Array {
  if (Object.keys(rest).length === 0) return new Uint8Array();
  return utf8Encoder.encode(stringifyLegacyJson(serdeCanonical(rest)));
}

/** The blob as an object; empty, undecodable or non-object content counts as no keys. */
export function parseOther(bytes: Uint8Array): LegacyObject {
  if (bytes.length === 0) return {};
  try {
    // Anki re-reads the blob as generic JSON, which also re-spells its numbers.
    const value = serdeCanonical(parseLegacyJson(utf8.decode(bytes)));
    return isLegacyObject(value) ? value : {};
  } catch {
    return {};
  }
}

/** Copy of `object` without the keys a native field owns (the native value wins). */
export function withoutReserved(object: LegacyObject, reserved: ReadonlySet<string>): LegacyObject {
  const kept: LegacyObject = {};
  for (const [key, value] of Object.entries(object)) {
    if (!reserved.has(key)) putKey(kept, key, value);
  }
  return kept;
}

/** Takes `key` out of `object`, returning its value. */
export function takeKey(object: LegacyObject, key: string): LegacyJson | undefined {
  if (!Object.hasOwn(object, key)) return undefined;
  const value = object[key];
  delete object[key];
  return value;
}

/** Adds every entry of `source` to `target`; a later write of the same key wins. */
export function mergeInto(target: LegacyObject, source: LegacyObject): LegacyObject {
  for (const [key, value] of Object.entries(source)) putKey(target, key, value);
  return target;
}

/** Legacy key -> the native fields (decoded names) its value comes from. */
export type LateKeys = Readonly<Record<string, readonly string[]>>;

/**
 * Reserved keys whose native fields Anki added after the first schema-18 clients, that
 * the stored bytes lack, and that `other` carries. A client whose schema predates such a
 * field keeps the key (written by a newer device or an add-on) in `other`; that copy is
 * the value the client has, so it stands instead of the field's default. Anki itself
 * drops it, but its server keeps the uploaded bytes, so older clients see the value there.
 */
export function keysOwnedByOther(
  other: LegacyObject,
  late: LateKeys,
  present: ReadonlySet<string>,
): ReadonlySet<string> {
  const owned = new Set<string>();
  for (const [key, fields] of Object.entries(late)) {
    if (Object.hasOwn(other, key) && !fields.some((field) => present.has(field))) owned.add(key);
  }
  return owned;
}

/** `reserved` without `released`. */
export function reservedExcept(
  reserved: ReadonlySet<string>,
  released: ReadonlySet<string>,
): ReadonlySet<string> {
  if (released.size === 0) return reserved;
  return new Set([...reserved].filter((key) => !released.has(key)));
}
