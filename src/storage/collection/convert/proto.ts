/**
 * The protobuf messages Anki stores in schema 18 blobs, after its definitions (proto/anki/
 * notetypes.proto, decks.proto, deck_config.proto). Only numbers and wire types matter on disk;
 * package and message names follow the reference so errors read naturally.
 *
 * Decoded values: 64-bit integers are `bigint` (field and template ids are random i64),
 * enums stay numeric so unknown values survive, absent proto3 `optional` scalars and
 * absent sub-messages are `null`.
 */
import { parse, Root, type Type } from "protobufjs";

// Enum-typed fields are declared int32: same varint on the wire, and unknown numbers
// (from newer clients) survive without a lookup table. Their values are in Anki's .proto
// files and, where the conversion needs them, in the modules that use them.
const NOTETYPES = `
syntax = "proto3";
package anki.notetypes;

message Notetype {
  message Config {
    message CardRequirement {
      uint32 card_ord = 1;
      int32 kind = 2;
      repeated uint32 field_ords = 3;
    }
    int32 kind = 1;
    uint32 sort_field_idx = 2;
    string css = 3;
    int64 target_deck_id_unused = 4;
    string latex_pre = 5;
    string latex_post = 6;
    bool latex_svg = 7;
    repeated CardRequirement reqs = 8;
    int32 original_stock_kind = 9;
    optional int64 original_id = 10;
    bytes other = 255;
  }
  message Field {
    message Config {
      bool sticky = 1;
      bool rtl = 2;
      string font_name = 3;
      uint32 font_size = 4;
      string description = 5;
      bool plain_text = 6;
      bool collapsed = 7;
      bool exclude_from_search = 8;
      optional int64 id = 9;
      optional uint32 tag = 10;
      bool prevent_deletion = 11;
      bytes other = 255;
    }
  }
  message Template {
    message Config {
      string q_format = 1;
      string a_format = 2;
      string q_format_browser = 3;
      string a_format_browser = 4;
      int64 target_deck_id = 5;
      string browser_font_name = 6;
      uint32 browser_font_size = 7;
      optional int64 id = 8;
      bytes other = 255;
    }
  }
}
`;

const DECKS = `
syntax = "proto3";
package anki.decks;

message Deck {
  message Common {
    reserved 8 to 13;
    bool study_collapsed = 1;
    bool browser_collapsed = 2;
    uint32 last_day_studied = 3;
    int32 new_studied = 4;
    int32 review_studied = 5;
    int32 learning_studied = 6;
    int32 milliseconds_studied = 7;
    bytes other = 255;
  }
  message Normal {
    message DayLimit {
      uint32 limit = 1;
      uint32 today = 2;
    }
    reserved 12 to 15;
    int64 config_id = 1;
    uint32 extend_new = 2;
    uint32 extend_review = 3;
    string description = 4;
    bool markdown_description = 5;
    optional uint32 review_limit = 6;
    optional uint32 new_limit = 7;
    DayLimit review_limit_today = 8;
    DayLimit new_limit_today = 9;
    optional float desired_retention = 10;
  }
  message Filtered {
    message SearchTerm {
      string search = 1;
      uint32 limit = 2;
      int32 order = 3;
    }
    bool reschedule = 1;
    repeated SearchTerm search_terms = 2;
    repeated float delays = 3;
    uint32 preview_delay = 4;
    uint32 preview_hard_secs = 5;
    uint32 preview_good_secs = 6;
    uint32 preview_again_secs = 7;
  }
  message KindContainer {
    oneof kind {
      Normal normal = 1;
      Filtered filtered = 2;
    }
  }
}
`;

const DECK_CONFIG = `
syntax = "proto3";
package anki.deck_config;

message DeckConfig {
  message Config {
    reserved 7, 8;
    repeated float learn_steps = 1;
    repeated float relearn_steps = 2;
    repeated float fsrs_params_4 = 3;
    repeated float easy_days_percentages = 4;
    repeated float fsrs_params_5 = 5;
    repeated float fsrs_params_6 = 6;
    uint32 new_per_day = 9;
    uint32 reviews_per_day = 10;
    float initial_ease = 11;
    float easy_multiplier = 12;
    float hard_multiplier = 13;
    float lapse_multiplier = 14;
    float interval_multiplier = 15;
    uint32 maximum_review_interval = 16;
    uint32 minimum_lapse_interval = 17;
    uint32 graduating_interval_good = 18;
    uint32 graduating_interval_easy = 19;
    int32 new_card_insert_order = 20;
    int32 leech_action = 21;
    uint32 leech_threshold = 22;
    bool disable_autoplay = 23;
    uint32 cap_answer_time_to_secs = 24;
    bool show_timer = 25;
    bool skip_question_when_replaying_answer = 26;
    bool bury_new = 27;
    bool bury_reviews = 28;
    bool bury_interday_learning = 29;
    int32 new_mix = 30;
    int32 interday_learning_mix = 31;
    int32 new_card_sort_order = 32;
    int32 review_order = 33;
    int32 new_card_gather_priority = 34;
    uint32 new_per_day_minimum = 35;
    int32 question_action = 36;
    float desired_retention = 37;
    bool stop_timer_on_answer = 38;
    // Only 23.10.x had this field; it is reserved in the reference now.
    bool reschedule_fsrs_cards = 39;
    float historical_retention = 40;
    float seconds_to_show_question = 41;
    float seconds_to_show_answer = 42;
    int32 answer_action = 43;
    bool wait_for_audio = 44;
    string param_search = 45;
    string ignore_revlogs_before_date = 46;
    bytes other = 255;
  }
}
`;

