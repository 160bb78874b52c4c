/**
 * Legacy deck options JSON -> schema 18 `deck_config` row, as a client's own upgrade stores it
 * (Anki: rslib/src/deckconfig/schema11.rs, `upgrade_deck_conf_to_schema14/15/16`).
 */
import { isLegacyObject, type LegacyJson, type LegacyObject } from "../../../legacyJson.ts";
import { I32, I64, LegacyReader, U8, U16, U32 } from "./legacyRead.ts";
import { otherBytes } from "./otherBlob.ts";
import { encodeMessage, messageTypes } from "./proto.ts";
import type { DeckConfigRow } from "./rows.ts";

// NewCardInsertOrder in the native config: due = 0, random = 1 (legacy: random = 0, due = 1).
const INSERT_ORDER_DUE = 0;
const INSERT_ORDER_RANDOM = 1;
const ANSWER_ACTION_MAX = 4n;

/** `key` is the map key, which Anki's upgrade uses as the id whatever the inner `id` says. */
export function deckConfigFromLegacy(key: bigint, value: LegacyJson | undefined): DeckConfigRow {
  const c = LegacyReader.of(value, `deck options ${key}`);
  if (key === 0n) throw c.bad("id", "is 0");
  c.int("id", I64);
  const row = {
    id: key,
    mtimeSecs: c.int("mod", I64),
    name: c.str("name"),
    usn: c.int("usn", I32),
  };
  const top = {
    capAnswerTimeToSecs: Math.max(0, Number(c.int("maxTaken", I32))),
    disableAutoplay: !c.bool("autoplay"),
    showTimer: c.int("timer", U8) !== 0n,
    skipQuestionWhenReplayingAnswer: !c.bool("replayq", false),
  };
  const newConf = section(c, "new");
  const rev = section(c, "rev");
  const lapse = section(c, "lapse");
  // Read and ignored by Anki's conversion; a non-boolean would only be defaulted.
  c.take("dyn");
  const config = {
    ...top,
    ...newFields(newConf),
    ...revFields(rev),
    ...lapseFields(lapse),
    ...schedulerFields(c),
  };
  // Unknown keys of new/rev/lapse travel inside the top-level blob, under their section name.
  const other = c.rest();
  for (const [name, reader] of [
    ["new", newConf],
    ["rev", rev],
    ["lapse", lapse],
  ] as const) {
    const rest = reader.rest();
    if (Object.keys(rest).length > 0) putOther(other, name, rest);
  }
  return {
    ...row,
    config: encodeMessage(messageTypes.deckConfig, { ...config, other: otherBytes(other) }),
  };
}

function putOther(target: LegacyObject, key: string, value: LegacyObject): void {
  Object.defineProperty(target, key, { value, enumerable: true });
}

function section(c: LegacyReader, key: string): LegacyReader {
  const value = c.required(key);
  if (!isLegacyObject(value)) throw c.bad(key, "is not an object");
  return new LegacyReader(value, `deck options ${String(c.object.id)} ${key}`);
}

function newFields(n: LegacyReader) {
  const ints = intervals(n);
  const order = n.int("order", { min: 0n, max: 1n });
  return {
    buryNew: n.bool("bury", false),
    learnSteps: n.f32Array("delays"),
    initialEase: initialEase(n),
    graduatingIntervalGood: ints.good,
    graduatingIntervalEasy: ints.easy,
    newCardInsertOrder: order === 0n ? INSERT_ORDER_RANDOM : INSERT_ORDER_DUE,
    newPerDay: Number(n.int("perDay", U32)),
  };
}

/**
 * Permille to factor, then through schema 15 (x100) and back (/100), all in f32. Anki resets a
 * result at or below 1.3 to 2.5 and rewrites the eases of the cards using it: not here.
 */
function initialEase(n: LegacyReader): number {
  const factor = Math.fround(Number(n.int("initialFactor", U16)) / 1000);
  const ease = Math.fround(Math.fround(factor * 100) / 100);
  if (ease <= Math.fround(1.3)) throw n.bad("initialFactor", "is reset by Anki's upgrade");
  return ease;
}

/** Legacy `ints` is [good, easy, unused]; anything but two or more u16 gives Anki's [1, 4]. */
function intervals(n: LegacyReader): { good: number; easy: number } {
  const value = n.required("ints");
  const ok =
    Array.isArray(value) &&
    value.every((v) => typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 0xffff);
  if (!ok) throw n.bad("ints", "is not a list of small integers");
  const [good, easy] = value as number[];
  if (good === undefined || easy === undefined) return { good: 1, easy: 4 };
  return { good, easy };
}

function revFields(r: LegacyReader) {
  return {
    buryReviews: r.bool("bury", false),
    easyMultiplier: r.f32("ease4"),
    intervalMultiplier: r.f32("ivlFct"),
    maximumReviewInterval: Number(r.int("maxIvl", U32)),
    reviewsPerDay: Number(r.int("perDay", U32)),
    hardMultiplier: r.f32("hardFactor", Math.fround(1.2)),
  };
}

function lapseFields(l: LegacyReader) {
  return {
    relearnSteps: l.f32Array("delays"),
    leechAction: Number(l.int("leechAction", { min: 0n, max: 1n })),
    leechThreshold: Number(l.int("leechFails", U32)),
    minimumLapseInterval: Number(l.int("minInt", U32)),
    lapseMultiplier: l.f32("mult"),
  };
}

/** Keys the v3 scheduler and FSRS added; each has serde's field default when absent. */
function schedulerFields(c: LegacyReader) {
  return {
    newMix: Number(c.int("newMix", I32, 0n)),
    newPerDayMinimum: Number(c.int("newPerDayMinimum", U32, 0n)),
    interdayLearningMix: Number(c.int("interdayLearningMix", I32, 0n)),
    reviewOrder: Number(c.int("reviewOrder", I32, 0n)),
    newCardSortOrder: Number(c.int("newSortOrder", I32, 0n)),
    newCardGatherPriority: Number(c.int("newGatherPriority", I32, 0n)),
    buryInterdayLearning: c.bool("buryInterdayLearning", false),
    fsrsParams_4: c.f32Array("fsrsWeights", []),
    fsrsParams_5: c.f32Array("fsrsParams5", []),
    fsrsParams_6: c.f32Array("fsrsParams6", []),
    desiredRetention: c.f32("desiredRetention", 0),
    ignoreRevlogsBeforeDate: c.str("ignoreRevlogsBeforeDate", ""),
    easyDaysPercentages: c.f32Array("easyDaysPercentages", []),
    stopTimerOnAnswer: c.bool("stopTimerOnAnswer", false),
    secondsToShowQuestion: c.f32("secondsToShowQuestion", 0),
    secondsToShowAnswer: c.f32("secondsToShowAnswer", 0),
    questionAction: Number(c.int("questionAction", { min: 0n, max: 1n }, 0n)),
    answerAction: Number(c.int("answerAction", { min: 0n, max: ANSWER_ACTION_MAX }, 0n)),
    waitForAudio: c.bool("waitForAudio", true),
    historicalRetention: c.f32("sm2Retention", 0),
    paramSearch: c.str("weightSearch", ""),
  };
}
