/**
 * Numbers as Anki re-prints them after reading JSON into a generic value (serde_json
 * `Value`): integers within i64/u64 stay integers, everything else becomes an f64
 * printed shortest-first (`1.50` -> `1.5`, `1e2` -> `100.0`). Applied where Anki
 * round-trips stored JSON: `other` blobs and config values.
 */

import {
  isLegacyObject,
  isLosslessNumber,
  type LegacyJson,
  type LegacyObject,
  LosslessNumber,
  putKey,
} from "../../../legacyJson.ts";
import { layout } from "./f32.ts";

const I64_MIN = -(2n ** 63n);
const U64_MAX = 2n ** 64n - 1n;
const F64_LAYOUT = { maxIntegerDigits: 16, minPoint: -4 };

export class NumberOutOfRangeError extends Error {
  constructor(text: string) {
    super(`number out of range: ${text}`);
    this.name = "NumberOutOfRangeError";
  }
}

/** Deep copy with serde_json's number spelling; throws where serde_json would reject. */
export function serdeCanonical(value: LegacyJson): LegacyJson {
  if (Array.isArray(value)) return value.map(serdeCanonical);
  if (isLegacyObject(value)) return canonicalObject(value);
  if (typeof value === "bigint") return canonicalInteger(value);
  if (isLosslessNumber(value)) return canonicalText(value.toString());
  return value;
}

function canonicalObject(object: LegacyObject): LegacyObject {
  const copy: LegacyObject = {};
  for (const [key, item] of Object.entries(object)) putKey(copy, key, serdeCanonical(item));
  return copy;
}

function canonicalInteger(value: bigint): LegacyJson {
  if (value >= I64_MIN && value <= U64_MAX) return value;
  return f64Json(Number(value), value.toString());
}

function canonicalText(text: string): LegacyJson {
  // Only "-0" reaches here without a fraction or exponent; serde reads it as integer 0.
  if (/^-?\d+$/.test(text)) return 0;
  return f64Json(Number(text), text);
}

function f64Json(value: number, source: string): LosslessNumber {
  if (!Number.isFinite(value)) throw new NumberOutOfRangeError(source);
  return new LosslessNumber(formatF64(value));
}

/** ryu-style f64 text: JS already yields the shortest round-trip digits. */
export function formatF64(value: number): string {
  const sign = value < 0 || Object.is(value, -0) ? "-" : "";
  if (value === 0) return `${sign}0.0`;
  const [mantissa = "", exponentText = "0"] = Math.abs(value).toExponential().split("e");
  const digits = mantissa.replace(".", "");
  return sign + layout(digits, Number(exponentText) - (digits.length - 1), F64_LAYOUT);
}
