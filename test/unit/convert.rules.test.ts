/** The tricky rules of the native -> legacy conversion, one at a time, on hand-built blobs. */
import { describe, expect, test } from "bun:test";
import {
  type LegacyJson,
  type LegacyObject,
  parseLegacyJson,
  stringifyLegacyJson,
} from "../../src/legacyJson.ts";
import { configToLegacy } from "../../src/storage/collection/convert/configEntries.ts";
import { deckToLegacy, humanDeckName } from "../../src/storage/collection/convert/deck.ts";
import { deckConfigToLegacy } from "../../src/storage/collection/convert/deckConfig.ts";
import { clampDeckConfig } from "../../src/storage/collection/convert/deckConfigClamp.ts";
import {
  InvalidConfigValueError,
  InvalidDeckKindError,
} from "../../src/storage/collection/convert/errors.ts";
import { formatF32 } from "../../src/storage/collection/convert/f32.ts";
import {
  fieldToLegacy,
  notetypeToLegacy,
  templateToLegacy,
} from "../../src/storage/collection/convert/notetype.ts";
import type { DeckRow } from "../../src/storage/collection/convert/rows.ts";
import { formatF64, serdeCanonical } from "../../src/storage/collection/convert/serdeNumbers.ts";
import { tagsToLegacy } from "../../src/storage/collection/convert/tags.ts";
import {
  decodeDeckConfig,
  encodeDeckCommon,
  encodeDeckConfig,
  encodeDeckKind,
  encodeFieldConfig,
  encodeNotetypeConfig,
  encodeTemplateConfig,
} from "../helpers/protoBlobs.ts";

const bytes = (hex: string) => Uint8Array.from(Buffer.from(hex.replace(/[^0-9a-f]/gi, ""), "hex"));
const utf8 = (text: string) => new TextEncoder().encode(text);
/** Legacy values compared as text, so 1.0 vs 1 and number spelling count. */
const text = (value: LegacyJson) => stringifyLegacyJson(value);
const json = (source: string) => parseLegacyJson(source);

function deckRow(kind: Uint8Array, common: Uint8Array = new Uint8Array(), name = "Deck"): DeckRow {
  return { id: 5n, name, mtimeSecs: 100n, usn: 3n, common, kind };
}

function configRow(config: Uint8Array) {
  return { id: 1n, name: "Default", mtimeSecs: 0n, usn: 0n, config };
}

/** The default deck config blob of a new collection (spec §3.7). */
const DEFAULT_DECK_CONFIG = bytes(`
  0A 08 0000803F 00002041  12 04 00002041
  22 1C 0000803F 0000803F 0000803F 0000803F 0000803F 0000803F 0000803F
  48 14  50 C8 01  5D 00002040  65 6666A63F  6D 9A99993F  7D 0000803F
  80 01 94 9D 02  88 01 01  90 01 01  98 01 04  A8 01 01  B0 01 08  C0 01 3C
  AD 02 6666663F  C5 02 6666663F  E0 02 01`);

describe("f32 printing", () => {
  test.each([
    [1.3, "1.3"],
    [0.9, "0.9"],
    [1.0, "1.0"],
    [2.5, "2.5"],
    [100, "100.0"],
    [1 / 3, "0.33333334"],
    [1e-6, "0.000001"],
    [1e-7, "1e-7"],
    [16777217, "16777216.0"],
    [1e12, "1000000000000.0"],
    [1e13, "1e13"],
    [3.4e38, "3.4e38"],
    [1.401298464324817e-45, "1e-45"],
    [-0, "-0.0"],
    [-2.5, "-2.5"],
  ])("%p prints as %s", (value, expected) => {
    expect(formatF32(value)).toBe(expected);
  });

  test("non-finite values print as null", () => {
    expect(formatF32(Number.NaN)).toBeNull();
    expect(formatF32(Number.POSITIVE_INFINITY)).toBeNull();
  });

  test("random f32 values read back exactly and no shorter spelling would", () => {
    const view = new DataView(new ArrayBuffer(4));
    for (let i = 0; i < 20000; i++) {
      view.setUint32(0, (Math.random() * 2 ** 32) >>> 0);
      const x = view.getFloat32(0);
      if (!Number.isFinite(x) || x === 0) continue;
      const printed = formatF32(x) ?? "";
      expect(Math.fround(Number(printed))).toBe(x);
      const digits = printed
        .replace(/^-|e.*$/g, "")
        .replace(".", "")
        .replace(/^0+|0+$/g, "");
      if (digits.length > 1) {
        const shorter = Math.abs(x).toPrecision(digits.length - 1);
        expect(Math.fround(Number(shorter))).not.toBe(Math.abs(x));
      }
    }
  });
});

