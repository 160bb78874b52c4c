/**
 * Strict reading of legacy (schema 11) JSON for the 11 -> 18 upgrade. Anki's own upgrade reads
 * the same JSON with serde, which tolerates some oddities its own way (strings for numbers,
 * `default_on_invalid`, numbers for booleans); reproducing each of those is not worth it for a
 * download. Here anything but the shapes Anki itself writes throws `NotUpgradableError`, and the
 * caller sends the file in schema 11, which the client upgrades itself as before.
 */
import {
  isLegacyObject,
  isLosslessNumber,
  type LegacyJson,
  type LegacyObject,
} from "../../../legacyJson.ts";
import { NotUpgradableError } from "./errors.ts";

export const I32 = { min: -(2n ** 31n), max: 2n ** 31n - 1n } as const;
export const U32 = { min: 0n, max: 2n ** 32n - 1n } as const;
export const U16 = { min: 0n, max: 2n ** 16n - 1n } as const;
export const U8 = { min: 0n, max: 255n } as const;
export const I64 = { min: -(2n ** 63n), max: 2n ** 63n - 1n } as const;
export type Range = { min: bigint; max: bigint };

/** One legacy object being read: every key read is marked, the rest are its `other` keys. */
export class LegacyReader {
  private readonly used = new Set<string>();

  constructor(
    readonly object: LegacyObject,
    private readonly what: string,
  ) {}

  static of(value: LegacyJson | undefined, what: string): LegacyReader {
    if (!isLegacyObject(value)) throw new NotUpgradableError(`${what} is not an object`);
    return new LegacyReader(value, what);
  }

  /** The value under `key`, or undefined when absent; marks the key as known. */
  take(key: string): LegacyJson | undefined {
    this.used.add(key);
    return Object.hasOwn(this.object, key) ? this.object[key] : undefined;
  }

  required(key: string): LegacyJson {
    const value = this.take(key);
    if (value === undefined) throw this.bad(key, "is missing");
    return value;
  }

  int(key: string, range: Range, fallback?: bigint): bigint {
    const value = this.take(key);
    if (value === undefined && fallback !== undefined) return fallback;
    return toInt(value, range, () => this.bad(key, "is not an integer in range"));
  }

  /** `Option<int>` with serde's default: absent or null is null. */
  optInt(key: string, range: Range): bigint | null {
    const value = this.take(key);
    if (value === undefined || value === null) return null;
    return toInt(value, range, () => this.bad(key, "is not an integer in range"));
  }

  f32(key: string, fallback?: number): number {
    const value = this.take(key);
    if (value === undefined && fallback !== undefined) return fallback;
    return toF32(value, () => this.bad(key, "is not a number"));
  }

  f32Array(key: string, fallback?: number[]): number[] {
    const value = this.take(key);
    if (value === undefined && fallback !== undefined) return fallback;
    if (!Array.isArray(value)) throw this.bad(key, "is not an array");
    return value.map((item) => toF32(item, () => this.bad(key, "has a non-number")));
  }

  bool(key: string, fallback?: boolean): boolean {
    const value = this.take(key);
    if (value === undefined && fallback !== undefined) return fallback;
    if (typeof value !== "boolean") throw this.bad(key, "is not a boolean");
    return value;
  }

  str(key: string, fallback?: string): string {
    const value = this.take(key);
    if (value === undefined && fallback !== undefined) return fallback;
    if (typeof value !== "string") throw this.bad(key, "is not a string");
    return value;
  }

  /** The keys no field read: what Anki keeps in the `other` blob. */
  rest(): LegacyObject {
    const rest: LegacyObject = {};
    for (const [key, value] of Object.entries(this.object)) {
      if (!this.used.has(key)) Object.defineProperty(rest, key, { value, enumerable: true });
    }
    return rest;
  }

  bad(key: string, problem: string): NotUpgradableError {
    return new NotUpgradableError(`${this.what}: ${key} ${problem}`);
  }
}

export function toInt(value: LegacyJson | undefined, range: Range, fail: () => Error): bigint {
  let int: bigint;
  if (typeof value === "number" && Number.isInteger(value)) int = BigInt(value);
  else if (typeof value === "bigint") int = value;
  else throw fail();
  if (int < range.min || int > range.max) throw fail();
  return int;
}

/** serde reads an f32 as the nearest f32 of the JSON number. */
export function toF32(value: LegacyJson | undefined, fail: () => Error): number {
  if (typeof value === "number") return Math.fround(value);
  if (typeof value === "bigint") {
    // Beyond 2^53 a double rounding could differ from Rust's direct cast.
    if (value > 2n ** 53n || value < -(2n ** 53n)) throw fail();
    return Math.fround(Number(value));
  }
  if (isLosslessNumber(value)) {
    const number = Number(value.toString());
    if (!Number.isFinite(number)) throw fail();
    return Math.fround(number);
  }
  throw fail();
}
