/**
 * Native notetype (row + fields + templates) -> legacy JSON object (Anki:
 * rslib/src/notetype/schema11.rs).
 */

import { jsonInt, type LegacyJson, type LegacyObject } from "../../../legacyJson.ts";
import { wrapU8, wrapU16 } from "./casts.ts";
import {
  keysOwnedByOther,
  type LateKeys,
  mergeInto,
  parseOther,
  reservedExcept,
  withoutReserved,
} from "./otherBlob.ts";
import {
  type CardRequirement,
  decodeFieldConfigFields,
  decodeNotetypeConfigFields,
  decodeTemplateConfigFields,
} from "./proto.ts";
import type { FieldRow, NotetypeRow, TemplateRow } from "./rows.ts";

const NOTETYPE_KIND_CLOZE = 1;

const REQUIREMENT_KIND_NAMES: Record<number, string> = { 1: "any", 2: "all" };

const RESERVED_NOTETYPE_KEYS: ReadonlySet<string> = new Set([
  "latexPost",
  "flds",
  "css",
  "originalStockKind",
  "originalId",
  "id",
  "usn",
  "mod",
  "req",
  "latexPre",
  "name",
  "did",
  "tmpls",
  "type",
  "sortf",
  "latexsvg",
]);

const RESERVED_FIELD_KEYS: ReadonlySet<string> = new Set([
  "name",
  "ord",
  "sticky",
  "rtl",
  "plainText",
  "font",
  "size",
  "collapsed",
  "description",
  "excludeFromSearch",
  "id",
  "tag",
  "preventDeletion",
]);

const RESERVED_TEMPLATE_KEYS: ReadonlySet<string> = new Set([
  "name",
  "ord",
  "did",
  "afmt",
  "bafmt",
  "qfmt",
  "bqfmt",
  "bfont",
  "bsize",
  "id",
]);

// Keys whose fields came after the first schema-18 clients (see keysOwnedByOther).
const LATE_NOTETYPE_KEYS: LateKeys = {
  originalStockKind: ["originalStockKind"],
  originalId: ["originalId"],
};
const LATE_FIELD_KEYS: LateKeys = {
  description: ["description"],
  plainText: ["plainText"],
  collapsed: ["collapsed"],
  excludeFromSearch: ["excludeFromSearch"],
  id: ["id"],
  tag: ["tag"],
  preventDeletion: ["preventDeletion"],
};
const LATE_TEMPLATE_KEYS: LateKeys = { id: ["id"] };

/** `fields` and `templates` must be in `ord` order. */
export function notetypeToLegacy(
  row: NotetypeRow,
  fields: readonly FieldRow[],
  templates: readonly TemplateRow[],
): LegacyObject {
  const { value: config, present } = decodeNotetypeConfigFields(row.config);
  const legacy: LegacyObject = {
    id: jsonInt(row.id),
    name: row.name,
    type: config.kind === NOTETYPE_KIND_CLOZE ? 1 : 0,
    mod: jsonInt(row.mtimeSecs),
    usn: jsonInt(row.usn),
    sortf: wrapU16(config.sortFieldIdx),
    did: config.targetDeckIdUnused === 0n ? null : jsonInt(config.targetDeckIdUnused),
    tmpls: templates.map(templateToLegacy),
    flds: fields.map(fieldToLegacy),
    css: config.css,
    latexPre: config.latexPre,
    latexPost: config.latexPost,
    latexsvg: config.latexSvg,
    req: config.reqs.map(requirementToLegacy),
  };
  // Both are left out rather than printed as 0/null, so older clients never see them.
  if (config.originalStockKind !== 0) legacy.originalStockKind = config.originalStockKind;
  if (config.originalId !== null) legacy.originalId = jsonInt(config.originalId);
  return mergeOther(legacy, config.other, RESERVED_NOTETYPE_KEYS, LATE_NOTETYPE_KEYS, present);
}

export function fieldToLegacy(row: FieldRow): LegacyObject {
  const { value: config, present } = decodeFieldConfigFields(row.config);
  const legacy: LegacyObject = {
    name: row.name,
    ord: wrapU16(row.ord),
    sticky: config.sticky,
    rtl: config.rtl,
    font: config.fontName,
    size: wrapU16(config.fontSize),
    description: config.description,
    plainText: config.plainText,
    collapsed: config.collapsed,
    excludeFromSearch: config.excludeFromSearch,
    id: config.id === null ? null : jsonInt(config.id),
    tag: config.tag,
    preventDeletion: config.preventDeletion,
  };
  return mergeOther(legacy, config.other, RESERVED_FIELD_KEYS, LATE_FIELD_KEYS, present);
}

export function templateToLegacy(row: TemplateRow): LegacyObject {
  const { value: config, present } = decodeTemplateConfigFields(row.config);
  const legacy: LegacyObject = {
    name: row.name,
    ord: wrapU16(row.ord),
    qfmt: config.qFormat,
    afmt: config.aFormat,
    bqfmt: config.qFormatBrowser,
    bafmt: config.aFormatBrowser,
    // Negative deck ids are as meaningless as 0 here; both mean "no override".
    did: config.targetDeckId > 0n ? jsonInt(config.targetDeckId) : null,
    bfont: config.browserFontName,
    bsize: wrapU8(config.browserFontSize),
    id: config.id === null ? null : jsonInt(config.id),
  };
  return mergeOther(legacy, config.other, RESERVED_TEMPLATE_KEYS, LATE_TEMPLATE_KEYS, present);
}

/** Adds the unknown keys of `otherBytes`, and the late keys the bytes lack but `other` has. */
function mergeOther(
  legacy: LegacyObject,
  otherBytes: Uint8Array,
  reserved: ReadonlySet<string>,
  late: LateKeys,
  present: ReadonlySet<string>,
): LegacyObject {
  const other = parseOther(otherBytes);
  const kept = reservedExcept(reserved, keysOwnedByOther(other, late, present));
  return mergeInto(legacy, withoutReserved(other, kept));
}

function requirementToLegacy(requirement: CardRequirement): LegacyJson {
  return [
    wrapU16(requirement.cardOrd),
    REQUIREMENT_KIND_NAMES[requirement.kind] ?? "none",
    requirement.fieldOrds.map(wrapU16),
  ];
}