describe("legacy JSON text", () => {
  test("numbers keep their exact spelling and width through a round trip", () => {
    const source =
      '{"a":1.0,"b":12345678901234567890,"c":-0,"d":1e2,"e":0.1,"f":-9007199254740993}';
    expect(stringifyLegacyJson(parseLegacyJson(source))).toBe(source);
    const parsed = parseLegacyJson(source) as LegacyObject;
    expect(parsed.b).toBe(12345678901234567890n);
    expect(parsed.f).toBe(-9007199254740993n);
  });

  test("a repeated key keeps its last value; __proto__ is an ordinary key", () => {
    expect(text(json('{"a":1,"a":2}'))).toBe('{"a":2}');
    const value = json('{"__proto__":{"x":1}}') as LegacyObject;
    expect(Object.keys(value)).toEqual(["__proto__"]);
  });

  test("serde_json re-spelling for stored generic JSON", () => {
    expect(
      text(serdeCanonical(json("[1.50,1e2,-0,1e16,1e15,0.00001,1e-6,18446744073709551616]"))),
    ).toBe("[1.5,100.0,0,1e16,1000000000000000.0,0.00001,1e-6,1.8446744073709552e19]");
    expect(text(serdeCanonical(json("[18446744073709551615,-9223372036854775808]")))).toBe(
      "[18446744073709551615,-9223372036854775808]",
    );
    expect(() => serdeCanonical(json("1e400"))).toThrow();
    expect(formatF64(0.1 + 0.2)).toBe("0.30000000000000004");
  });
});

