/**
 * Reading normal-sync request bodies. Every check here is a JSON-shape check: failing one is a 400
 * that leaves the session alone (docs/protocol.md#session-failures), unlike a failure while
 * applying the data. Integers follow Anki's serde types: strict where it is strict, truncating
 * where it reads "int from number".
 */
import {
  isLegacyObject,
  isLosslessNumber,
  type LegacyJson,
  type LegacyObject,
  parseLegacyJson,
} from "../../legacyJson.ts";
import type { Int } from "../../storage/collection/syncRows.ts";
import { badRequest } from "../errors.ts";

export type { Int };

export function parseBody(payload: string): LegacyJson {
  try {
    return parseLegacyJson(payload === "" ? "{}" : payload);
  } catch (err) {
    throw badRequest(`invalid JSON: ${(err as Error).message}`, { cause: err });
  }
}

/** `chunk`, `finish`, `abort` take an object whose only allowed key is `_pad`. */
export function expectEmptyArgs(body: LegacyJson): void {
  const object = expectObject(body, "request");
  const extra = Object.keys(object).filter((key) => key !== "_pad");
  if (extra.length > 0) throw badRequest(`unexpected keys ${extra.join(", ")}`);
}

export function expectObject(value: LegacyJson | undefined, what: string): LegacyObject {
  if (!isLegacyObject(value)) throw badRequest(`${what} must be an object`);
  return value;
}

export function expectArray(value: LegacyJson | undefined, what: string): LegacyJson[] {
  if (!Array.isArray(value)) throw badRequest(`${what} must be an array`);
  return value;
}

export function expectString(value: LegacyJson | undefined, what: string): string {
  if (typeof value !== "string") throw badRequest(`${what} must be a string`);
  return value;
}

export function expectBool(value: LegacyJson | undefined, what: string): boolean {
  if (typeof value !== "boolean") throw badRequest(`${what} must be a boolean`);
  return value;
}

const LIMITS = {
  u8: [0n, 0xffn],
  u16: [0n, 0xffffn],
  u32: [0n, 0xffff_ffffn],
  i8: [-0x80n, 0x7fn],
  i32: [-(2n ** 31n), 2n ** 31n - 1n],
  i64: [-(2n ** 63n), 2n ** 63n - 1n],
} as const;

export type IntKind = keyof typeof LIMITS;

/** A JSON integer literal (no fraction or exponent) within the range of `kind`. */
export function expectInt(value: LegacyJson | undefined, kind: IntKind, what: string): Int {
  const int = strictInt(value);
  if (int !== undefined && inRange(int, kind)) return int;
  throw badRequest(`${what} must be an integer (${kind})`);
}

/** The same limits as numbers, for the common case of a safe integer (i64 always fits). */
const NUMBER_LIMITS = Object.fromEntries(
  Object.entries(LIMITS).map(([kind, [min, max]]) => [kind, [Number(min), Number(max)]]),
) as Record<IntKind, [number, number]>;

function inRange(int: Int, kind: IntKind): boolean {
  if (typeof int === "number") {
    if (kind === "i64") return true;
    const [min, max] = NUMBER_LIMITS[kind];
    return int >= min && int <= max;
  }
  const [min, max] = LIMITS[kind];
  return int >= min && int <= max;
}

function strictInt(value: LegacyJson | undefined): Int | undefined {
  if (typeof value === "number") return Number.isInteger(value) ? value : undefined;
  if (typeof value === "bigint") return value;
  // serde reads `-0` as the integer 0; other lossless numbers have a fraction or exponent.
  if (isLosslessNumber(value) && value.toString() === "-0") return 0;
  return undefined;
}

/**
 * Anki's "int from number": an integer, or a float truncated toward zero, first as i64
 * (saturating), then cast to the target width as Rust's `as` does (u32 clamps negatives to 0).
 */
export function intFromNumber(
  value: LegacyJson | undefined,
  kind: "i32" | "u32" | "i64",
  what: string,
): Int {
  if (typeof value === "number") return castSafe(value, kind);
  const wide = wideInt(value);
  if (wide === undefined) throw badRequest(`${what} must be a number`);
  if (kind === "i64") return narrow(wide);
  if (kind === "i32") return Number(BigInt.asIntN(32, wide));
  return Number(BigInt.asUintN(32, wide < 0n ? 0n : wide));
}

/** The common case, a safe integer: JS's own 32-bit conversions wrap like Rust's casts. */
function castSafe(value: number, kind: "i32" | "u32" | "i64"): Int {
  if (kind === "i64") return value;
  if (kind === "i32") return value | 0;
  return value < 0 ? 0 : value >>> 0;
}

function wideInt(value: LegacyJson | undefined): bigint | undefined {
  const [min, max] = LIMITS.i64;
  if (typeof value === "bigint") return value < min ? min : value > max ? max : value;
  if (!isLosslessNumber(value)) return undefined;
  const float = Number(value.toString());
  if (float <= Number(min)) return min;
  if (float >= Number(max)) return max;
  return BigInt(Math.trunc(float));
}

function narrow(value: bigint): Int {
  return Number.isSafeInteger(Number(value)) ? Number(value) : value;
}

/** Ints compared exactly, whatever mix of number and bigint. */
export function intLess(a: Int, b: Int): boolean {
  return typeof a === "number" && typeof b === "number" ? a < b : BigInt(a) < BigInt(b);
}

/**
 * A positional row (array of exactly `names.length` items, or `minLength` when trailing
 * items may be missing) or the same row as an object keyed by `names`, as serde accepts both.
 */
export function rowValues(
  value: LegacyJson | undefined,
  names: readonly string[],
  what: string,
  minLength = names.length,
): (LegacyJson | undefined)[] {
  if (Array.isArray(value)) {
    if (value.length < minLength || value.length > names.length) {
      throw badRequest(`${what} must have ${names.length} elements`);
    }
    // Read only by position: a missing trailing item reads as undefined, as in a copy.
    return value;
  }
  if (isLegacyObject(value)) return names.map((name) => value[name]);
  throw badRequest(`${what} must be an array`);
}
