import { describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { normalizeCardData } from "../../src/storage/collection/cardData.ts";
import {
  normalizeDeckName,
  normalizeNoteTags,
  normalizeTagName,
} from "../../src/storage/collection/names.ts";
import { findUnicase } from "../../src/storage/collection/unicase.ts";

const root = resolve(import.meta.dir, "../..");
const python = join(root, ".venv/bin/python");

describe("deck names (collection-format §4.2.6)", () => {
  test.each([
    ["foo::bar", "foo::bar"],
    ["foo::::baz", "foo::blank::baz"],
    ["foo:::bar", "foo::bar"],
    ["foo:::bar:baz: ", "foo::bar:baz"],
    ["fo\x1fo::ba\nr", "foo::bar"],
    ["  A  ::\u3000B", "A::B"],
    ["", "blank"],
  ])("%p", (name, normalized) => {
    expect(normalizeDeckName(name)).toBe(normalized);
  });
});

describe("tag names", () => {
  test.each([
    ["vocab", "vocab"],
    ["a b", "ab"],
    ["a::", "a::blank"],
    ["::x", "blank::x"],
    ["\ufa47", "\u6f22"],
    [" trim\u3000::\tx ", "trim::x"],
  ])("%p", (name, normalized) => {
    expect(normalizeTagName(name)).toBe(normalized);
  });

  test("a note's tag list is re-spaced but not sorted or de-duplicated", () => {
    expect(normalizeNoteTags("b  a\u3000b")).toBe(" b a b ");
    expect(normalizeNoteTags("   ")).toBe("");
    expect(normalizeNoteTags("")).toBe("");
  });
});

describe("unicase name lookup", () => {
  test.each([
    [["foo", "Straße", "STRASSE"], "strasse", 1],
    [["a", "B"], "b", 1],
    [["x"], "y", -1],
    [["ſource"], "SOURCE", 0],
    [["source"], "ſOURCE", 0],
    [["ss", "ß"], "SS", 0],
    [["Ǆ", "x"], "ǆ", 0],
  ] as [string[], string, number][])("%p has %p at %p", (names, name, index) => {
    expect(findUnicase(names, name)).toBe(index);
  });
});

describe("card data", () => {
  test.each([
    ["", "{}"],
    ["{}", "{}"],
    ["garbage", "{}"],
    ['{"s":1}', "{}"],
    ['{"pos":5.0,"s":2,"d":3}', '{"s":2.0,"d":3.0}'],
    ['{"cd":5,"s":1,"d":2}', "{}"],
  ])("%p", (raw, stored) => {
    expect(normalizeCardData(raw)).toBe(stored);
  });
});

describe.skipIf(!existsSync(python))("card data agrees with Anki itself", () => {
  const raws = [
    "",
    "{}",
    "[]",
    "null",
    "garbage",
    '{"s":1}',
    '{"s":1.23456,"d":5.5555,"dr":0.876,"decay":0.15425,"lrt":1700000000,"cd":"{\\"a\\":1}","x":1}',
    '{"pos":5.0,"s":2,"d":3}',
    '{"pos":7,"lrt":-5}',
    '{"pos":-1,"lrt":1.5}',
    '{"pos":4294967295}',
    '{"pos":4294967296}',
    '{"cd":5,"s":1,"d":2}',
    '{"cd":"","s":0.00005,"d":-0.0005}',
    '{"cd":"{}","dr":0.125,"decay":-0.0005}',
    '{"s":123456.789,"d":10,"dr":1e-3}',
    '{"s":1e39,"d":1}',
    '{"s":"1","d":2}',
    '{"s":null,"d":2,"dr":0.9}',
    '{"s":1,"s":2,"d":3}',
    '{"x":1,"x":2,"dr":0.5}',
    '{"s":0.95,"d":0.0125,"dr":0.555,"decay":0.1235}',
    '{"lrt":9223372036854775807,"pos":0}',
    '{"lrt":9223372036854775808}',
    '{"cd":"{\\"v\\":\\"\\u00e9\\\\n\\"}"}',
    // Texts near the integer-only form returned as they are (normalizeCardData's fast path).
    '{"lrt":1727429880}',
    '{"pos":0,"lrt":0}',
    '{"pos":123456789,"lrt":-123456789012345678}',
    '{"lrt":-0}',
    '{"pos":-0,"lrt":5}',
    '{"pos":01}',
    '{"pos":1"lrt":2}',
    '{"pos":1,}',
    '{"lrt":1,"pos":2}',
    '{"lrt":1.0}',
    ' {"lrt":1}',
  ];
  test("normalisation of many data texts", () => {
    const proc = Bun.spawnSync([python, join(root, "test/fixtures/card_data.py")], {
      stdin: new TextEncoder().encode(JSON.stringify(raws)),
      stdout: "pipe",
      stderr: "pipe",
    });
    expect(proc.stderr.toString()).toBe("");
    expect(raws.map(normalizeCardData)).toEqual(JSON.parse(proc.stdout.toString()));
  });
});