describe("deck configs", () => {
  test("the spec's default blob converts to the spec's default legacy object", () => {
    const expected = json(`{"id":1,"mod":0,"name":"Default","usn":0,"maxTaken":60,"autoplay":true,
      "timer":0,"replayq":true,
      "new":{"bury":false,"delays":[1.0,10.0],"initialFactor":2500,"ints":[1,4,0],"order":1,"perDay":20},
      "rev":{"bury":false,"ease4":1.3,"ivlFct":1.0,"maxIvl":36500,"perDay":200,"hardFactor":1.2},
      "lapse":{"delays":[10.0],"leechAction":1,"leechFails":8,"minInt":1,"mult":0.0},
      "dyn":false,"newMix":0,"newPerDayMinimum":0,"interdayLearningMix":0,"reviewOrder":0,
      "newSortOrder":0,"newGatherPriority":0,"buryInterdayLearning":false,"fsrsWeights":[],
      "fsrsParams5":[],"fsrsParams6":[],"desiredRetention":0.9,"ignoreRevlogsBeforeDate":"",
      "easyDaysPercentages":[1.0,1.0,1.0,1.0,1.0,1.0,1.0],"stopTimerOnAnswer":false,
      "secondsToShowQuestion":0.0,"secondsToShowAnswer":0.0,"questionAction":0,"answerAction":0,
      "waitForAudio":true,"sm2Retention":0.9,"weightSearch":""}`);
    expect(text(deckConfigToLegacy(configRow(DEFAULT_DECK_CONFIG)))).toBe(text(expected));
  });

  test("our encoder writes the spec's default blob byte for byte", () => {
    expect(encodeDeckConfig(decodeDeckConfig(DEFAULT_DECK_CONFIG))).toEqual(DEFAULT_DECK_CONFIG);
  });

  test("clamp: out of range and NaN fall back, f32 bounds are inclusive", () => {
    const config = decodeDeckConfig(DEFAULT_DECK_CONFIG);
    const clamped = clampDeckConfig({
      ...config,
      newPerDay: 10000,
      capAnswerTimeToSecs: 0,
      initialEase: Math.fround(1.3),
      easyMultiplier: Number.NaN,
      desiredRetention: Math.fround(0.7),
      historicalRetention: Math.fround(0.98),
      hardMultiplier: Math.fround(1.3),
      maximumReviewInterval: 36501,
    });
    expect(clamped.newPerDay).toBe(20);
    expect(clamped.capAnswerTimeToSecs).toBe(60);
    expect(clamped.initialEase).toBe(2.5);
    expect(clamped.easyMultiplier).toBe(Math.fround(1.3));
    expect(clamped.desiredRetention).toBe(Math.fround(0.7));
    expect(clamped.historicalRetention).toBe(Math.fround(0.9));
    expect(clamped.hardMultiplier).toBe(Math.fround(1.3));
    expect(clamped.maximumReviewInterval).toBe(36500);
  });

  test("inverted new.order, negated booleans, clamped maxTaken, enum folding", () => {
    const legacy = deckConfigToLegacy(
      configRow(
        encodeDeckConfig({
          newCardInsertOrder: 1,
          disableAutoplay: true,
          skipQuestionWhenReplayingAnswer: true,
          showTimer: true,
          leechAction: 7,
          questionAction: 2,
          answerAction: 5,
          reviewOrder: 99,
          initialEase: 2.3,
          graduatingIntervalGood: 70000,
        }),
      ),
    );
    const top = legacy as Record<string, LegacyJson>;
    const sub = (key: string) => legacy[key] as LegacyObject;
    expect(sub("new").order).toBe(0);
    expect(top.autoplay).toBe(false);
    expect(top.replayq).toBe(false);
    expect(top.timer).toBe(1);
    expect(top.maxTaken).toBe(60);
    expect(sub("lapse").leechAction).toBe(0);
    expect(top.questionAction).toBe(0);
    expect(top.answerAction).toBe(0);
    expect(top.reviewOrder).toBe(99);
    // f32 product 2.3 * 1000 is 2300.0; an f64 product would truncate to 2299.
    expect(sub("new").initialFactor).toBe(2300);
    // 70000 is out of the clamp range, so it is replaced before the u16 cast.
    expect(text(sub("new").ints ?? null)).toBe("[1,4,0]");
  });

  test("unknown keys: nested new/rev/lapse entries merge, reserved ones are dropped", () => {
    const other = utf8(
      '{"new":{"perDay":5,"kept":1},"rev":[1],"lapse":{"mult":9,"z":null},"id":5,"extra":[1.50]}',
    );
    const legacy = deckConfigToLegacy(configRow(encodeDeckConfig({ other })));
    // The native value (0, in range) wins over the stale copy in `other`.
    expect((legacy.new as LegacyObject).perDay).toBe(0);
    expect((legacy.new as LegacyObject).kept).toBe(1);
    expect(Object.keys(legacy.rev as LegacyObject)).toEqual([
      "bury",
      "ease4",
      "ivlFct",
      "maxIvl",
      "perDay",
      "hardFactor",
    ]);
    expect((legacy.lapse as LegacyObject).z).toBeNull();
    expect(text((legacy.lapse as LegacyObject).mult ?? null)).toBe("0.0");
    expect(legacy.id).toBe(1);
    expect(text(legacy.extra ?? null)).toBe("[1.5]");
  });

  test("late keys an older client kept in other stand when its bytes lack their fields", () => {
    // As a 2.1.60 client stores a config a newer device or an add-on wrote FSRS keys to:
    // its schema has no fields for them, so they sit in `other`, verbatim.
    const params =
      "[0.4,0.6,2.4,5.8,4.93,0.94,0.86,0.01,1.49,0.14,0.94,2.18,0.05,0.34,1.26,0.29,2.61,0.5,0.6]";
    const other = utf8(
      `{"desiredRetention":0.87,"fsrsParams5":${params},"fsrsWeights":[1,2],` +
        '"sm2Retention":0.8,"waitForAudio":false,"easyDaysPercentages":[1.0,0.5],"addon":1}',
    );
    const legacy = deckConfigToLegacy(configRow(encodeDeckConfig({ newPerDay: 7, other })));
    expect(text(legacy.desiredRetention ?? null)).toBe("0.87");
    expect(text(legacy.fsrsParams5 ?? null)).toBe(params);
    expect(text(legacy.fsrsWeights ?? null)).toBe("[1,2]");
    expect(text(legacy.sm2Retention ?? null)).toBe("0.8");
    expect(legacy.waitForAudio).toBe(false);
    expect(text(legacy.easyDaysPercentages ?? null)).toBe("[1.0,0.5]");
    expect(legacy.addon).toBe(1);
    // Keys the bytes have no value for and `other` lacks get the defaults as before.
    expect(text(legacy.fsrsParams6 ?? null)).toBe("[]");
    expect(text(legacy.secondsToShowQuestion ?? null)).toBe("0.0");
    expect((legacy.new as LegacyObject).perDay).toBe(7);
  });

  test("the retired 23.10 field 39 prints as rescheduleFsrsCards only when set", () => {
    const set = deckConfigToLegacy(configRow(encodeDeckConfig({ rescheduleFsrsCards: true })));
    expect(set.rescheduleFsrsCards).toBe(true);
    const unset = deckConfigToLegacy(configRow(encodeDeckConfig({})));
    expect("rescheduleFsrsCards" in unset).toBe(false);
  });

  test("a late field the bytes carry wins over a stale copy in other", () => {
    const other = utf8('{"desiredRetention":0.87,"fsrsParams5":[1],"newMix":2}');
    const config = encodeDeckConfig({
      desiredRetention: 0.8,
      fsrsParams_5: [0.5],
      newMix: 1,
      other,
    });
    const legacy = deckConfigToLegacy(configRow(config));
    expect(text(legacy.desiredRetention ?? null)).toBe("0.8");
    expect(text(legacy.fsrsParams5 ?? null)).toBe("[0.5]");
    expect(legacy.newMix).toBe(1);
  });

  test("an unparsable other blob is ignored", () => {
    const legacy = deckConfigToLegacy(configRow(encodeDeckConfig({ other: utf8("not json") })));
    expect(Object.keys(legacy)).toHaveLength(33);
  });
});

