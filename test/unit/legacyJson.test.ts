/**
 * parseLegacyJson takes JSON.parse only when that gives exactly what the lossless parser
 * gives; these bodies probe the check's edges (numbers beside strings, escapes, exponents).
 */
import { describe, expect, test } from "bun:test";
import { parse } from "lossless-json";
import {
  isLosslessNumber,
  type LegacyJson,
  parseLegacyJson,
  stringifyLegacyJson,
} from "../../src/legacyJson.ts";

/** Every number as its kind and text: `number` and `bigint` for integers, text for the rest. */
function shape(value: LegacyJson | undefined): unknown {
  if (isLosslessNumber(value)) return `lossless:${value.toString()}`;
  if (typeof value === "bigint") return `bigint:${value}`;
  if (Array.isArray(value)) return value.map(shape);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, shape(v)]));
  }
  return value;
}

describe("parseLegacyJson", () => {
  test.each([
    ['{"a":[1,2,"x.y"],"b":"1e5","c":"-0"}', { a: [1, 2, "x.y"], b: "1e5", c: "-0" }],
    ['["a\\"", 1.5]', ['a"', "lossless:1.5"]],
    ['["a\\\\", 1.5]', ["a\\", "lossless:1.5"]],
    ['["a\\\\\\"1.5"]', ['a\\"1.5']],
    ["[1e5, 2]", ["lossless:1e5", 2]],
    ["[1E5]", ["lossless:1E5"]],
    ["[-0]", ["lossless:-0"]],
    ["[-1, -10]", [-1, -10]],
    ["[123456789012345]", [123456789012345]],
    ["[1234567890123456]", [1234567890123456]],
    ["[12345678901234567890]", ["bigint:12345678901234567890"]],
    ["[true, false, null]", [true, false, null]],
    ['{"k":1,"k":2}', { k: 2 }],
    ['{"s":"ends with backslash \\\\","n":3}', { s: "ends with backslash \\", n: 3 }],
  ])("%s", (text, expected) => {
    expect(shape(parseLegacyJson(text))).toEqual(expected);
  });

  test("a __proto__ key is an own property", () => {
    const value = parseLegacyJson('{"__proto__":{"x":1.0}}') as Record<string, LegacyJson>;
    expect(Object.hasOwn(value, "__proto__")).toBe(true);
    expect(stringifyLegacyJson(value)).toBe('{"__proto__":{"x":1.0}}');
  });

  test("invalid text fails either way", () => {
    for (const text of ['["unterminated', '["a"', "[1.]", "{"]) {
      expect(() => parseLegacyJson(text)).toThrow();
      expect(() => parse(text)).toThrow();
    }
  });
});
