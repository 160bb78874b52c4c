/**
 * Native deck row -> legacy JSON object, normal or filtered (Anki: rslib/src/decks/schema11.rs).
 */

import { jsonInt, type LegacyJson, type LegacyObject } from "../../../legacyJson.ts";
import { reinterpretI32, saturatingUnsigned, U32_MAX } from "./casts.ts";
import { InvalidDeckKindError } from "./errors.ts";
import { f32JsonArray } from "./f32.ts";
import {
  keysOwnedByOther,
  type LateKeys,
  mergeInto,
  parseOther,
  reservedExcept,
  withoutReserved,
} from "./otherBlob.ts";
import {
  type DayLimit,
  type DeckCommon,
  decodeDeckCommon,
  decodeDeckKind,
  type FilteredDeck,
  type NormalDeck,
} from "./proto.ts";
import type { DeckRow } from "./rows.ts";

const RESERVED_DECK_KEYS: ReadonlySet<string> = new Set([
  "usn",
  "revToday",
  "newLimit",
  "dyn",
  "reviewLimit",
  "newToday",
  "timeToday",
  "reviewLimitToday",
  "extendNew",
  "mod",
  "newLimitToday",
  "desc",
  "name",
  "lrnToday",
  "conf",
  "browserCollapsed",
  "extendRev",
  "id",
  "collapsed",
  "desiredRetention",
]);

/** Normal-deck keys whose (optional) fields came after the first schema-18 clients. */
const LATE_NORMAL_KEYS: LateKeys = {
  reviewLimit: ["reviewLimit"],
  newLimit: ["newLimit"],
  reviewLimitToday: ["reviewLimitToday"],
  newLimitToday: ["newLimitToday"],
  desiredRetention: ["desiredRetention"],
};

/** Native deck names separate components with U+001F; legacy ones with `::`. */
export function humanDeckName(nativeName: string): string {
  return nativeName.replaceAll("\x1f", "::");
}

export function deckToLegacy(row: DeckRow): LegacyObject {
  const kind = decodeDeckKind(row.kind);
  if (kind === null) throw new InvalidDeckKindError(row.id);
  const common = decodeDeckCommon(row.common);
  const normal = "normal" in kind ? kind.normal : null;
  const legacy = commonToLegacy(row, common, normal);
  const other = parseOther(common.other);
  const fromOther = normal
    ? keysOwnedByOther(other, LATE_NORMAL_KEYS, presentOptionals(normal))
    : new Set<string>();
  // Anki writes the unknown keys between the common and the kind-specific ones; for
  // a duplicated key JSON readers keep the last, so the same order gives the same
  // winner.
  mergeInto(legacy, withoutReserved(other, reservedExcept(RESERVED_DECK_KEYS, fromOther)));
  const specific = "normal" in kind ? normalToLegacy(kind.normal) : filteredToLegacy(kind.filtered);
  return mergeInto(legacy, withoutReserved(specific, fromOther));
}

/** The optional normal-deck fields the bytes carried (absent ones decode as null). */
function presentOptionals(deck: NormalDeck): ReadonlySet<string> {
  return new Set(Object.entries(deck).flatMap(([key, value]) => (value === null ? [] : [key])));
}

function commonToLegacy(row: DeckRow, common: DeckCommon, normal: NormalDeck | null): LegacyObject {
  const day = reinterpretI32(common.lastDayStudied);
  const legacy: LegacyObject = {
    id: jsonInt(row.id),
    mod: jsonInt(row.mtimeSecs),
    name: humanDeckName(row.name),
    usn: jsonInt(row.usn),
    // The four per-day counters share one stored day (§4.2.3).
    lrnToday: [day, common.learningStudied],
    revToday: [day, common.reviewStudied],
    newToday: [day, common.newStudied],
    timeToday: [day, common.millisecondsStudied],
    collapsed: common.studyCollapsed,
    browserCollapsed: common.browserCollapsed,
    desc: normal?.description ?? "",
  };
  if (normal?.markdownDescription) legacy.md = true;
  legacy.dyn = normal ? 0 : 1;
  return legacy;
}

function normalToLegacy(deck: NormalDeck): LegacyObject {
  return {
    conf: jsonInt(deck.configId),
    extendNew: reinterpretI32(deck.extendNew),
    extendRev: reinterpretI32(deck.extendReview),
    reviewLimit: deck.reviewLimit,
    newLimit: deck.newLimit,
    reviewLimitToday: dayLimitToLegacy(deck.reviewLimitToday),
    newLimitToday: dayLimitToLegacy(deck.newLimitToday),
    desiredRetention: retentionPercent(deck.desiredRetention),
  };
}

function dayLimitToLegacy(limit: DayLimit | null): LegacyJson {
  return limit === null ? null : { limit: limit.limit, today: limit.today };
}

/** Stored as a fraction (0.85), legacy as whole percent (85), truncated. */
function retentionPercent(fraction: number | null): number | null {
  if (fraction === null) return null;
  // The product is rounded to f32 before truncation, as the f32 arithmetic does in Anki.
  return saturatingUnsigned(Math.fround(fraction * 100), U32_MAX);
}

function filteredToLegacy(deck: FilteredDeck): LegacyObject {
  return {
    resched: deck.reschedule,
    terms: deck.searchTerms.map((term) => [term.search, reinterpretI32(term.limit), term.order]),
    // Unused, but older clients fail to load a filtered deck without it.
    separate: true,
    delays: deck.delays.length === 0 ? null : f32JsonArray(deck.delays),
    previewDelay: deck.previewDelay,
    previewAgainSecs: deck.previewAgainSecs,
    previewHardSecs: deck.previewHardSecs,
    previewGoodSecs: deck.previewGoodSecs,
  };
}
