/**
 * Native deck config row -> legacy JSON object, clamp included (Anki:
 * rslib/src/deckconfig/schema11.rs).
 */

import { isLegacyObject, jsonInt, type LegacyObject } from "../../../legacyJson.ts";
import { reinterpretI32, saturatingUnsigned, U16_MAX, wrapU16 } from "./casts.ts";
import { clampDeckConfig } from "./deckConfigClamp.ts";
import { f32Json, f32JsonArray } from "./f32.ts";
import {
  keysOwnedByOther,
  type LateKeys,
  mergeInto,
  parseOther,
  reservedExcept,
  takeKey,
  withoutReserved,
} from "./otherBlob.ts";
import { type DeckConfigConfig, decodeDeckConfigFields } from "./proto.ts";
import type { DeckConfigRow } from "./rows.ts";

const NEW_CARD_INSERT_ORDER_RANDOM = 1;
const LEECH_ACTION_TAG_ONLY = 1;
const QUESTION_ACTION_SHOW_REMINDER = 1;
const ANSWER_ACTION_MAX = 4;

const RESERVED_TOP_KEYS: ReadonlySet<string> = new Set([
  "id",
  "mod",
  "name",
  "usn",
  "maxTaken",
  "autoplay",
  "timer",
  "replayq",
  "dyn",
  "newMix",
  "newPerDayMinimum",
  "interdayLearningMix",
  "reviewOrder",
  "newSortOrder",
  "newGatherPriority",
  "buryInterdayLearning",
  "fsrsWeights",
  "fsrsParams5",
  "fsrsParams6",
  "desiredRetention",
  "stopTimerOnAnswer",
  "secondsToShowQuestion",
  "secondsToShowAnswer",
  "questionAction",
  "answerAction",
  "waitForAudio",
  "sm2Retention",
  "weightSearch",
  "ignoreRevlogsBeforeDate",
  "easyDaysPercentages",
]);
/**
 * Top-level keys whose native fields came after the first schema-18 clients (v3
 * scheduler, FSRS, timers, easy days); an older client carries them in `other`. The
 * nested new/rev/lapse keys all have fields every schema-18 client knows.
 */
const LATE_TOP_KEYS: LateKeys = {
  newMix: ["newMix"],
  newPerDayMinimum: ["newPerDayMinimum"],
  interdayLearningMix: ["interdayLearningMix"],
  reviewOrder: ["reviewOrder"],
  newSortOrder: ["newCardSortOrder"],
  newGatherPriority: ["newCardGatherPriority"],
  buryInterdayLearning: ["buryInterdayLearning"],
  fsrsWeights: ["fsrsParams_4"],
  fsrsParams5: ["fsrsParams_5"],
  fsrsParams6: ["fsrsParams_6"],
  desiredRetention: ["desiredRetention"],
  ignoreRevlogsBeforeDate: ["ignoreRevlogsBeforeDate"],
  easyDaysPercentages: ["easyDaysPercentages"],
  stopTimerOnAnswer: ["stopTimerOnAnswer"],
  secondsToShowQuestion: ["secondsToShowQuestion"],
  secondsToShowAnswer: ["secondsToShowAnswer"],
  questionAction: ["questionAction"],
  answerAction: ["answerAction"],
  waitForAudio: ["waitForAudio"],
  sm2Retention: ["historicalRetention"],
  weightSearch: ["paramSearch"],
};
const RESERVED_NEW_KEYS: ReadonlySet<string> = new Set([
  "order",
  "delays",
  "bury",
  "perDay",
  "initialFactor",
  "ints",
]);
const RESERVED_REV_KEYS: ReadonlySet<string> = new Set([
  "maxIvl",
  "hardFactor",
  "ease4",
  "ivlFct",
  "perDay",
  "bury",
]);
const RESERVED_LAPSE_KEYS: ReadonlySet<string> = new Set([
  "leechFails",
  "mult",
  "leechAction",
  "delays",
  "minInt",
]);

/** Unknown keys of the top level and of the three sub-objects, all from one blob. */
interface SplitOther {
  top: LegacyObject;
  new: LegacyObject;
  rev: LegacyObject;
  lapse: LegacyObject;
}