describe("decks", () => {
  test("native names use U+001F between components", () => {
    expect(humanDeckName("Lang\x1fGerman\x1fVerbs")).toBe("Lang::German::Verbs");
    const legacy = deckToLegacy(deckRow(encodeDeckKind({ normal: {} }), undefined, "a\x1fb"));
    expect(legacy.name).toBe("a::b");
  });

  test("*Today arrays share the stored day, printed as i32", () => {
    const common = encodeDeckCommon({
      lastDayStudied: 2 ** 32 - 3,
      newStudied: -4,
      reviewStudied: 7,
      learningStudied: 2,
      millisecondsStudied: 1234,
    });
    const legacy = deckToLegacy(deckRow(encodeDeckKind({ normal: {} }), common));
    expect(
      text([legacy.lrnToday, legacy.revToday, legacy.newToday, legacy.timeToday] as LegacyJson),
    ).toBe("[[-3,2],[-3,7],[-3,-4],[-3,1234]]");
  });

  test("normal deck: nulls for absent optionals, md only when true, retention in percent", () => {
    const plain = deckToLegacy(deckRow(bytes("0A 02 08 01"), bytes("08 01 10 01"), "Default"));
    expect(text(plain)).toBe(
      text(
        json(`{"id":5,"mod":100,"name":"Default","usn":3,"lrnToday":[0,0],"revToday":[0,0],
          "newToday":[0,0],"timeToday":[0,0],"collapsed":true,"browserCollapsed":true,"desc":"",
          "dyn":0,"conf":1,"extendNew":0,"extendRev":0,"reviewLimit":null,"newLimit":null,
          "reviewLimitToday":null,"newLimitToday":null,"desiredRetention":null}`),
      ),
    );
    const rich = deckToLegacy(
      deckRow(
        encodeDeckKind({
          normal: {
            markdownDescription: true,
            description: "d",
            reviewLimit: 0,
            newLimitToday: { limit: 3, today: 9 },
            desiredRetention: 0.29,
            extendNew: 2 ** 32 - 1,
          },
        }),
      ),
    );
    expect(rich.md).toBe(true);
    expect(rich.desc).toBe("d");
    expect(rich.reviewLimit).toBe(0);
    expect(text(rich.newLimitToday ?? null)).toBe('{"limit":3,"today":9}');
    // f32 0.29 * 100 rounds to 29.0 in f32 (an f64 product would truncate to 28).
    expect(rich.desiredRetention).toBe(29);
    expect(rich.extendNew).toBe(-1);
  });

  test("filtered deck: separate is always true, empty delays are null, limits as i32", () => {
    const legacy = deckToLegacy(
      deckRow(
        encodeDeckKind({
          filtered: {
            reschedule: true,
            searchTerms: [{ search: "is:due", limit: 2 ** 32 - 2, order: 42 }],
            previewAgainSecs: 60,
          },
        }),
      ),
    );
    expect(text(legacy)).toContain(
      '"dyn":1,"resched":true,"terms":[["is:due",-2,42]],"separate":true,"delays":null,' +
        '"previewDelay":0,"previewAgainSecs":60,"previewHardSecs":0,"previewGoodSecs":0',
    );
    expect(legacy.desc).toBe("");
    expect("md" in legacy).toBe(false);
    const withDelays = deckToLegacy(deckRow(encodeDeckKind({ filtered: { delays: [1.5, 10] } })));
    expect(text(withDelays.delays ?? null)).toBe("[1.5,10.0]");
  });

  test("unknown deck keys survive, reserved ones do not override native values", () => {
    const common = encodeDeckCommon({ other: utf8('{"addon":{"k":[1]},"conf":99,"name":"x"}') });
    const legacy = deckToLegacy(deckRow(encodeDeckKind({ normal: { configId: 1n } }), common));
    expect(text(legacy.addon ?? null)).toBe('{"k":[1]}');
    expect(legacy.conf).toBe(1);
    expect(legacy.name).toBe("Deck");
  });

  test("late normal-deck keys in other stand when the optional fields are absent", () => {
    const common = encodeDeckCommon({
      other: utf8('{"desiredRetention":87,"reviewLimit":3,"newLimitToday":{"limit":5,"today":9}}'),
    });
    const old = deckToLegacy(deckRow(encodeDeckKind({ normal: { configId: 1n } }), common));
    expect(old.desiredRetention).toBe(87);
    expect(old.reviewLimit).toBe(3);
    expect(text(old.newLimitToday ?? null)).toBe('{"limit":5,"today":9}');
    expect(old.newLimit).toBeNull();
    const current = deckToLegacy(
      deckRow(
        encodeDeckKind({ normal: { configId: 1n, reviewLimit: 0, desiredRetention: 0.8 } }),
        common,
      ),
    );
    expect(current.reviewLimit).toBe(0);
    expect(current.desiredRetention).toBe(80);
    // Filtered decks have none of these fields; reserved copies stay dropped.
    const filtered = deckToLegacy(deckRow(encodeDeckKind({ filtered: {} }), common));
    expect("reviewLimit" in filtered).toBe(false);
  });

  test("a kind blob with neither variant is refused", () => {
    expect(() => deckToLegacy(deckRow(new Uint8Array()))).toThrow(InvalidDeckKindError);
  });
});

