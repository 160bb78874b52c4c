/**
 * Legacy deck JSON -> schema 18 `decks` row, as a client's own upgrade stores it (Anki:
 * rslib/src/decks/schema11.rs, `upgrade_decks_to_schema15`).
 */
import { isLegacyObject, type LegacyJson } from "../../../legacyJson.ts";
import { I32, I64, LegacyReader, toInt, U32 } from "./legacyRead.ts";
import { otherBytes } from "./otherBlob.ts";
import { encodeMessage, messageTypes } from "./proto.ts";
import type { DeckRow } from "./rows.ts";

/** One of the four `[day, amount]` pairs. */
interface Today {
  day: number;
  amount: number;
}

export function deckFromLegacy(key: bigint, value: LegacyJson | undefined): DeckRow {
  const deck = LegacyReader.of(value, `deck ${key}`);
  const id = deck.int("id", I64);
  if (id === 0n || id !== key) throw deck.bad("id", "does not match its key");
  const filtered = isFiltered(deck);
  // An obsolete key Anki drops on reading.
  deck.take("return");
  const humanName = deck.str("name");
  const row = {
    id,
    name: nativeDeckName(deck, humanName),
    mtimeSecs: deck.int("mod", I64, 0n),
    usn: deck.int("usn", I32),
  };
  const today = {
    lrn: todayPair(deck, "lrnToday"),
    rev: todayPair(deck, "revToday"),
    new: todayPair(deck, "newToday"),
    time: todayPair(deck, "timeToday"),
  };
  const flags = {
    studyCollapsed: deck.bool("collapsed"),
    browserCollapsed: deck.bool("browserCollapsed", false),
    description: deck.str("desc", ""),
    markdownDescription: deck.bool("md", false),
  };
  const kind = filtered ? { filtered: filteredKind(deck) } : { normal: normalKind(deck, flags) };
  const common = commonFrom(today, flags, otherBytes(deck.rest()));
  return {
    ...row,
    common: encodeMessage(messageTypes.deckCommon, common),
    kind: encodeMessage(messageTypes.deckKind, kind),
  };
}

/** `dyn` is 0/1 in legacy JSON; some clients wrote a boolean. */
function isFiltered(deck: LegacyReader): boolean {
  const value = deck.required("dyn");
  if (value === true || value === 1) return true;
  if (value === false || value === 0) return false;
  throw deck.bad("dyn", "is neither 0 nor 1");
}

/**
 * Anki re-normalises each `::` component (NFC, no control characters, no surrounding blanks
 * or colons, "blank" for an empty one) and marks a renamed deck modified now: only names
 * that need none of it pass.
 */
function nativeDeckName(deck: LegacyReader, human: string): string {
  const components = human.split("::");
  for (const component of components) {
    const clean =
      component.length > 0 &&
      component.normalize("NFC") === component &&
      !hasAsciiControl(component) &&
      !/^[\s\u0085:]|[\s\u0085:]$/.test(component);
    if (!clean) throw deck.bad("name", "would be renamed");
  }
  return components.join("\x1f");
}

function hasAsciiControl(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}

function todayPair(deck: LegacyReader, key: string): Today {
  const value = deck.required(key);
  const fail = () => deck.bad(key, "is not a [day, amount] pair");
  if (!Array.isArray(value) || value.length !== 2) throw fail();
  return { day: Number(toInt(value[0], I32, fail)), amount: Number(toInt(value[1], I32, fail)) };
}

interface Flags {
  studyCollapsed: boolean;
  browserCollapsed: boolean;
  description: string;
  markdownDescription: boolean;
}

/**
 * The four counters share one stored day, the latest of time, new and review: the counters
 * of an earlier day start again from 0 (the studied time is kept as is, as Anki does).
 */
function commonFrom(
  today: Record<"lrn" | "rev" | "new" | "time", Today>,
  flags: Flags,
  other: Uint8Array,
) {
  const day = Math.max(today.time.day, today.new.day, today.rev.day);
  const onDay = (pair: Today) => (pair.day === day ? pair.amount : 0);
  return {
    studyCollapsed: flags.studyCollapsed,
    browserCollapsed: flags.browserCollapsed,
    lastDayStudied: day >>> 0,
    newStudied: onDay(today.new),
    reviewStudied: onDay(today.rev),
    learningStudied: onDay(today.lrn),
    millisecondsStudied: today.time.amount,
    other,
  };
}

function normalKind(deck: LegacyReader, flags: Flags) {
  const retention = deck.optInt("desiredRetention", U32);
  return {
    configId: deck.int("conf", I64),
    extendNew: Math.max(0, Number(deck.int("extendNew", I32, 0n))),
    extendReview: Math.max(0, Number(deck.int("extendRev", I32, 0n))),
    description: flags.description,
    markdownDescription: flags.markdownDescription,
    reviewLimit: nullable(deck.optInt("reviewLimit", U32)),
    newLimit: nullable(deck.optInt("newLimit", U32)),
    reviewLimitToday: dayLimit(deck, "reviewLimitToday"),
    newLimitToday: dayLimit(deck, "newLimitToday"),
    desiredRetention: retention === null ? null : Math.fround(Math.fround(Number(retention)) / 100),
  };
}

function dayLimit(deck: LegacyReader, key: string) {
  const value = deck.take(key);
  if (value === undefined || value === null) return null;
  const fail = () => deck.bad(key, "is not {limit, today}");
  if (!isLegacyObject(value) || Object.keys(value).length !== 2) throw fail();
  return {
    limit: Number(toInt(value.limit, U32, fail)),
    today: Number(toInt(value.today, U32, fail)),
  };
}

function filteredKind(deck: LegacyReader) {
  const delays = deck.take("delays");
  deck.bool("separate", false);
  return {
    reschedule: deck.bool("resched"),
    searchTerms: searchTerms(deck),
    delays:
      delays === undefined || delays === null ? [] : reread(deck, "delays", delays).f32Array("v"),
    previewDelay: Number(deck.int("previewDelay", U32, 0n)),
    previewAgainSecs: Number(deck.int("previewAgainSecs", U32, 0n)),
    previewHardSecs: Number(deck.int("previewHardSecs", U32, 0n)),
    previewGoodSecs: Number(deck.int("previewGoodSecs", U32, 0n)),
  };
}

/** Reads an already-taken value with the reader's checks. */
function reread(deck: LegacyReader, key: string, value: LegacyJson): LegacyReader {
  return new LegacyReader({ v: value }, `${key} of ${String(deck.object.id)}`);
}

function searchTerms(deck: LegacyReader) {
  const value = deck.required("terms");
  const fail = () => deck.bad("terms", "has an odd entry");
  if (!Array.isArray(value)) throw fail();
  return value.map((term) => {
    if (!Array.isArray(term) || term.length !== 3 || typeof term[0] !== "string") throw fail();
    return {
      search: term[0],
      limit: Math.max(0, Number(toInt(term[1], I32, fail))),
      order: Number(toInt(term[2], I32, fail)),
    };
  });
}

function nullable(value: bigint | null): number | null {
  return value === null ? null : Number(value);
}