const root = new Root();
for (const source of [NOTETYPES, DECKS, DECK_CONFIG]) parse(source, root);

function lookup(name: string): Type {
  return root.lookupType(name);
}

/** The blobs' message types. The server only decodes; tests encode with them (test/helpers). */
export const messageTypes = {
  notetypeConfig: lookup("anki.notetypes.Notetype.Config"),
  fieldConfig: lookup("anki.notetypes.Notetype.Field.Config"),
  templateConfig: lookup("anki.notetypes.Notetype.Template.Config"),
  deckCommon: lookup("anki.decks.Deck.Common"),
  deckKind: lookup("anki.decks.Deck.KindContainer"),
  deckConfig: lookup("anki.deck_config.DeckConfig.Config"),
};

export interface CardRequirement {
  cardOrd: number;
  kind: number;
  fieldOrds: number[];
}

export interface NotetypeConfig {
  kind: number;
  sortFieldIdx: number;
  css: string;
  targetDeckIdUnused: bigint;
  latexPre: string;
  latexPost: string;
  latexSvg: boolean;
  reqs: CardRequirement[];
  originalStockKind: number;
  originalId: bigint | null;
  other: Uint8Array;
}

export interface FieldConfig {
  sticky: boolean;
  rtl: boolean;
  fontName: string;
  fontSize: number;
  description: string;
  plainText: boolean;
  collapsed: boolean;
  excludeFromSearch: boolean;
  id: bigint | null;
  tag: number | null;
  preventDeletion: boolean;
  other: Uint8Array;
}

export interface TemplateConfig {
  qFormat: string;
  aFormat: string;
  qFormatBrowser: string;
  aFormatBrowser: string;
  targetDeckId: bigint;
  browserFontName: string;
  browserFontSize: number;
  id: bigint | null;
  other: Uint8Array;
}

export interface DeckCommon {
  studyCollapsed: boolean;
  browserCollapsed: boolean;
  lastDayStudied: number;
  newStudied: number;
  reviewStudied: number;
  learningStudied: number;
  millisecondsStudied: number;
  other: Uint8Array;
}

export interface DayLimit {
  limit: number;
  today: number;
}

export interface NormalDeck {
  configId: bigint;
  extendNew: number;
  extendReview: number;
  description: string;
  markdownDescription: boolean;
  reviewLimit: number | null;
  newLimit: number | null;
  reviewLimitToday: DayLimit | null;
  newLimitToday: DayLimit | null;
  desiredRetention: number | null;
}

export interface SearchTerm {
  search: string;
  limit: number;
  order: number;
}

export interface FilteredDeck {
  reschedule: boolean;
  searchTerms: SearchTerm[];
  delays: number[];
  previewDelay: number;
  previewHardSecs: number;
  previewGoodSecs: number;
  previewAgainSecs: number;
}

export type DeckKind = { normal: NormalDeck } | { filtered: FilteredDeck };

export interface DeckConfigConfig {
  learnSteps: number[];
  relearnSteps: number[];
  fsrsParams_4: number[];
  easyDaysPercentages: number[];
  fsrsParams_5: number[];
  fsrsParams_6: number[];
  newPerDay: number;
  reviewsPerDay: number;
  initialEase: number;
  easyMultiplier: number;
  hardMultiplier: number;
  lapseMultiplier: number;
  intervalMultiplier: number;
  maximumReviewInterval: number;
  minimumLapseInterval: number;
  graduatingIntervalGood: number;
  graduatingIntervalEasy: number;
  newCardInsertOrder: number;
  leechAction: number;
  leechThreshold: number;
  disableAutoplay: boolean;
  capAnswerTimeToSecs: number;
  showTimer: boolean;
  skipQuestionWhenReplayingAnswer: boolean;
  buryNew: boolean;
  buryReviews: boolean;
  buryInterdayLearning: boolean;
  newMix: number;
  interdayLearningMix: number;
  newCardSortOrder: number;
  reviewOrder: number;
  newCardGatherPriority: number;
  newPerDayMinimum: number;
  questionAction: number;
  desiredRetention: number;
  stopTimerOnAnswer: boolean;
  rescheduleFsrsCards: boolean;
  historicalRetention: number;
  secondsToShowQuestion: number;
  secondsToShowAnswer: number;
  answerAction: number;
  waitForAudio: boolean;
  paramSearch: string;
  ignoreRevlogsBeforeDate: string;
  other: Uint8Array;
}

