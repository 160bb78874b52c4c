/**
 * Printing of f32 values the way Anki's legacy JSON has them (serde_json + ryu): the
 * shortest decimal that reads back as the same f32, integral values keeping ".0".
 * Printing the widened f64 instead would turn 1.3 into 1.2999999523162842.
 */
import { LosslessNumber } from "../../../legacyJson.ts";

/** Legacy JSON value of an f32: the shortest spelling, or `null` when not finite. */
export function f32Json(value: number): LosslessNumber | null {
  const text = formatF32(value);
  return text === null ? null : new LosslessNumber(text);
}

export function f32JsonArray(values: readonly number[]): (LosslessNumber | null)[] {
  return values.map(f32Json);
}

/** Shortest round-trip text of `Math.fround(value)`; `null` for NaN and infinities. */
export function formatF32(value: number): string | null {
  const x = Math.fround(value);
  if (!Number.isFinite(x)) return null;
  const sign = x < 0 || Object.is(x, -0) ? "-" : "";
  if (x === 0) return `${sign}0.0`;
  const { digits, exponent } = shortestDecimal(Math.abs(x));
  return sign + layout(digits, exponent);
}

interface Decimal {
  /** Significant digits, no leading or trailing zeros. */
  digits: string;
  /** Power of ten of the last digit. */
  exponent: number;
}

interface F32Parts {
  /** Integer significand (with the implicit bit for normal numbers). */
  mantissa: bigint;
  /** The value is mantissa * 2^binaryExponent. */
  binaryExponent: number;
  /** True on the lowest significand of a binade, where the gap below is half as wide. */
  narrowBelow: boolean;
}

function decompose(x: number): F32Parts {
  const view = new DataView(new ArrayBuffer(4));
  view.setFloat32(0, x);
  const bits = view.getUint32(0);
  const biased = (bits >>> 23) & 0xff;
  const fraction = bits & 0x7fffff;
  if (biased === 0) {
    return { mantissa: BigInt(fraction), binaryExponent: -149, narrowBelow: false };
  }
  return {
    mantissa: BigInt(fraction | 0x800000),
    binaryExponent: biased - 150,
    narrowBelow: fraction === 0 && biased > 1,
  };
}

/**
 * Exact search, with integers only, for the fewest digits inside the interval of reals
 * that round to `x`; among equally short candidates the one nearest `x` wins.
 */
function shortestDecimal(x: number): Decimal {
  const parts = decompose(x);
  // Work in units of 2^(e-2) so both interval ends are integers.
  const unitExponent = parts.binaryExponent - 2;
  const middle = 4n * parts.mantissa;
  const high = middle + 2n;
  const low = middle - (parts.narrowBelow ? 1n : 2n);
  // Round-half-even on reading: the ends belong to x only when its significand is even.
  const inclusive = parts.mantissa % 2n === 0n;
  for (let exponent = Math.floor(Math.log10(x)) + 2; ; exponent--) {
    const scale = scaleFor(unitExponent, exponent);
    const found = pickInRange(scale, { low, middle, high }, inclusive);
    if (found !== null) return { digits: found.toString(), exponent };
  }
}

interface Scale {
  /** Multiplier applied to a count of units. */
  num: bigint;
  /** Divisor turning it into a count of 10^exponent. */
  den: bigint;
}

function scaleFor(unitExponent: number, decimalExponent: number): Scale {
  const num =
    2n ** BigInt(Math.max(unitExponent, 0)) * 10n ** BigInt(Math.max(-decimalExponent, 0));
  const den =
    2n ** BigInt(Math.max(-unitExponent, 0)) * 10n ** BigInt(Math.max(decimalExponent, 0));
  return { num, den };
}

function pickInRange(
  scale: Scale,
  units: { low: bigint; middle: bigint; high: bigint },
  inclusive: boolean,
): bigint | null {
  const lowNum = units.low * scale.num;
  const highNum = units.high * scale.num;
  const min = inclusive ? ceilDiv(lowNum, scale.den) : lowNum / scale.den + 1n;
  const max = inclusive ? highNum / scale.den : ceilDiv(highNum, scale.den) - 1n;
  if (min > max) return null;
  const nearest = roundHalfEven(units.middle * scale.num, scale.den);
  if (nearest < min) return min;
  if (nearest > max) return max;
  return nearest;
}

function ceilDiv(num: bigint, den: bigint): bigint {
  return (num + den - 1n) / den;
}

function roundHalfEven(num: bigint, den: bigint): bigint {
  const quotient = num / den;
  const twiceRemainder = 2n * (num % den);
  if (twiceRemainder > den) return quotient + 1n;
  if (twiceRemainder === den && quotient % 2n === 1n) return quotient + 1n;
  return quotient;
}

/** ryu's "pretty" layout limits: plain notation unless the exponent is far out. */
export interface Layout {
  /** Largest count of integer digits printed without an exponent. */
  maxIntegerDigits: number;
  /** Smallest (most negative) decimal-point position printed as 0.000ddd. */
  minPoint: number;
}

const F32_LAYOUT: Layout = { maxIntegerDigits: 13, minPoint: -5 };

/** Formats `digits` x 10^exponent; the integral case keeps a trailing ".0". */
export function layout(digits: string, exponent: number, limits: Layout = F32_LAYOUT): string {
  const length = digits.length;
  const pointAt = length + exponent;
  if (exponent >= 0 && pointAt <= limits.maxIntegerDigits) {
    return `${digits}${"0".repeat(exponent)}.0`;
  }
  if (pointAt > 0 && pointAt <= limits.maxIntegerDigits) {
    return `${digits.slice(0, pointAt)}.${digits.slice(pointAt)}`;
  }
  if (pointAt >= limits.minPoint && pointAt <= 0) return `0.${"0".repeat(-pointAt)}${digits}`;
  const mantissa = length === 1 ? digits : `${digits[0]}.${digits.slice(1)}`;
  return `${mantissa}e${pointAt - 1}`;
}