export function deckConfigToLegacy(row: DeckConfigRow): LegacyObject {
  const decoded = decodeDeckConfigFields(row.config);
  const config = clampDeckConfig(decoded.value);
  const other = splitOther(config.other, decoded.present);
  const legacy: LegacyObject = {
    id: jsonInt(row.id),
    mod: jsonInt(row.mtimeSecs),
    name: row.name,
    usn: jsonInt(row.usn),
    maxTaken: reinterpretI32(config.capAnswerTimeToSecs),
    autoplay: !config.disableAutoplay,
    timer: config.showTimer ? 1 : 0,
    replayq: !config.skipQuestionWhenReplayingAnswer,
    new: mergeInto(newToLegacy(config), other.new),
    rev: mergeInto(revToLegacy(config), other.rev),
    lapse: mergeInto(lapseToLegacy(config), other.lapse),
    ...schedulerKeys(config),
  };
  // A 23.10 client stored this in a field Anki has retired since; printed only when set,
  // so that client gets its value back (later clients keep it as an unknown key).
  if (config.rescheduleFsrsCards) legacy.rescheduleFsrsCards = true;
  // Merged last, so a key `other` owns (see LATE_TOP_KEYS) replaces the default.
  return mergeInto(legacy, other.top);
}

function splitOther(bytes: Uint8Array, present: ReadonlySet<string>): SplitOther {
  const top = parseOther(bytes);
  const nested = (key: string, reserved: ReadonlySet<string>): LegacyObject => {
    const value = takeKey(top, key);
    return isLegacyObject(value) ? withoutReserved(value, reserved) : {};
  };
  const split = {
    new: nested("new", RESERVED_NEW_KEYS),
    rev: nested("rev", RESERVED_REV_KEYS),
    lapse: nested("lapse", RESERVED_LAPSE_KEYS),
  };
  const reserved = reservedExcept(RESERVED_TOP_KEYS, keysOwnedByOther(top, LATE_TOP_KEYS, present));
  return { top: withoutReserved(top, reserved), ...split };
}

function newToLegacy(config: DeckConfigConfig): LegacyObject {
  return {
    bury: config.buryNew,
    delays: f32JsonArray(config.learnSteps),
    // Stored as a factor (2.5), legacy as permille (2500); f32 product, then `as u16`.
    initialFactor: saturatingUnsigned(Math.fround(config.initialEase * 1000), U16_MAX),
    ints: [wrapU16(config.graduatingIntervalGood), wrapU16(config.graduatingIntervalEasy), 0],
    // Inverted on purpose: legacy 0 = random, 1 = due; unknown stored values read as due.
    order: config.newCardInsertOrder === NEW_CARD_INSERT_ORDER_RANDOM ? 0 : 1,
    perDay: config.newPerDay,
  };
}

function revToLegacy(config: DeckConfigConfig): LegacyObject {
  return {
    bury: config.buryReviews,
    ease4: f32Json(config.easyMultiplier),
    ivlFct: f32Json(config.intervalMultiplier),
    maxIvl: config.maximumReviewInterval,
    perDay: config.reviewsPerDay,
    hardFactor: f32Json(config.hardMultiplier),
  };
}

function lapseToLegacy(config: DeckConfigConfig): LegacyObject {
  return {
    delays: f32JsonArray(config.relearnSteps),
    leechAction: config.leechAction === LEECH_ACTION_TAG_ONLY ? 1 : 0,
    leechFails: config.leechThreshold,
    minInt: config.minimumLapseInterval,
    mult: f32Json(config.lapseMultiplier),
  };
}

/** Keys added after schema 11 by the v3 scheduler and FSRS. */
function schedulerKeys(config: DeckConfigConfig): LegacyObject {
  return {
    dyn: false,
    newMix: config.newMix,
    newPerDayMinimum: config.newPerDayMinimum,
    interdayLearningMix: config.interdayLearningMix,
    reviewOrder: config.reviewOrder,
    newSortOrder: config.newCardSortOrder,
    newGatherPriority: config.newCardGatherPriority,
    buryInterdayLearning: config.buryInterdayLearning,
    fsrsWeights: f32JsonArray(config.fsrsParams_4),
    fsrsParams5: f32JsonArray(config.fsrsParams_5),
    fsrsParams6: f32JsonArray(config.fsrsParams_6),
    desiredRetention: f32Json(config.desiredRetention),
    ignoreRevlogsBeforeDate: config.ignoreRevlogsBeforeDate,
    easyDaysPercentages: f32JsonArray(config.easyDaysPercentages),
    stopTimerOnAnswer: config.stopTimerOnAnswer,
    secondsToShowQuestion: f32Json(config.secondsToShowQuestion),
    secondsToShowAnswer: f32Json(config.secondsToShowAnswer),
    questionAction: config.questionAction === QUESTION_ACTION_SHOW_REMINDER ? 1 : 0,
    answerAction: isKnownAnswerAction(config.answerAction) ? config.answerAction : 0,
    waitForAudio: config.waitForAudio,
    sm2Retention: f32Json(config.historicalRetention),
    weightSearch: config.paramSearch,
  };
}

function isKnownAnswerAction(value: number): boolean {
  return value >= 0 && value <= ANSWER_ACTION_MAX;
}