const TO_OBJECT = {
  longs: BigInt,
  enums: Number,
  defaults: true,
  arrays: true,
  oneofs: false,
} as const;

function decode<T>(type: Type, bytes: Uint8Array): T {
  return decodeWithPresence<T>(type, bytes).value;
}

/** A decoded message and the names of its top-level fields that the bytes carried. */
export interface Decoded<T> {
  value: T;
  present: ReadonlySet<string>;
}

function decodeWithPresence<T>(type: Type, bytes: Uint8Array): Decoded<T> {
  const message = type.decode(bytes);
  const value = type.toObject(message, TO_OBJECT);
  markAbsentOptionals(type, value);
  return { value: value as T, present: presentFields(message) };
}

/**
 * proto3 writes no default values, so absence alone cannot tell "0" from "this client's
 * schema has no such field"; callers combine it with knowing which fields came late.
 * The decoder sets own properties only for fields it read (repeated ones start empty).
 */
function presentFields(message: object): ReadonlySet<string> {
  const present = new Set<string>();
  for (const [name, item] of Object.entries(message)) {
    if (!Array.isArray(item) || item.length > 0) present.add(name);
  }
  return present;
}

/** toObject leaves absent proto3 `optional` scalars out; make that absence explicit. */
function markAbsentOptionals(type: Type, value: Record<string, unknown>): void {
  for (const field of type.fieldsArray) {
    const item = value[field.name];
    if (item === undefined && field.options?.proto3_optional) value[field.name] = null;
    const nested = field.resolvedType;
    if (!nested || !("fieldsArray" in nested) || item == null) continue;
    const children = Array.isArray(item) ? item : [item];
    for (const child of children) markAbsentOptionals(nested, child as Record<string, unknown>);
  }
}

export const decodeDeckCommon = (b: Uint8Array) => decode<DeckCommon>(messageTypes.deckCommon, b);
export const decodeNotetypeConfigFields = (b: Uint8Array) =>
  decodeWithPresence<NotetypeConfig>(messageTypes.notetypeConfig, b);
export const decodeFieldConfigFields = (b: Uint8Array) =>
  decodeWithPresence<FieldConfig>(messageTypes.fieldConfig, b);
export const decodeTemplateConfigFields = (b: Uint8Array) =>
  decodeWithPresence<TemplateConfig>(messageTypes.templateConfig, b);
export const decodeDeckConfigFields = (b: Uint8Array) =>
  decodeWithPresence<DeckConfigConfig>(messageTypes.deckConfig, b);

/** Decodes `decks.kind`; `null` when the blob holds neither variant. */
export function decodeDeckKind(bytes: Uint8Array): DeckKind | null {
  const kind = decode<{ normal: NormalDeck | null; filtered: FilteredDeck | null }>(
    messageTypes.deckKind,
    bytes,
  );
  if (kind.normal) return { normal: kind.normal };
  if (kind.filtered) return { filtered: kind.filtered };
  return null;
}

/**
 * Encodes a plain object as Anki (prost) does: proto3 fields holding their default are left
 * out, present `optional` fields and sub-messages are written even when zero or empty.
 * 64-bit values may be bigint.
 */
export function encodeMessage(type: Type, value: object): Uint8Array {
  return type.encode(type.fromObject(prostShape(type, value as Record<string, unknown>))).finish();
}

function prostShape(type: Type, value: Record<string, unknown>): Record<string, unknown> {
  const shaped: Record<string, unknown> = {};
  for (const field of type.fieldsArray) {
    const item = value[field.name];
    if (item === undefined || item === null) continue;
    const nested = field.resolvedType;
    const message = nested && "fieldsArray" in nested ? nested : null;
    const convert = (one: unknown): unknown =>
      message ? prostShape(message, one as Record<string, unknown>) : longAsText(one);
    if (field.repeated) {
      if ((item as unknown[]).length > 0) shaped[field.name] = (item as unknown[]).map(convert);
    } else if (message || field.options?.proto3_optional || !isProtoDefault(item)) {
      shaped[field.name] = convert(item);
    }
  }
  return shaped;
}

function isProtoDefault(value: unknown): boolean {
  if (value instanceof Uint8Array) return value.length === 0;
  return value === 0 || value === 0n || value === false || value === "";
}

/** protobufjs takes 64-bit values as decimal text. */
function longAsText(value: unknown): unknown {
  return typeof value === "bigint" ? value.toString() : value;
}
