/**
 * Anki passes every deck config it reads (for sync, downgrade or scheduling) through a
 * validity clamp that swaps out-of-range values for defaults; stored bytes are never
 * fixed (Anki: `ensure_deck_config_values_valid`, rslib/src/deckconfig/mod.rs). Legacy JSON
 * we produce must carry the clamped values to match.
 */
import type { DeckConfigConfig } from "./proto.ts";

type NumericKey = {
  [K in keyof DeckConfigConfig]: DeckConfigConfig[K] extends number ? K : never;
}[keyof DeckConfigConfig];

interface Rule {
  field: NumericKey;
  min: number;
  max: number;
  fallback: number;
  /** The bounds and fallback are f32 constants in Anki; compare in f32 as well. */
  f32?: true;
}

const RULES: readonly Rule[] = [
  { field: "newPerDay", min: 0, max: 9999, fallback: 20 },
  { field: "reviewsPerDay", min: 0, max: 9999, fallback: 200 },
  { field: "newPerDayMinimum", min: 0, max: 9999, fallback: 0 },
  { field: "initialEase", min: 1.31, max: 5.0, fallback: 2.5, f32: true },
  { field: "easyMultiplier", min: 1.0, max: 5.0, fallback: 1.3, f32: true },
  { field: "hardMultiplier", min: 0.5, max: 1.3, fallback: 1.2, f32: true },
  { field: "lapseMultiplier", min: 0.0, max: 1.0, fallback: 0.0, f32: true },
  { field: "intervalMultiplier", min: 0.5, max: 2.0, fallback: 1.0, f32: true },
  { field: "maximumReviewInterval", min: 1, max: 36500, fallback: 36500 },
  { field: "minimumLapseInterval", min: 1, max: 36500, fallback: 1 },
  { field: "graduatingIntervalGood", min: 1, max: 36500, fallback: 1 },
  { field: "graduatingIntervalEasy", min: 1, max: 36500, fallback: 4 },
  { field: "leechThreshold", min: 1, max: 9999, fallback: 8 },
  { field: "capAnswerTimeToSecs", min: 1, max: 9999, fallback: 60 },
  { field: "desiredRetention", min: 0.7, max: 0.99, fallback: 0.9, f32: true },
  { field: "historicalRetention", min: 0.7, max: 0.97, fallback: 0.9, f32: true },
];

/** Copy of `config` with every out-of-range (or NaN) value replaced by its default. */
export function clampDeckConfig(config: DeckConfigConfig): DeckConfigConfig {
  const clamped = { ...config };
  for (const rule of RULES) {
    const value = clamped[rule.field];
    if (!inRange(value, rule)) clamped[rule.field] = toRuleWidth(rule.fallback, rule);
  }
  return clamped;
}

function inRange(value: number, rule: Rule): boolean {
  // Written so that NaN fails both comparisons and counts as out of range.
  return value >= toRuleWidth(rule.min, rule) && value <= toRuleWidth(rule.max, rule);
}

function toRuleWidth(value: number, rule: Rule): number {
  return rule.f32 ? Math.fround(value) : value;
}
