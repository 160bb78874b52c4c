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
} from "./legacyJson.ts";
import { serdeCanonical } from "./serdeNumbers.ts";

const utf8 = new TextDecoder("utf-8", { fatal: true });

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
