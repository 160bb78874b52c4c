/**
 * JSON text <-> values for Anki's legacy (schema 11) objects, without number loss. Schema-11
 * collections store this JSON and normal sync exchanges it, so storage and sync share this
 * codec (it depends on neither).
 *
 * Number model (stable under parse -> stringify -> parse):
 * - integers that are safe in a double -> `number`;
 * - larger integers (random 64-bit field/template ids) -> `bigint`;
 * - anything written with a fraction or exponent -> `LosslessNumber`, keeping the exact
 *   text, so `1.0` stays a float for Rust readers that reject floats for integer keys
 *   and f32 values keep their shortest spelling.
 */
import { isInteger, isLosslessNumber, LosslessNumber, parse, stringify } from "lossless-json";

export { isLosslessNumber, LosslessNumber } from "lossless-json";

export type LegacyJson =
  | null
  | boolean
  | string
  | number
  | bigint
  | LosslessNumber
  | LegacyJson[]
  | LegacyObject;

export interface LegacyObject {
  [key: string]: LegacyJson;
}

function parseNumber(text: string): number | bigint | LosslessNumber {
  if (!isInteger(text) || text === "-0") return new LosslessNumber(text);
  const value = Number(text);
  return Number.isSafeInteger(value) ? value : BigInt(text);
}

/**
 * Number tokens `JSON.parse` could read differently from `parseNumber`: a fraction (`.`), an
 * exponent (`e` after a digit; `true`/`false` have none), `-0`, or 16 digits and more (could
 * pass 2^53). Without any of them every number is an integer of at most 15 digits, which
 * `parseNumber` returns as the same `number` JSON.parse gives; strings, duplicate keys (the last
 * wins) and `__proto__` keys (an own property) come out the same from both parsers.
 */
const RISKY_NUMBER = /\d[eE]|\.|\d{16}|-0/;
const JSON_STRING = /"(?:[^"\\]|\\.)*"/g;

/** True when plain JSON.parse gives exactly what the lossless parse would. */
function plainParseIsExact(text: string): boolean {
  // Most sync bodies (rows of ids, usns, times) pass the first test; text in strings can
  // trip it (a sentence's "."), so strings are blanked out before the second.
  return !RISKY_NUMBER.test(text) || !RISKY_NUMBER.test(text.replace(JSON_STRING, '""'));
}

/**
 * Parses JSON text; a repeated key keeps its last value, as serde_json maps do. Bodies whose
 * numbers are all small integers take the native parser (several times faster); the result
 * is the same either way.
 */
export function parseLegacyJson(text: string): LegacyJson {
  if (plainParseIsExact(text)) return JSON.parse(text) as LegacyJson;
  return parse(text, null, {
    parseNumber,
    onDuplicateKey: ({ newValue }) => newValue,
  }) as LegacyJson;
}

/** Compact JSON text. Non-finite `number`s print as `null`, like serde_json. */
export function stringifyLegacyJson(value: LegacyJson): string {
  const text = stringify(value);
  if (text === undefined) throw new TypeError("value has no JSON representation");
  return text;
}

export function isLegacyObject(value: LegacyJson | undefined): value is LegacyObject {
  return (
    typeof value === "object" && value !== null && !Array.isArray(value) && !isLosslessNumber(value)
  );
}

/** An integer as the number model above wants it: `number` when safe, else `bigint`. */
export function jsonInt(value: number | bigint): number | bigint {
  if (typeof value === "number") return value;
  const asNumber = Number(value);
  return Number.isSafeInteger(asNumber) ? asNumber : value;
}

/** Sets an own property even for keys such as `__proto__` (tag and config names are user text). */
export function putKey(target: LegacyObject, key: string, value: LegacyJson): void {
  Object.defineProperty(target, key, {
    value,
    writable: true,
    enumerable: true,
    configurable: true,
  });
}
