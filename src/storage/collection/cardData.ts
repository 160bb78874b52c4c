/**
 * The `cards.data` column as Anki rewrites it whenever it stores a card (collection-format
 * §6.2): known keys only, FSRS values rounded as f32, invalid values dropped, `{}` when empty.
 * Storing the normalised text keeps what we send identical to what Anki's server would send.
 */
import { isLosslessNumber, LosslessNumber, parse } from "lossless-json";
import { formatF32 } from "./convert/f32.ts";

const EMPTY = "{}";
const KNOWN = new Set(["pos", "s", "d", "dr", "decay", "lrt", "cd"]);
const U32_MAX = 0xffff_ffffn;
const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;

class InvalidCardData extends Error {}

/**
 * Already in the normal form, and common: only `pos` and/or `lrt`, integers without leading
 * zeros (no `-0`) in range (u32 fits in 9 digits, i64 in 18), which `serialize` would write
 * back unchanged.
 */
const POS = '"pos":(?:0|[1-9]\\d{0,8})';
const LRT = '"lrt":(?:0|-?[1-9]\\d{0,17})';
const PLAIN_INTEGERS = new RegExp(`^\\{(?:${POS}(?:,${LRT})?|${LRT})?\\}$`);

/** Whether `data` is already what `normalizeCardData` would return, checked without parsing. */
export function isPlainCardData(data: string): boolean {
  return data === EMPTY || PLAIN_INTEGERS.test(data);
}

export function normalizeCardData(data: string): string {
  if (data === EMPTY || data === "") return EMPTY;
  if (PLAIN_INTEGERS.test(data)) return data;
  let parsed: Record<string, unknown>;
  try {
    parsed = parseObject(data);
  } catch {
    // Anki falls back to all-default data when the text does not read as a whole.
    return EMPTY;
  }
  return serialize(parsed);
}

function parseObject(text: string): Record<string, unknown> {
  const value = parse(text, null, {
    parseNumber: (digits) => new LosslessNumber(digits),
    onDuplicateKey: ({ key, newValue }) => {
      if (KNOWN.has(key)) throw new InvalidCardData(`duplicate ${key}`);
      return newValue;
    },
  });
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new InvalidCardData("not an object");
  }
  const object = value as Record<string, unknown>;
  if (Object.hasOwn(object, "cd") && typeof object.cd !== "string") {
    throw new InvalidCardData("cd is not a string");
  }
  return object;
}

function serialize(data: Record<string, unknown>): string {
  const parts: string[] = [];
  const add = (key: string, text: string | null | undefined) => {
    if (text !== undefined) parts.push(`${JSON.stringify(key)}:${text ?? "null"}`);
  };
  add("pos", integerText(data.pos, 0n, U32_MAX));
  // Stability and difficulty only exist together (Anki's memory state).
  const s = f32Value(data.s);
  const d = f32Value(data.d);
  if (s !== undefined && d !== undefined) {
    add("s", formatF32(roundTo(s, 4)));
    add("d", formatF32(roundTo(d, 3)));
  }
  const dr = f32Value(data.dr);
  if (dr !== undefined) add("dr", formatF32(roundTo(dr, 2)));
  const decay = f32Value(data.decay);
  if (decay !== undefined) add("decay", formatF32(roundTo(decay, 3)));
  add("lrt", integerText(data.lrt, I64_MIN, I64_MAX));
  const cd = typeof data.cd === "string" ? data.cd : "";
  if (cd !== "" && cd !== EMPTY) add("cd", JSON.stringify(cd));
  return `{${parts.join(",")}}`;
}

/**
 * Integer literal text inside [min, max]; anything else (floats included) is dropped, and so
 * is `-0`, which serde_json reads as the float -0.0.
 */
function integerText(value: unknown, min: bigint, max: bigint): string | undefined {
  if (!isLosslessNumber(value)) return undefined;
  const text = value.toString();
  if (!/^-?\d+$/.test(text) || text === "-0") return undefined;
  const n = BigInt(text);
  return n >= min && n <= max ? n.toString() : undefined;
}

/** Any JSON number, read as f64 and then narrowed to f32 (serde's path). */
function f32Value(value: unknown): number | undefined {
  return isLosslessNumber(value) ? Math.fround(Number(value.toString())) : undefined;
}

/** Anki rounds in f32: scale, round half away from zero, scale back. */
function roundTo(value: number, places: number): number {
  const factor = Math.fround(10 ** places);
  const scaled = Math.fround(value * factor);
  const rounded = Math.sign(scaled) * Math.round(Math.abs(scaled));
  return Math.fround(rounded / factor);
}
