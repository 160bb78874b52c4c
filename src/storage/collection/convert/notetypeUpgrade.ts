/**
 * Legacy notetype JSON -> schema 18 rows (notetypes, fields, templates), as a client's own
 * upgrade stores them (Anki: rslib/src/notetype/schema11.rs, `upgrade_notetypes_to_schema15`).
 */
import type { LegacyJson } from "../../../legacyJson.ts";
import { I32, I64, LegacyReader, toInt, U8, U16, U32 } from "./legacyRead.ts";
import { otherBytes } from "./otherBlob.ts";
import { encodeMessage, messageTypes } from "./proto.ts";
import type { FieldRow, NotetypeRow, TemplateRow } from "./rows.ts";

const REQUIREMENT_KINDS: Record<string, number> = { none: 0, any: 1, all: 2 };

export interface NativeNotetype {
  row: NotetypeRow;
  /** In stored order: a field's `ord` is its index, as Anki writes it. */
  fields: FieldRow[];
  /** Stored with mtime 0 and usn 0, as Anki's upgrade leaves them. */
  templates: TemplateRow[];
}

export function notetypeFromLegacy(key: bigint, value: LegacyJson | undefined): NativeNotetype {
  const nt = LegacyReader.of(value, `notetype ${key}`);
  const id = nt.int("id", I64);
  // Anki gives a notetype with id 0 a random id, and a mismatched key would split its parts.
  if (id === 0n || id !== key) throw nt.bad("id", "does not match its key");
  const name = nfcName(nt, nt.str("name"));
  const kind = nt.int("type", { min: 0n, max: 1n });
  const mtimeSecs = nt.int("mod", I64);
  const usn = nt.int("usn", I32);
  const sortFieldIdx = Number(nt.int("sortf", U16));
  const did = nt.required("did");
  const targetDeckIdUnused = did === null ? 0n : toInt(did, I64, () => nt.bad("did", "is odd"));
  const templates = list(nt, "tmpls").map((t, i) => templateFromLegacy(t, i, key));
  const fields = list(nt, "flds").map((f, i) => fieldFromLegacy(f, i, key));
  const config = {
    kind: Number(kind),
    sortFieldIdx,
    css: nt.str("css"),
    targetDeckIdUnused,
    latexPre: nt.str("latexPre", ""),
    latexPost: nt.str("latexPost", ""),
    latexSvg: nt.bool("latexsvg", false),
    reqs: requirements(nt),
    originalStockKind: Number(nt.int("originalStockKind", I32, 0n)),
    originalId: nt.optInt("originalId", I64),
    other: otherBytes(nt.rest()),
  };
  return {
    row: {
      id,
      name,
      mtimeSecs,
      usn,
      config: encodeMessage(messageTypes.notetypeConfig, config),
    },
    fields,
    templates,
  };
}

function fieldFromLegacy(value: LegacyJson, ord: number, ntid: bigint): FieldRow {
  const f = LegacyReader.of(value, `notetype ${ntid} field ${ord}`);
  const name = nfcName(f, f.str("name"));
  f.optInt("ord", U16);
  const config = {
    sticky: f.bool("sticky"),
    rtl: f.bool("rtl"),
    fontName: f.str("font"),
    fontSize: Number(f.int("size", U16)),
    description: f.str("description", ""),
    plainText: f.bool("plainText", false),
    collapsed: f.bool("collapsed", false),
    excludeFromSearch: f.bool("excludeFromSearch", false),
    id: f.optInt("id", I64),
    tag: nullableNumber(f.optInt("tag", U32)),
    preventDeletion: f.bool("preventDeletion", false),
    other: otherBytes(f.rest()),
  };
  return { ord, name, config: encodeMessage(messageTypes.fieldConfig, config) };
}

function templateFromLegacy(value: LegacyJson, ord: number, ntid: bigint): TemplateRow {
  const t = LegacyReader.of(value, `notetype ${ntid} template ${ord}`);
  const name = nfcName(t, t.str("name"));
  t.optInt("ord", U16);
  const config = {
    qFormat: t.str("qfmt"),
    aFormat: t.str("afmt", ""),
    qFormatBrowser: t.str("bqfmt", ""),
    aFormatBrowser: t.str("bafmt", ""),
    targetDeckId: t.optInt("did", I64) ?? 0n,
    browserFontName: t.str("bfont", ""),
    browserFontSize: Number(t.int("bsize", U8, 0n)),
    id: t.optInt("id", I64),
    other: otherBytes(t.rest()),
  };
  return { ord, name, config: encodeMessage(messageTypes.templateConfig, config) };
}

function list(reader: LegacyReader, key: string): LegacyJson[] {
  const value = reader.required(key);
  if (!Array.isArray(value)) throw reader.bad(key, "is not an array");
  return value;
}

/** Legacy `req`: `[card ord, "any" | "all" | "none", [field ords]]` each. */
function requirements(nt: LegacyReader) {
  const value = nt.take("req");
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw nt.bad("req", "is not an array");
  const fail = () => nt.bad("req", "has an odd entry");
  return value.map((entry) => {
    if (!Array.isArray(entry) || entry.length !== 3) throw fail();
    const [cardOrd, kind, fieldOrds] = entry;
    const kindNumber = typeof kind === "string" ? REQUIREMENT_KINDS[kind] : undefined;
    if (kindNumber === undefined || !Array.isArray(fieldOrds)) throw fail();
    return {
      cardOrd: Number(toInt(cardOrd, U16, fail)),
      kind: kindNumber,
      fieldOrds: fieldOrds.map((ord) => Number(toInt(ord, U16, fail))),
    };
  });
}

/** Anki re-normalises names to NFC (and then marks nothing modified): only NFC names pass. */
function nfcName(reader: LegacyReader, name: string): string {
  if (name.normalize("NFC") !== name) throw reader.bad("name", "is not in NFC");
  return name;
}

function nullableNumber(value: bigint | null): number | null {
  return value === null ? null : Number(value);
}