describe("notetypes", () => {
  const row = (config: Uint8Array) => ({ id: 7n, name: "N", mtimeSecs: 1n, usn: -1n, config });

  test("widths wrap like Rust casts; optional keys are omitted or null as Anki does", () => {
    const legacy = notetypeToLegacy(
      row(
        encodeNotetypeConfig({
          kind: 1,
          sortFieldIdx: 65537,
          reqs: [
            { cardOrd: 0, kind: 1, fieldOrds: [0, 65536] },
            { cardOrd: 1, kind: 2, fieldOrds: [] },
            { cardOrd: 2, kind: 9, fieldOrds: [1] },
          ],
          originalId: 0n,
        }),
      ),
      [],
      [],
    );
    expect(legacy.type).toBe(1);
    expect(legacy.sortf).toBe(1);
    expect(legacy.did).toBeNull();
    expect(text(legacy.req ?? null)).toBe('[[0,"any",[0,0]],[1,"all",[]],[2,"none",[1]]]');
    expect("originalStockKind" in legacy).toBe(false);
    expect(legacy.originalId).toBe(0);
    const bare = notetypeToLegacy(row(new Uint8Array()), [], []);
    expect("originalId" in bare).toBe(false);
  });

  test("fields and templates: 64-bit ids exact, u16/u8 casts, unknown keys kept", () => {
    const field = fieldToLegacy({
      ord: 2,
      name: "F",
      config: encodeFieldConfig({
        id: -7420285142401994472n,
        fontSize: 70000,
        tag: 0,
        other: utf8('{"media":["a.mp3"],"size":1}'),
      }),
    });
    expect(field.id).toBe(-7420285142401994472n);
    expect(field.size).toBe(4464);
    expect(field.tag).toBe(0);
    expect(field.ord).toBe(2);
    expect(text(field.media ?? null)).toBe('["a.mp3"]');
    const template = templateToLegacy({
      ord: 0,
      name: "T",
      config: encodeTemplateConfig({ browserFontSize: 300, targetDeckId: -5n }),
    });
    expect(template.bsize).toBe(44);
    expect(template.did).toBeNull();
    expect(template.id).toBeNull();
  });

  test("late notetype, field and template keys in other stand when the bytes lack them", () => {
    const notetype = notetypeToLegacy(
      row(
        encodeNotetypeConfig({ other: utf8('{"originalStockKind":2,"originalId":9,"css":"x"}') }),
      ),
      [],
      [],
    );
    expect(notetype.originalStockKind).toBe(2);
    expect(notetype.originalId).toBe(9);
    expect(notetype.css).toBe("");
    const fieldOther = utf8(
      '{"excludeFromSearch":true,"plainText":true,"id":-7420285142401994472,"tag":3,"rtl":true}',
    );
    const field = fieldToLegacy({
      ord: 0,
      name: "F",
      config: encodeFieldConfig({ other: fieldOther }),
    });
    expect(field.excludeFromSearch).toBe(true);
    expect(field.plainText).toBe(true);
    expect(field.id).toBe(-7420285142401994472n);
    expect(field.tag).toBe(3);
    // rtl has a field in every schema-18 client: absent means false.
    expect(field.rtl).toBe(false);
    const current = fieldToLegacy({
      ord: 0,
      name: "F",
      config: encodeFieldConfig({
        plainText: true,
        id: 5n,
        other: utf8('{"plainText":false,"id":6}'),
      }),
    });
    expect(current.plainText).toBe(true);
    expect(current.id).toBe(5);
    const template = templateToLegacy({
      ord: 0,
      name: "T",
      config: encodeTemplateConfig({ other: utf8('{"id":12,"qfmt":"x"}') }),
    });
    expect(template.id).toBe(12);
    expect(template.qfmt).toBe("");
  });
});

describe("config and tags", () => {
  test("config values are parsed and re-spelled; a bad one is an error", () => {
    const conf = configToLegacy([
      { key: "a", val: utf8("1.50") },
      { key: "b", val: utf8("null") },
      { key: "__proto__", val: utf8("[1]") },
    ]);
    expect(text(conf)).toBe('{"a":1.5,"b":null,"__proto__":[1]}');
    expect(() => configToLegacy([{ key: "x", val: utf8("{") }])).toThrow(InvalidConfigValueError);
  });

  test("tags map to their usn", () => {
    expect(
      text(
        tagsToLegacy([
          { tag: "Lang::Ü", usn: -1n },
          { tag: "b", usn: 5n },
        ]),
      ),
    ).toBe('{"Lang::Ü":-1,"b":5}');
  });
});
