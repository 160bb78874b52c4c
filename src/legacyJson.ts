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
 * True when plain JSON.parse gives exactly what the lossless parse would: no number token
 * outside strings has a fraction (`.`), an exponent (`e`/`E` after a digit), is `-0`, or has
 * 16 digits and more (could pass 2^53). Then every number is an integer of at most 15 digits,
 * which `parseNumber` returns as the same `number` JSON.parse gives; strings, duplicate keys
 * (the last wins) and `__proto__` keys (an own property) come out the same from both parsers.
 * One pass; string contents (a sentence's ".") are skipped with `indexOf`, which is what
 * makes it cheaper than the parse itself on note-heavy bodies.
 */
function plainParseIsExact(text: string): boolean {
  let digits = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= CHAR_0 && c <= CHAR_9) {
      if (++digits >= 16) return false;
      continue;
    }
    if (c === QUOTE) {
      i = stringEnd(text, i);
      if (i < 0) return true; // unterminated: either parser rejects it
    } else if (c === DOT) return false;
    else if ((c === LOWER_E || c === UPPER_E) && digits > 0) return false;
    else if (c === MINUS && text.charCodeAt(i + 1) === CHAR_0) return false;
    digits = 0;
  }
  return true;
}

const CHAR_0 = 0x30;
const CHAR_9 = 0x39;
const QUOTE = 0x22;
const DOT = 0x2e;
const LOWER_E = 0x65;
const UPPER_E = 0x45;
const MINUS = 0x2d;
const BACKSLASH = 0x5c;

/** Index of the quote closing the string opened at `open`, or -1. */
function stringEnd(text: string, open: number): number {
  let from = open + 1;
  for (;;) {
    const end = text.indexOf('"', from);
    if (end < 0) return -1;
    let slashes = 0;
    while (text.charCodeAt(end - 1 - slashes) === BACKSLASH) slashes++;
    if (slashes % 2 === 0) return end;
    from = end + 1;
  }
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
